"""Lake layer: the month as typed Parquet in the dataset's canonical schema.

The lake checks run here, on each month's staged file, before the I/O manager
publishes it (defs/publish.py): a month that fails a blocking (ERROR) check never
replaces the lake's previous version, so neither this run's warehouse step nor a later
warehouse-only reload can load it.
"""

import dagster as dg

from taxi_assets.defs.assets.keys import lake_key, raw_key, shapes_key
from taxi_assets.defs.assets.metadata import table_schema
from taxi_assets.defs.assets.staging import log_month, stage_each_partition
from taxi_assets.defs.checks import lake_check_specs
from taxi_assets.defs.publish import publish_if_checks_pass
from taxi_assets.errors import StagingError
from taxi_assets.geo.fill import has_coordinates
from taxi_assets.geo.stored import ZoneIndexResource
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.staging import StagedFile
from taxi_assets.transform.quarantine import QUARANTINE_FILE_NAME, convert_quarantining

LAKE_FILE_NAME = "part-0.parquet"


def build_lake_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=lake_key(spec),
        ins={"raw": dg.AssetIn(raw_key(spec))},
        # Months with coordinates get their location IDs from the zone shapes.
        deps=[shapes_key("lake")] if has_coordinates(spec) else [],
        partitions_def=monthly_partitions(spec),
        # A range of months is converted in one run, one month after the other.
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        check_specs=lake_check_specs(spec),
        group_name=spec.name,
        kinds={"parquet"},
        description=f"{spec.name} trips of one month as Parquet (zstd) with declared types.",
        metadata={"dataset": spec.name, "layer": "lake", "dagster/column_schema": table_schema(spec)},
    )
    def lake(
        context: dg.AssetExecutionContext,
        raw: dict[str, LakeObject],
        lake_io_manager: dg.ResourceParam[LakeIOManager],
        zone_index: ZoneIndexResource,
    ):
        zones = None
        if has_coordinates(spec):  # the index is loaded at the first month with coordinates
            zones = zone_index.fill(spec.name, lake_io_manager, shapes_key("lake"), context.log)

        def convert_month(key: str, staged: StagedFile) -> tuple[StagedFile, dict]:
            quarantine_path = staged.path.with_name(QUARANTINE_FILE_NAME)
            with raw[key].local_path() as path:
                try:
                    result, quarantine = convert_quarantining(
                        spec, normalize_month(key), path, staged.path, quarantine_path, zones
                    )
                except StagingError as exc:
                    raise StagingError(f"{exc} (TAXI_STAGING_DIR)") from None
            for warning in result.warnings(quarantine):
                context.log.warning(warning)
            if result.zones:
                log_month(context, f"{spec.name} {result.month}: location IDs from coordinates: {result.zones}")
            log_month(context, result.summary(quarantine))
            metadata = {**result.metadata(quarantine), "dagster/column_schema": table_schema(spec)}
            return StagedFile(staged.path, quarantine=quarantine.path), {**metadata, "source_file": raw[key].uri}

        staged = stage_each_partition(context, lake_io_manager, lambda key: LAKE_FILE_NAME, convert_month)
        yield from publish_if_checks_pass(context, spec, staged, {key: obj.uri for key, obj in raw.items()})

    return lake


@dg.definitions
def lake_layer() -> dg.Definitions:
    return dg.Definitions(assets=[build_lake_asset(spec) for spec in DATASETS.values()])
