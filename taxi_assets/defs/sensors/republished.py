"""`{dataset}_republished_month_sensor`: re-materialize a month the source has re-published.

The version of a month in raw/{dataset}_raw is what its latest materialization recorded
(ETag, Last-Modified, byte count from the download). Each tick HEADs a rotating
batch of the materialized months; a month whose ETag, Last-Modified or
Content-Length has changed gets one run of raw -> lake -> warehouse for that month
only, tagged with the old and the new version. The run key is month + new version,
and the cursor remembers it, so a re-publication is requested once.
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
from taxi_assets.spec.months import normalize_month, partition_key


def recorded_version(instance: dg.DagsterInstance, spec: DatasetSpec, month: str) -> FileVersion | None:
    """The source version the latest raw materialization of `month` fetched, from its metadata."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_key(spec), asset_partitions=[partition_key(month)]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    metadata = records[0].asset_materialization.metadata

    def value(name: str):
        entry = metadata.get(name)
        return None if entry is None else entry.value

    return FileVersion(
        url=value("url"),
        etag=value("etag"),
        last_modified=value("last_modified"),
        content_length=value("bytes"),
    )


def build_republished_sensor(spec: DatasetSpec, limits: WatchLimits = WatchLimits()) -> dg.SensorDefinition:

    @dg.sensor(
        name=f"{spec.name}_republished_month_sensor",
        job=month_job(spec.name),
        minimum_interval_seconds=limits.interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"HEADs up to {limits.max_probes} materialized {spec.name} months per tick (in turn) and "
            f"re-materializes a month whose ETag / Last-Modified / Content-Length changed."
        ),
    )
    def republished_sensor(context: dg.SensorEvaluationContext, source: TaxiSource) -> dg.SensorResult:
        import requests  # a tick's, not the definitions' (source/http.py)

        started = time.monotonic()
        state = load_cursor(context)
        requested: dict[str, str] = state.get("requested", {})
        months = sorted(normalize_month(k) for k in context.instance.get_materialized_partitions(raw_key(spec)))
        if not months:
            return dg.SensorResult(
                skip_reason=f"no month of {raw_key(spec).to_user_string()} is materialized yet: nothing to compare",
                cursor=context.cursor,
            )
        offset = state.get("offset", 0) % len(months)
        batch = (months[offset:] + months[:offset])[: limits.max_probes]
        runs: list[dg.RunRequest] = []
        notes: list[str] = []
        seen, probes, unchanged, problem = 0, 0, 0, None
        for month in batch:
            if len(runs) >= limits.max_runs:
                break
            recorded = recorded_version(context.instance, spec, month)
            if recorded is None or recorded.url not in source.urls(spec, month):
                # Loaded from elsewhere (the GCS drop zone, another source URL): not this source's file.
                notes.append(f"{month} came from {recorded.url if recorded else 'an unknown place'}, not compared")
                seen += 1
                continue
            try:
                # The source the month came from (the first of the list that had it).
                url = recorded.url
                current = source.head_url(url)
            except requests.RequestException as exc:
                problem = f"probing {url} failed: {exc}"
                break
            seen, probes = seen + 1, probes + 1
            if current is None:
                notes.append(f"{month} is no longer published (HEAD 404)")
            elif not current.differs_from(recorded):
                unchanged += 1
            elif requested.get(month) == current.token:
                notes.append(f"{month} re-publication already requested")
            else:
                runs.append(
                    dg.RunRequest(
                        partition_key=partition_key(month),
                        run_key=f"{month}:{current.token}",
                        tags={
                            TRIGGER_TAG: "republished",
                            "taxi/source_url": url,
                            "taxi/previous_version": describe(recorded),
                            "taxi/new_version": describe(current),
                        },
                    )
                )
                requested[month] = current.token

        cursor = dump_cursor({"requested": requested, "offset": (offset + seen) % len(months)})
        context.log.info(
            f"{spec.name}: {probes} HEAD probe(s) of {seen} month(s) in {time.monotonic() - started:.3f}s, "
            f"{len(runs)} run request(s)"
        )
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=cursor)
        checked = f" ({batch[0]}..{batch[seen - 1]})" if seen else ""
        reason = "; ".join(
            [problem or f"{spec.name}: {unchanged} of {seen} month(s){checked} unchanged at the source", *notes]
        )
        return dg.SensorResult(skip_reason=reason, cursor=cursor)

    return republished_sensor


@dg.definitions
def sensors() -> dg.Definitions:
    limits = load_settings().watch_limits
    return dg.Definitions(sensors=[build_republished_sensor(spec, limits) for spec in DATASETS.values()])
