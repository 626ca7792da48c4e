"""Warehouse layer: one table per dataset; each month replaced atomically."""

import dagster as dg

from taxi_assets.defs.assets.keys import lake_key, warehouse_key
from taxi_assets.defs.assets.metadata import table_schema
from taxi_assets.defs.assets.staging import log_month
from taxi_assets.defs.resources import load_settings
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.warehouse import Warehouse


def build_warehouse_asset(spec: DatasetSpec, warehouse_kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=warehouse_key(spec),
        ins={"lake": dg.AssetIn(lake_key(spec))},
        partitions_def=monthly_partitions(spec),
        # A range of months loads in one run (one transaction / load job per month).
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=spec.name,
        kinds={warehouse_kind, "table"},
        description=f"Warehouse table {spec.table}: all months of {spec.name} trips, one row per trip.",
        metadata={
            "dataset": spec.name,
            "layer": "warehouse",
            "dagster/table_name": spec.table,
            "dagster/column_schema": table_schema(spec),
        },
    )
    def warehouse_table(
        context: dg.AssetExecutionContext, lake: dict[str, LakeObject], warehouse: Warehouse
    ) -> dg.MaterializeResult:
        result = warehouse.replace_months(spec, lake)
        ranged = len(lake) > 1
        for key, obj in lake.items():
            month = normalize_month(key)
            rows = result.rows_by_month[month]
            log_month(context, f"{spec.table}: replaced {month} with {rows:,} rows")
            # Each month's materialization carries its own figures, also in a run over a range.
            metadata = {
                "dagster/row_count": rows,
                "source_file": obj.uri,
                # The load's time is the whole run's: in a range it is named so.
                **{("run_seconds" if ranged and k == "seconds" else k): v for k, v in result.metadata.items()},
                **result.month_metadata.get(month, {}),
            }
            context.add_asset_metadata(metadata, partition_key=key)
        if ranged:
            context.log.info(
                f"{spec.table}: replaced {len(lake)} months with {sum(result.rows_by_month.values()):,} rows "
                "(each month's row count is in its materialization's metadata)"
            )
        return dg.MaterializeResult()

    return warehouse_table


@dg.definitions
def warehouse_layer() -> dg.Definitions:
    kind = load_settings().warehouse_kind
    return dg.Definitions(assets=([build_warehouse_asset(spec, kind) for spec in DATASETS.values()]))
