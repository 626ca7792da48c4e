"""The taxi zone lookup through the three layers: the CSV as published, typed Parquet,
a warehouse table (what the mart joins with). Unpartitioned: one file for all months.

The lake layer's output is a DataFrame of a dagster-pandas type, so its columns and
constraints show in the UI and a file that breaks them fails the run before anything
is published (the lake I/O manager writes the DataFrame as Parquet). pandas and
dagster-pandas are imported when a zone file is checked, not when the definitions
load (every run worker, sensor and code server loads them: 0.4 s of CPU).
"""

from functools import cache

import dagster as dg

from taxi_assets.defs.assets.keys import zones_key
from taxi_assets.defs.assets.metadata import arrow_table_schema, download_metadata
from taxi_assets.defs.assets.raw import download_staged
from taxi_assets.source.resource import TaxiSource
from taxi_assets.storage.lake import LakeObject, StagedFile
from taxi_assets.storage.warehouse import Warehouse
from taxi_assets.zones import ZONES_SCHEMA, ZONES_TABLE, read_zones_csv

ZONES_GROUP = "zones"

ZONES_DESCRIPTION = (
    "The TLC taxi zones, one row per LocationID. `NV` (264) and `NA` (265) are zone names, not nulls."
)


@cache
def pandas_zone_type() -> dg.DagsterType:
    """The dagster-pandas type that checks a zone DataFrame's columns and constraints."""
    from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

    return create_dagster_pandas_dataframe_type(
        name="TaxiZoneLookup",
        description=ZONES_DESCRIPTION,
        columns=[
            PandasColumn.integer_column("LocationID", min_value=1, non_nullable=True, unique=True),
            PandasColumn.string_column("Borough", non_nullable=True),
            PandasColumn.string_column("Zone", non_nullable=True),
            PandasColumn.string_column("service_zone", non_nullable=True),
        ],
        metadata_fn=lambda df: {"rows": len(df), "boroughs": int(df["Borough"].nunique())},
    )


# What the UI shows (dagster-pandas' own description of the columns above); the check is
# the dagster-pandas type's, built on first use.
TaxiZoneLookup = dg.DagsterType(
    name="TaxiZoneLookup",
    description=ZONES_DESCRIPTION
    + "\n### Columns\n**LocationID**: Validator `is_integer_dtype`\n+ 1 < values < inf\n+ No Null values allowed."
    "\n+ Column must be unique.\n\n**Borough**: Validator `is_string_dtype`\n+ No Null values allowed.\n\n"
    "**Zone**: Validator `is_string_dtype`\n+ No Null values allowed.\n\n**service_zone**: Validator "
    "`is_string_dtype`\n+ No Null values allowed.\n\n",
    type_check_fn=lambda context, value: pandas_zone_type().type_check(context, value),
)


@dg.asset(
    key=zones_key("raw"),
    io_manager_key="lake_io_manager",
    group_name=ZONES_GROUP,
    kinds={"csv"},
    description="The taxi zone lookup CSV as published, unchanged.",
    metadata={"layer": "raw"},
)
def raw_taxi_zone_lookup(context: dg.AssetExecutionContext, source: TaxiSource) -> dg.Output[StagedFile]:
    staged, got = download_staged(source.zones_file_name(), lambda dest: source.download_zones(dest, context.log))
    context.log.info(f"taxi zones: {got.bytes:,} bytes from {got.url}")
    return dg.Output(staged, metadata=download_metadata(got))


@dg.asset(
    key=zones_key("lake"),
    ins={"raw": dg.AssetIn(zones_key("raw"))},
    io_manager_key="lake_io_manager",
    dagster_type=TaxiZoneLookup,
    group_name=ZONES_GROUP,
    kinds={"parquet", "pandas"},
    description="The taxi zone lookup as Parquet with declared types.",
    metadata={"layer": "lake", "dagster/column_schema": arrow_table_schema(ZONES_SCHEMA)},
)
def lake_taxi_zone_lookup(context: dg.AssetExecutionContext, raw: LakeObject) -> dg.Output:
    with raw.local_path() as path:
        zones = read_zones_csv(path, raw.uri)
    if zones.extra_columns:
        context.log.warning(f"taxi zones: dropped columns not in the schema: {', '.join(zones.extra_columns)}")
    df = zones.table.to_pandas()
    return dg.Output(
        df,
        metadata={
            "dagster/row_count": len(df),
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
