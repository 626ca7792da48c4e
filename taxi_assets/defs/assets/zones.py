"""The taxi zone lookup through the three layers: the CSV as published, typed Parquet,
a warehouse table (what the mart joins with). Unpartitioned: one file for all months.

The lake layer's output is a DataFrame of a dagster-pandas type, so its columns and
constraints show in the UI and a file that breaks them fails the run before anything
is published (the lake I/O manager writes the DataFrame as Parquet).
"""

import dagster as dg
import pandas as pd
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

from taxi_assets.defs.assets.keys import zones_key
from taxi_assets.defs.assets.metadata import arrow_table_schema, download_metadata
from taxi_assets.defs.assets.raw import download_staged
from taxi_assets.defs.resources import load_settings
from taxi_assets.source.resource import TaxiSource
from taxi_assets.storage.lake import LakeObject, StagedFile
from taxi_assets.storage.warehouse import Warehouse
from taxi_assets.zones import ZONES_SCHEMA, ZONES_TABLE, read_zones_csv

ZONES_GROUP = "zones"

TaxiZoneLookup = create_dagster_pandas_dataframe_type(
    name="TaxiZoneLookup",
    description=(
        "The TLC taxi zones, one row per LocationID. `NV` (264) and `NA` (265) are zone names, not nulls."
    ),
    columns=[
        PandasColumn.integer_column("LocationID", min_value=1, non_nullable=True, unique=True),
        PandasColumn.string_column("Borough", non_nullable=True),
        PandasColumn.string_column("Zone", non_nullable=True),
        PandasColumn.string_column("service_zone", non_nullable=True),
    ],
    metadata_fn=lambda df: {"rows": len(df), "boroughs": int(df["Borough"].nunique())},
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
def lake_taxi_zone_lookup(context: dg.AssetExecutionContext, raw: LakeObject) -> dg.Output[pd.DataFrame]:
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


@dg.definitions
def zone_lookup() -> dg.Definitions:
    return dg.Definitions(assets=build_zone_assets(load_settings().warehouse_kind))
