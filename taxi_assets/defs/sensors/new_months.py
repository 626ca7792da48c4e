"""`{dataset}_new_month_sensor`: a run for each month that appears at the source.

Each tick probes (HEAD) the months after the latest known one, where known means
materialized in raw/{dataset}_raw or already requested by this sensor (its cursor).
A published month gets one run of raw -> lake -> warehouse whose run key is the
month plus the file's version, so the same file is never requested twice. The
walk stops after `lookahead` unpublished months in a row, at the latest partition,
or at the per-tick limits. With no month known yet, the sensor walks forward from
the start month (TAXI_SENSOR_START_MONTH, one month or one per dataset; default and
at the earliest the dataset's first month) and
resumes on the next tick where this one stopped.

A month the walk passed while it was not published (404, with a later month there) is
not given up: each tick also probes a few of the unknown months in the `lookback`
months below the latest known one, in turn (cursor `late_after`), and requests one
as soon as it appears.
"""

import time

import dagster as dg

from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.jobs import TRIGGER_TAG, month_job
from taxi_assets.defs.resources import load_settings
from taxi_assets.defs.sensors.common import WatchLimits, describe, dump_cursor, load_cursor
from taxi_assets.source.http import FileVersion
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import next_month, normalize_month, partition_key, previous_month
from taxi_assets.spec.partitions import monthly_partitions


def late_candidates(latest: str, known: set[str], first: str, lookback: int) -> list[str]:
    """The unknown months in the `lookback` months below `latest` (none before `first`)."""
    months = [latest]
    for _ in range(lookback):
        months.insert(0, previous_month(months[0]))
    return [m for m in months[:-1] if m >= first and m not in known]


def run_request(month: str, version: FileVersion) -> dg.RunRequest:
    # The run key is the month and its file's version: the same file is never requested twice.
    return dg.RunRequest(
        partition_key=partition_key(month),
        run_key=f"{month}:{version.token}",
        tags={TRIGGER_TAG: "new_month", "taxi/source_url": version.url, "taxi/source_version": describe(version)},
    )


def build_new_month_sensor(spec: DatasetSpec, limits: WatchLimits = WatchLimits()) -> dg.SensorDefinition:

    @dg.sensor(
        name=f"{spec.name}_new_month_sensor",
        job=month_job(spec.name),
        minimum_interval_seconds=limits.interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Probes the {spec.name} months after the latest known one (HEAD, at most "
            f"{limits.max_probes} per tick), and {limits.max_late_probes} of the unpublished months in the "
            f"{limits.lookback} below it (published late), and requests raw -> lake -> warehouse for "
            f"each new file (at most {limits.max_runs} per tick)."
        ),
    )
    def new_month_sensor(context: dg.SensorEvaluationContext, source: TaxiSource) -> dg.SensorResult:
        import requests  # a tick's, not the definitions' (source/http.py)

        started = time.monotonic()
        state = load_cursor(context)
        requested: dict[str, str] = state.get("requested", {})
        materialized = {normalize_month(k) for k in context.instance.get_materialized_partitions(raw_key(spec))}
        known = materialized | set(requested)
        last_key = monthly_partitions(spec).get_last_partition_key()
        last = normalize_month(last_key) if last_key else ""
        first = limits.start_for(spec)

        scanning = not known
        month = next_month(max(known)) if known else state.get("scan_from", first)
        if scanning and month > last:
            month = first  # scanned to the end without finding a file: start over
        start = month
        runs: list[dg.RunRequest] = []
        unpublished: list[str] = []
        probes, misses, problem = 0, 0, None
        while month <= last and probes < limits.max_probes and len(runs) < limits.max_runs:
            try:
                version = source.head(spec, month)
            except requests.RequestException as exc:
                problem = f"probing {source.url(spec, month)} failed: {exc}"
                break
            probes += 1
            if version is None:
                unpublished.append(month)
                misses += 1
            else:
                runs.append(run_request(month, version))
                requested[month] = version.token
                scanning, misses = False, 0
            month = next_month(month)
            if not scanning and misses >= limits.lookahead:
                break

        new_state: dict = {"requested": requested}
        if scanning:
            new_state["scan_from"] = month
        late: list[str] = []
        still_missing: list[str] = []
        if known and not problem and len(runs) < limits.max_runs:
            candidates = late_candidates(max(known), known | set(requested), first, limits.lookback)
            turn = [m for m in candidates if m > state.get("late_after", "")] or candidates
            for late_month in turn[: limits.max_late_probes]:
                try:
                    version = source.head(spec, late_month)
                except requests.RequestException as exc:
                    problem = f"probing {source.url(spec, late_month)} failed: {exc}"
                    break
                probes += 1
                new_state["late_after"] = late_month
                if version is None:
                    still_missing.append(late_month)
                    continue
                runs.append(run_request(late_month, version))
                requested[late_month] = version.token
                late.append(late_month)
                if len(runs) >= limits.max_runs:
                    break
        context.log.info(
            f"{spec.name}: {probes} HEAD probe(s) from {start} in {time.monotonic() - started:.3f}s, "
            f"{len(runs)} run request(s)" + (f", published late: {', '.join(late)}" if late else "")
        )
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=dump_cursor(new_state))
        if problem:
            reason = problem
        elif probes == 0:
            reason = f"nothing to probe: {spec.name} {max(known, default=start)} is the latest month that should be published"
        elif scanning:
            reason = f"no {spec.name} month published in {start}..{unpublished[-1]}; the next tick goes on from {month}"
        elif unpublished:
            reason = f"no new {spec.name} month: {', '.join(unpublished)} not published yet (HEAD 404)"
        else:
            reason = f"no new {spec.name} month"
        if still_missing:
            reason += f"; below the latest, still not published: {', '.join(still_missing)}"
        return dg.SensorResult(skip_reason=reason, cursor=dump_cursor(new_state))

    return new_month_sensor


@dg.definitions
def sensors() -> dg.Definitions:
    limits = load_settings().watch_limits
    return dg.Definitions(sensors=[build_new_month_sensor(spec, limits) for spec in DATASETS.values()])
