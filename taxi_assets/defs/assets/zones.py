"""The taxi zone lookup through the three layers: the CSV as published, typed Parquet,
a warehouse table (what the mart joins with). Unpartitioned: one file for all months.

The lake layer checks the zones in Arrow (zones.zone_problems: columns, no nulls, every
known LocationID 1..265 exactly once and no other) before it stages anything, so a file that breaks them fails the run naming the
file and the problems, and nothing is published; a valid table is handed to the lake I/O
manager as a staged Parquet file, like every other layer's output.
"""

import dagster as dg
import pyarrow.parquet as pq

from taxi_assets.defs.assets.keys import zones_key
from taxi_assets.defs.assets.metadata import arrow_table_schema, download_metadata
from taxi_assets.defs.assets.raw import download_staged
from taxi_assets.defs.resources import load_settings
from taxi_assets.errors import ConversionError
from taxi_assets.source.resource import TaxiSource
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.staging import StagedFile
from taxi_assets.storage.warehouse import Warehouse
from taxi_assets.transform.convert import PARQUET_COMPRESSION
from taxi_assets.transform.zones import ZONES_SCHEMA, ZONES_TABLE, read_zones_csv, zone_problems

ZONES_GROUP = "zones"
LAKE_FILE_NAME = "part-0.parquet"


@dg.asset(
    key=zones_key("raw"),
    io_manager_key="lake_io_manager",
    group_name=ZONES_GROUP,
    kinds={"csv"},
    description="The taxi zone lookup CSV as published, unchanged.",
    metadata={"layer": "raw"},
)
def raw_taxi_zone_lookup(
    context: dg.AssetExecutionContext, source: TaxiSource, lake_io_manager: dg.ResourceParam[LakeIOManager]
) -> dg.Output[StagedFile]:
    staged, got = download_staged(
        lake_io_manager, source.zones_file_name(), lambda dest: source.download_zones(dest, context.log)
    )
    context.log.info(f"taxi zones: {got.bytes:,} bytes from {got.url}")
    return dg.Output(staged, metadata=download_metadata(got))


@dg.asset(
    key=zones_key("lake"),
    ins={"raw": dg.AssetIn(zones_key("raw"))},
    io_manager_key="lake_io_manager",
    group_name=ZONES_GROUP,
    kinds={"parquet"},
    description=(
        "The taxi zone lookup as Parquet with declared types, one row per LocationID. `NV` (264) and "
        "`NA` (265) are zone names, not nulls. Checked before it is published: every column present "
        "and without nulls, each LocationID 1..265 exactly once and no other; otherwise the previous zones stay."
    ),
    metadata={"layer": "lake", "dagster/column_schema": arrow_table_schema(ZONES_SCHEMA)},
)
def lake_taxi_zone_lookup(
    context: dg.AssetExecutionContext, raw: LakeObject, lake_io_manager: dg.ResourceParam[LakeIOManager]
) -> dg.Output[StagedFile]:
    with raw.local_path() as path:
        zones = read_zones_csv(path, raw.uri)
    problems = zone_problems(zones.table)
    if problems:
        raise ConversionError(
            f"taxi zones: {raw.uri} is not published, the lake keeps the previous zones: {'; '.join(problems)}"
        )
    if zones.extra_columns:
        context.log.warning(f"taxi zones: dropped columns not in the schema: {', '.join(zones.extra_columns)}")
    staged = lake_io_manager.stage(LAKE_FILE_NAME)
    try:
        pq.write_table(zones.table, staged.path, compression=PARQUET_COMPRESSION)
    except BaseException:
        staged.discard()
        raise
    return dg.Output(
        staged,
        metadata={
            "dagster/row_count": zones.table.num_rows,
            "boroughs": len(zones.table["Borough"].unique()),
            "dropped_columns": zones.extra_columns,
            "source_file": raw.uri,
        },
    )


def build_zone_assets(warehouse_kind: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=zones_key("warehouse"),
        ins={"lake": dg.AssetIn(zones_key("lake"))},
        group_name=ZONES_GROUP,
        kinds={warehouse_kind, "table"},
        description=f"Warehouse table {ZONES_TABLE}: the taxi zones, replaced as a whole.",
        metadata={
            "layer": "warehouse",
            "dagster/table_name": ZONES_TABLE,
            "dagster/column_schema": arrow_table_schema(ZONES_SCHEMA),
        },
    )
    def warehouse_taxi_zone_lookup(
        context: dg.AssetExecutionContext, lake: LakeObject, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        rows = warehouse.replace_table(ZONES_TABLE, lake, ZONES_SCHEMA)
        context.log.info(f"{ZONES_TABLE}: replaced with {rows:,} rows")
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "source_file": lake.uri})

    return [raw_taxi_zone_lookup, lake_taxi_zone_lookup, warehouse_taxi_zone_lookup]


@dg.definitions
def zone_lookup() -> dg.Definitions:
    return dg.Definitions(assets=build_zone_assets(load_settings().warehouse_kind))
