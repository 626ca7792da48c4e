"""`gcs_drop_sensor`: load the months whose files others drop under TAXI_GCS_DROP_URI.

Each tick lists the prefix once and takes the objects written since the cursor
(update time, key), oldest first. An object named like a published month file
(`yellow_tripdata_2021-03.csv.gz`) gets a run of raw -> lake -> warehouse for that
month, with raw reading the dropped object instead of the source URL. The run key
is the object's key and generation, so a re-upload is loaded again and the same
upload never twice. Other objects are skipped and named in the tick's log.
"""

import time

import dagster as dg

from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.jobs import TRIGGER_TAG, month_job
from taxi_assets.defs.sensors.common import WatchLimits, dump_cursor, load_cursor
from taxi_assets.source import drop_zone
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets.spec.partitions import monthly_partitions

GCS_DROP_INTERVAL_S = 300  # one listing call per tick


def build_gcs_drop_sensor(max_runs: int = WatchLimits.max_runs) -> dg.SensorDefinition:
    @dg.sensor(
        name="gcs_drop_sensor",
        jobs=[month_job(name) for name in DATASETS],
        minimum_interval_seconds=GCS_DROP_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Loads month files dropped under {drop_zone.DROP_URI_ENV} (gs://bucket/prefix); "
            f"at most {max_runs} runs per tick."
        ),
    )
    def gcs_drop_sensor(context: dg.SensorEvaluationContext, source: TaxiSource) -> dg.SensorResult | dg.SkipReason:
        zone = source.drop_zone()
        if zone is None:
            return dg.SkipReason(f"{drop_zone.DROP_URI_ENV} is not set: there is no GCS drop zone to watch")
        started = time.monotonic()
        state = load_cursor(context)
        objects = zone.objects_after(source.drop_zone_client(), state.get("after"))
        runs: list[dg.RunRequest] = []
        skipped: list[str] = []
        for obj in objects:
            if len(runs) >= max_runs:
                break
            state["after"] = list(obj.position)
            found = drop_zone.dataset_month(obj.key)
            spec = DATASETS.get(found[0]) if found else None
            if found is None or spec is None:
                skipped.append(f"{obj.key} (not a month file)")
                continue
            month = found[1]
            if not monthly_partitions(spec).has_partition_key(partition_key(month)):
                skipped.append(f"{obj.key} ({month} is not a {spec.name} partition)")
                continue
            uri = zone.object_uri(obj.key)
            runs.append(
                dg.RunRequest(
                    job_name=month_job(spec.name).name,
                    partition_key=partition_key(month),
                    run_key=f"{uri}#{obj.generation}",
                    run_config={"ops": {raw_key(spec).to_python_identifier(): {"config": {"source_uri": uri}}}},
                    tags={
                        TRIGGER_TAG: "gcs_drop",
                        "taxi/source_uri": uri,
                        "taxi/source_generation": str(obj.generation),
                    },
                )
            )
        if skipped:
            context.log.warning(f"not month files of a known dataset, skipped: {', '.join(skipped)}")
        context.log.info(
            f"listed {zone.uri} in {time.monotonic() - started:.3f}s: {len(objects)} new object(s), "
            f"{len(runs)} run request(s)"
        )
        if runs:
            return dg.SensorResult(run_requests=runs, cursor=dump_cursor(state))
        reason = f"no new month file under {zone.uri}"
        if skipped:
            reason += f"; skipped {', '.join(skipped)}"
        return dg.SensorResult(skip_reason=reason, cursor=dump_cursor(state))

    return gcs_drop_sensor


@dg.definitions
def sensors() -> dg.Definitions:
    return dg.Definitions(sensors=[build_gcs_drop_sensor()])
