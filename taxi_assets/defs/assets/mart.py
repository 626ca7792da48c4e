"""The trips-by-zone mart: SQL in the warehouse over every dataset's table and the zones.

It reads the warehouse tables in place (deps, not inputs: nothing passes through
Dagster), so the asset graph shows the join while the data stays in the warehouse.
"""

from collections.abc import Callable

import dagster as dg

from taxi_assets.datasets import DATASETS, SOURCE_MONTH_COLUMN, DatasetSpec
from taxi_assets.defs.assets.keys import mart_key, shapes_key, warehouse_key, zones_key
from taxi_assets.defs.assets.mart_map import PickupMaps
from taxi_assets.defs.assets.metadata import arrow_table_schema
from taxi_assets.mart import MART_SCHEMA, MART_TABLE, MartMonth, build_trips_by_zone_month, dialect_for
from taxi_assets.partitions import any_monthly_partitions
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.warehouse import Warehouse

MART_GROUP = "marts"


def column_lineage(specs: list[DatasetSpec]) -> dg.TableColumnLineage:
    zones = zones_key("warehouse")

    def every_table(column_of: Callable[[DatasetSpec], str | None]) -> list[dg.TableColumnDep]:
        """The column `column_of(spec)` of each dataset's table that has one."""
        return [
            dg.TableColumnDep(asset_key=warehouse_key(spec), column_name=column)
            for spec in specs
            if (column := column_of(spec))
        ]

    join = [dg.TableColumnDep(zones, "LocationID"), *every_table(lambda s: s.pickup_location_column)]
    return dg.TableColumnLineage(
        deps_by_column={
            SOURCE_MONTH_COLUMN: every_table(lambda s: SOURCE_MONTH_COLUMN),
            "pickup_borough": [dg.TableColumnDep(zones, "Borough"), *join],
            "pickup_zone": [dg.TableColumnDep(zones, "Zone"), *join],
            "revenue": every_table(lambda s: s.amount_column),
            "avg_distance": every_table(lambda s: s.distance_column),
            "avg_duration_minutes": every_table(lambda s: s.pickup_column)
            + every_table(lambda s: s.dropoff_column),
        }
    )


def month_metadata(result: MartMonth, specs: list[DatasetSpec]) -> dict:
    """Figures the UI plots across partitions: totals and per-dataset trips and revenue."""
    totals = result.totals
    metadata: dict = {
        "dagster/row_count": result.rows,
        "total_trips": sum(int(t["trips"]) for t in totals.values()),
        "total_revenue": round(sum(t["revenue"] or 0.0 for t in totals.values()), 2),
        "unknown_zone_trips": sum(int(t["unknown_zone_trips"]) for t in totals.values()),
    }
    for spec in specs:
        figures = totals.get(spec.name, {})
        metadata[f"trips_{spec.name}"] = int(figures.get("trips") or 0)
        if spec.amount_column:
            metadata[f"revenue_{spec.name}"] = round(figures.get("revenue") or 0.0, 2)
    return metadata


def build_mart_asset(warehouse_kind: str) -> dg.AssetsDefinition:
    specs = list(DATASETS.values())
    lineage = column_lineage(specs)
    schema = arrow_table_schema(MART_SCHEMA)

    @dg.asset(
        key=mart_key(MART_TABLE),
        # Feeds start at different months (yellow 2009-01 .. fhvhv 2019-02): before its first
        # month a feed has no partition, and its absence is not missing data.
        deps=[
            *(
                dg.AssetDep(
                    warehouse_key(spec),
                    partition_mapping=dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True),
                )
                for spec in specs
            ),
            zones_key("warehouse"),
            # The zone shapes: each month's pickup map (mart_map.py).
            shapes_key("lake"),
        ],
        partitions_def=any_monthly_partitions(specs),
        # A range of months builds in one run, one transaction per month.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=MART_GROUP,
        kinds={warehouse_kind, "sql", "table"},
        description=(
            "Trips, revenue, average distance and duration per dataset, pickup borough and pickup zone, "
            "per month: every dataset's trips joined with the taxi zones, in the warehouse."
        ),
        metadata={"layer": "mart", "dagster/table_name": MART_TABLE, "dagster/column_schema": schema},
    )
    def trips_by_zone(
        context: dg.AssetExecutionContext, warehouse: Warehouse, lake_io_manager: dg.ResourceParam[LakeIOManager]
    ) -> dg.MaterializeResult:
        backend, dialect = warehouse.backend(), dialect_for(warehouse.uri)
        maps = PickupMaps(lake_io_manager, context.log)
        for key in context.partition_keys:
            result = build_trips_by_zone_month(backend, dialect, specs, key)
            metadata = month_metadata(result, specs)
            metadata.update(maps.metadata(backend, dialect.table(MART_TABLE), key))
            context.log.info(
                f"{MART_TABLE} {result.month}: {result.rows:,} rows, {metadata['total_trips']:,} trips"
            )
            # Per partition, so a range run records each month's own figures.
            context.add_asset_metadata(
                {**metadata, "dagster/column_schema": schema, "dagster/column_lineage": lineage},
                partition_key=key,
            )
        return dg.MaterializeResult()

    return trips_by_zone
