"""The BigQuery warehouse executed: its jobs and SQL run on a BigQuery emulator (bqemulator, see
bigquery_emulator.py), through the real google-cloud-bigquery client.

What the emulator cannot run stays with the HTTP-boundary fake (test_bigquery_warehouse.py): a
load into a partition decorator (`table$YYYYMM`), the way a month is replaced in the
month-partitioned tables this project creates. Here: table creation, the replace of a month in
an existing table without month partitions (staged load, then delete and insert in one
transaction), month row counts, queries, schema migration and the zone table.

The emulator inserts Parquet by column position: every load here is compared with the lake
file column by column, so a column swapped on the way fails the test.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from google.cloud import bigquery

from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse, WarehouseError, table_schema
from taxi_assets.storage.lake import LakeObject, LocalLakeStore
from taxi_assets.transform.zones import ZONES_SCHEMA, ZONES_TABLE
from taxi_assets_tests.harness import MONTHS, TEST_DATA
from taxi_assets_tests.storage.test_bigquery_warehouse import COORDINATES, PREVIOUS_YELLOW_BQ_SCHEMA, lake_files  # noqa: F401

# An emulator per test process and its jobs: `make test`; `make check` has the HTTP-boundary fake.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

YELLOW = DATASETS["yellow"]


@pytest.fixture
def warehouse(bigquery_emulator) -> BigQueryWarehouse:
    dataset = bigquery_emulator.new_dataset()
    return BigQueryWarehouse.with_client(
        f"bigquery://{bigquery_emulator.project}/{dataset}", bigquery_emulator.client()
    )


@pytest.fixture
def objects(lake_files) -> dict[str, LakeObject]:
    root, _ = lake_files
    store = LocalLakeStore(root)
    return {partition_key(m): LakeObject(store, f"yellow/month={m}/part-0.parquet") for m in MONTHS}


def existing_table(warehouse: BigQueryWarehouse, fields: list[bigquery.SchemaField], partitioning=None) -> None:
    """A table made before this project loads into it (by the course's flows, or by hand)."""
    table = bigquery.Table(warehouse.table_id(YELLOW.table), schema=fields)
    table.time_partitioning = partitioning
    warehouse.client.create_table(table)


def table_rows(warehouse: BigQueryWarehouse, where: str = "TRUE", columns=None) -> pa.Table:
    names = ", ".join(f"`{c}`" for c in columns) if columns else "*"
    return warehouse.query(f"SELECT {names} FROM {warehouse.table_ref(YELLOW.table)} WHERE {where}")


def assert_same_rows(actual: pa.Table, expected: pa.Table) -> None:
    """The same rows, column by column by name (order of rows ignored)."""
    columns = expected.column_names
    assert sorted(actual.column_names) == sorted(columns)
    a = actual.select(columns).to_pandas().sort_values(columns, ignore_index=True)
    e = expected.to_pandas().sort_values(columns, ignore_index=True)
    for column in columns:  # DATETIME comes back as naive datetime64, DATE as date objects
        a[column], e[column] = a[column].astype(str), e[column].astype(str)
    assert a.equals(e), (a.head(), e.head())


def test_a_new_table_is_created_partitioned_by_month_and_clustered(warehouse):
    warehouse.ensure_table(YELLOW)
    table = warehouse.client.get_table(warehouse.table_id(YELLOW.table))
    assert table.time_partitioning.type_ == "MONTH" and table.time_partitioning.field == SOURCE_MONTH_COLUMN
    assert table.clustering_fields == ["PULocationID", "DOLocationID"]
    assert [(f.name, f.field_type) for f in table.schema] == [
        (f.name, f.field_type) for f in table_schema(YELLOW.arrow_schema())
    ]
    assert warehouse.month_row_counts(YELLOW) == {}


@pytest.mark.parametrize(
    "partitioning",
    [None, bigquery.TimePartitioning(type_="DAY", field="tpep_pickup_datetime")],
    ids=["unpartitioned", "by-pickup-day"],
)
def test_a_month_is_replaced_in_a_table_without_month_partitions(warehouse, objects, lake_files, partitioning):
    """An existing table (unpartitioned, or by pickup day as the course makes it) has no month
    partition to swap: staged load, then delete and insert in one transaction, by column name."""
    _, files = lake_files
    # The table's columns in another order than the lake file's: values must land by name.
    fields = table_schema(YELLOW.arrow_schema())
    existing_table(warehouse, fields[::-1], partitioning)

    result = warehouse.replace_months(YELLOW, objects)
    assert result.metadata["replaced_by"] == "staged delete and insert"
    rows = {m: pq.ParquetFile(p).metadata.num_rows for m, p in files.items()}
    assert result.rows_by_month == rows
    assert warehouse.month_row_counts(YELLOW) == rows
    for month in MONTHS:
        assert_same_rows(table_rows(warehouse, f"source_month = DATE '{month}-01'"), pq.read_table(files[month]))

    # Again, January only: replaced, not appended; February untouched.
    warehouse.replace_months(YELLOW, {partition_key(MONTHS[0]): objects[partition_key(MONTHS[0])]})
    assert warehouse.month_row_counts(YELLOW) == rows
    assert_same_rows(table_rows(warehouse, f"source_month = DATE '{MONTHS[0]}-01'"), pq.read_table(files[MONTHS[0]]))
    # No staging table is left behind.
    assert [t.table_id for t in warehouse.client.list_tables(f"{warehouse.project}.{warehouse.dataset}")] == [
        YELLOW.table
    ]


def test_rows_of_another_month_leave_the_table_as_it_was(warehouse, objects, lake_files):
    _, files = lake_files
    existing_table(warehouse, table_schema(YELLOW.arrow_schema()))
    jan = {partition_key(MONTHS[0]): objects[partition_key(MONTHS[0])]}
    warehouse.replace_months(YELLOW, jan)
    # February's file offered as January's.
    wrong = {partition_key(MONTHS[0]): objects[partition_key(MONTHS[1])]}
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_months(YELLOW, wrong)
    text = str(failure.value)
    assert text.startswith(f"yellow {MONTHS[0]}: ") and "month=2021-02/part-0.parquet" in text
    assert "whose source_month is not 2021-01" in text
    assert warehouse.month_row_counts(YELLOW) == {MONTHS[0]: pq.ParquetFile(files[MONTHS[0]]).metadata.num_rows}


def test_a_table_of_the_previous_schema_gains_the_new_columns_and_keeps_its_rows(warehouse, objects, lake_files):
    """The previous version's table (no coordinates), unpartitioned, with January in it: the new
    columns are added in place, January reads them as null, February is loaded with them."""
    _, files = lake_files
    previous = [bigquery.SchemaField(name, t) for name, t in PREVIOUS_YELLOW_BQ_SCHEMA]
    existing_table(warehouse, previous)
    jan_file = pq.read_table(files[MONTHS[0]]).drop_columns(COORDINATES)
    columns = ", ".join(f"`{c}`" for c in jan_file.column_names)
    stage = warehouse.table_id("jan_previous")
    config = bigquery.LoadJobConfig(source_format="PARQUET", schema=previous)
    path = files[MONTHS[0]].with_name("previous.parquet")
    pq.write_table(jan_file, path)
    with open(path, "rb") as f:
        warehouse.client.load_table_from_file(f, stage, job_config=config).result()
    warehouse.query(f"INSERT INTO {warehouse.table_ref(YELLOW.table)} ({columns}) SELECT {columns} FROM `{stage}`")

    result = warehouse.replace_months(YELLOW, {partition_key(MONTHS[1]): objects[partition_key(MONTHS[1])]})
    assert result.metadata["migrated_columns"] == ", ".join(COORDINATES)
    jan = table_rows(warehouse, f"source_month = DATE '{MONTHS[0]}-01'", YELLOW.arrow_schema().names)
    assert all(jan[c].null_count == jan.num_rows for c in COORDINATES)
    assert_same_rows(jan.drop_columns(COORDINATES), jan_file)
    assert_same_rows(table_rows(warehouse, f"source_month = DATE '{MONTHS[1]}-01'"), pq.read_table(files[MONTHS[1]]))


def test_the_zone_table_is_replaced_whole(warehouse, tmp_path):
    zones = pacsv.read_csv(TEST_DATA / "taxi_zone_lookup.csv").cast(ZONES_SCHEMA)
    pq.write_table(zones, tmp_path / "zones.parquet")
    obj = LakeObject(LocalLakeStore(tmp_path), "zones.parquet")
    for _ in range(2):  # a rerun replaces the rows, not appends them
        assert warehouse.replace_table(ZONES_TABLE, obj, ZONES_SCHEMA) == zones.num_rows
        rows = warehouse.query(f"SELECT * FROM {warehouse.table_ref(ZONES_TABLE)}")
        assert rows.num_rows == zones.num_rows
        assert_same_rows(rows, zones)


def test_a_failed_query_raises(warehouse):
    """The emulator answers jobs.query with an empty success when the query fails; a query
    job's result raises, as BigQuery's does."""
    warehouse.ensure_table(YELLOW)
    with pytest.raises(Exception, match="no_such_column"):
        warehouse.query(f"SELECT no_such_column FROM {warehouse.table_ref(YELLOW.table)}")
    assert warehouse.query("SELECT DATE '2021-01-01' AS d").to_pylist() == [{"d": dt.date(2021, 1, 1)}]


def test_a_lake_file_in_another_column_order_or_without_new_columns_loads_by_name(warehouse, lake_files):
    """A lake file's columns land by name, whatever their order (an older lake file, or another
    writer's); columns the file lacks (an older lake file's coordinates) are null."""
    root, files = lake_files
    existing_table(warehouse, table_schema(YELLOW.arrow_schema()))
    jan = pq.read_table(files[MONTHS[0]])
    shuffled = jan.drop_columns(COORDINATES).select(sorted(set(jan.column_names) - set(COORDINATES)))
    assert shuffled.column_names[:2] == ["DOLocationID", "PULocationID"]  # both INT64: a swap would pass unseen
    pq.write_table(shuffled, root / "shuffled.parquet")
    warehouse.replace_months(YELLOW, {partition_key(MONTHS[0]): LakeObject(LocalLakeStore(root), "shuffled.parquet")})
    rows = table_rows(warehouse)
    assert all(rows[c].null_count == rows.num_rows for c in COORDINATES)
    assert_same_rows(rows.drop_columns(COORDINATES), shuffled)


def test_a_failed_insert_rolls_the_delete_back(warehouse, objects):
    """The month's delete and insert are one transaction: when the insert fails (a column of the
    existing table cannot take the file's values), the month's old rows are still there."""
    fields = [
        bigquery.SchemaField(f.name, "DATE") if f.name == "store_and_fwd_flag" else f
        for f in table_schema(YELLOW.arrow_schema())
    ]
    existing_table(warehouse, fields)
    table = warehouse.table_ref(YELLOW.table)
    warehouse.query(f"INSERT INTO {table} (VendorID, source_month) VALUES (7, DATE '{MONTHS[0]}-01')")
    jan = objects[partition_key(MONTHS[0])]
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_months(YELLOW, {partition_key(MONTHS[0]): jan})
    text = str(failure.value)
    assert text.startswith(f"yellow {MONTHS[0]}: BigQuery delete and insert of {jan.uri} into ")
    assert warehouse.query(f"SELECT VendorID, source_month FROM {table}").to_pylist() == [
        {"VendorID": 7, "source_month": dt.date.fromisoformat(f"{MONTHS[0]}-01")}
    ]
    assert [t.table_id for t in warehouse.client.list_tables(f"{warehouse.project}.{warehouse.dataset}")] == [
        YELLOW.table
    ]
