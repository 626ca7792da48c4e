"""The zone table and the trips-by-zone mart on BigQuery, at the HTTP boundary of the real
google-cloud-bigquery client (the fake in fake_google.py; lake objects in the real
fake-gcs-server).

Proven here: the exact load job that replaces the zone table, the exact table definition
and query job that replace a mart month, and that the mart's BigQuery SQL is the DuckDB
SQL with only the dialect's pieces swapped. Not proven: that BigQuery accepts these
(no BigQuery runs offline); the fake runs no SQL, so the mart's rows are queued answers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taxi_assets.datasets import DATASETS
from taxi_assets.mart import (
    BIGQUERY, DUCKDB, MART_SCHEMA, MART_TABLE, dialect_for, month_totals_sql, trips_by_zone_sql,
)
from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse, WarehouseError
from taxi_assets.storage.io_manager import stage_dataframe
from taxi_assets.storage.lake import LakeObject, LocalLakeStore, lake_store_from_uri
from taxi_assets.zones import ZONES_SCHEMA, ZONES_TABLE, read_zones_csv
from taxi_assets_tests.conftest import TEST_DATA
from taxi_assets_tests.fake_google import DATASET, PROJECT

URI = f"bigquery://{PROJECT}/{DATASET}"
ZONES_RELPATH = f"{ZONES_TABLE}/part-0.parquet"
# Written out by hand (not derived from the schemas) so the tests check the mapping.
ZONES_BQ_FIELDS = [
    {"name": "LocationID", "type": "INT64", "mode": "REQUIRED"},
    {"name": "Borough", "type": "STRING", "mode": "REQUIRED"},
    {"name": "Zone", "type": "STRING", "mode": "REQUIRED"},
    {"name": "service_zone", "type": "STRING", "mode": "REQUIRED"},
]
MART_BQ_FIELDS = [
    {"name": name, "type": t, "mode": "NULLABLE"}
    for name, t in [
        ("source_month", "DATE"), ("dataset", "STRING"), ("pickup_borough", "STRING"),
        ("pickup_zone", "STRING"), ("trips", "INT64"), ("revenue", "FLOAT64"), ("avg_distance", "FLOAT64"),
        ("avg_duration_minutes", "FLOAT64"),
    ]
]
# How BigQuery describes a query result's columns (legacy type names).
MART_RESULT_FIELDS = [
    {"name": f.name, "type": t}
    for f, t in zip(MART_SCHEMA, ["DATE", "STRING", "STRING", "STRING", "INTEGER", "FLOAT", "FLOAT", "FLOAT"])
]
MART_ROWS = [
    ("2021-01-01", "yellow", "Manhattan", "Midtown Center", 12, 180.5, 2.25, 14.5),
    ("2021-01-01", "green", "Queens", "Astoria", 3, 41.0, 3.5, 16.0),
    ("2021-01-01", "fhv", None, None, 5, None, None, 21.0),
]


@pytest.fixture
def warehouse(fake_google) -> BigQueryWarehouse:
    return BigQueryWarehouse(PROJECT, DATASET, client=fake_google.bigquery_client())


@pytest.fixture
def zones_file(tmp_path, monkeypatch) -> Path:
    """The zone lookup's lake Parquet, written by the lake I/O manager's own code."""
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    zones = read_zones_csv(TEST_DATA / "taxi_zone_lookup.csv", "test data")
    return stage_dataframe(zones.table.to_pandas()).path


def test_the_zone_table_is_replaced_by_one_truncating_load_job_with_an_explicit_schema(
    fake_google, warehouse, zones_file, gcs_bucket, tmp_path
):
    expected_bytes = zones_file.read_bytes()
    gcs = lake_store_from_uri(f"gs://{gcs_bucket.name}/lake")
    gcs.publish(zones_file, ZONES_RELPATH)
    local = LocalLakeStore(tmp_path / "lake")
    local.publish(zones_file, ZONES_RELPATH)

    assert warehouse.replace_table(ZONES_TABLE, LakeObject(gcs, ZONES_RELPATH), ZONES_SCHEMA) == 265
    (job,) = fake_google.calls("POST", f"/bigquery/v2/projects/{PROJECT}/jobs")
    assert job.json["configuration"] == {
        "load": {
            "sourceUris": [f"gs://{gcs_bucket.name}/lake/{ZONES_RELPATH}"],
            "sourceFormat": "PARQUET",
            "writeDisposition": "WRITE_TRUNCATE",
            "schema": {"fields": ZONES_BQ_FIELDS},
            "destinationTable": {"projectId": PROJECT, "datasetId": DATASET, "tableId": ZONES_TABLE},
        }
    }
    assert job.json["jobReference"]["jobId"].startswith(f"taxi_{ZONES_TABLE}_")
    # The load job makes the table: no separate create, so nothing exists half-made.
    assert not fake_google.calls("POST", "/tables")
    assert fake_google.tables[(PROJECT, DATASET, ZONES_TABLE)]["schema"]["fields"] == ZONES_BQ_FIELDS

    # A local lake uploads the file to a load job with the same configuration.
    assert warehouse.replace_table(ZONES_TABLE, LakeObject(local, ZONES_RELPATH), ZONES_SCHEMA) == 265
    (start,) = fake_google.calls("POST", f"/upload/bigquery/v2/projects/{PROJECT}/jobs")
    assert start.json["configuration"]["load"] == {
        k: v for k, v in job.json["configuration"]["load"].items() if k != "sourceUris"
    }
    assert b"".join(r.body for r in fake_google.calls("PUT", "/upload/")) == expected_bytes


def test_a_refused_zone_load_names_the_table_the_file_and_the_job(fake_google, warehouse, tmp_path):
    """A null in a REQUIRED column (here a Borough) fails the job, and the table keeps its rows."""
    zones = read_zones_csv(TEST_DATA / "taxi_zone_lookup.csv", "test data").table.to_pandas()
    zones.loc[3, "Borough"] = None
    local = LocalLakeStore(tmp_path / "lake")
    local.publish(stage_dataframe(zones).path, ZONES_RELPATH)
    fake_google.tables[(PROJECT, DATASET, ZONES_TABLE)] = before = {"schema": {"fields": ZONES_BQ_FIELDS}}
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_table(ZONES_TABLE, LakeObject(local, ZONES_RELPATH), ZONES_SCHEMA)
    text = str(failure.value)
    assert text.startswith(f"{ZONES_TABLE}: BigQuery load of {tmp_path / 'lake' / ZONES_RELPATH} ")
    assert f"into {PROJECT}.{DATASET}.{ZONES_TABLE} failed (job taxi_{ZONES_TABLE}_" in text
    assert "Required field Borough cannot be null" in text
    assert fake_google.tables[(PROJECT, DATASET, ZONES_TABLE)] is before


def mart_sql(month: str = "2021-01") -> str:
    return trips_by_zone_sql(DATASETS.values(), dialect_for(URI), month)


def test_a_mart_month_is_one_truncating_query_job_into_its_partition(fake_google, warehouse):
    sql = mart_sql()
    fake_google.query_answers.append((MART_RESULT_FIELDS, MART_ROWS))
    assert warehouse.replace_month_from_query(MART_TABLE, "2021-01", sql, MART_SCHEMA) == len(MART_ROWS)

    (create,) = fake_google.calls("POST", f"/projects/{PROJECT}/datasets/{DATASET}/tables")
    assert create.json["tableReference"] == {"projectId": PROJECT, "datasetId": DATASET, "tableId": MART_TABLE}
    assert create.json["timePartitioning"] == {"type": "MONTH", "field": "source_month"}
    assert create.json["schema"] == {"fields": MART_BQ_FIELDS}

    (job,) = fake_google.calls("POST", f"/bigquery/v2/projects/{PROJECT}/jobs")
    columns = ", ".join(f"`{f.name}`" for f in MART_SCHEMA)
    assert job.json["configuration"] == {
        "query": {
            "query": f"SELECT {columns} FROM ({sql})",
            "useLegacySql": False,
            "destinationTable": {"projectId": PROJECT, "datasetId": DATASET, "tableId": f"{MART_TABLE}$202101"},
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_NEVER",
        }
    }
    assert job.json["jobReference"]["jobId"].startswith(f"taxi_{MART_TABLE}_202101_")
    for table in ["yellow_trips", "green_trips", "fhv_trips", "fhvhv_trips", ZONES_TABLE]:
        assert f"`{PROJECT}.{DATASET}.{table}`" in sql
    assert (
        "TIMESTAMP_DIFF(CAST(`tpep_dropoff_datetime` AS TIMESTAMP), "
        "CAST(`tpep_pickup_datetime` AS TIMESTAMP), MICROSECOND) / 1e6"
    ) in sql
    assert sql.count("TIMESTAMP_DIFF(") == 4 and "date_diff" not in sql.lower() and '"' not in sql
    # The row count is the job's result size, read without fetching any row.
    (results,) = fake_google.calls("GET", f"/projects/{PROJECT}/queries/{job.json['jobReference']['jobId']}")
    assert results.query["maxResults"] == ["0"]

    # Rebuilding the month: the table is found, the same partition truncated again.
    fake_google.query_answers.append((MART_RESULT_FIELDS, MART_ROWS[:1]))
    assert warehouse.replace_month_from_query(MART_TABLE, "2021-01-01", sql, MART_SCHEMA) == 1
    jobs = fake_google.calls("POST", f"/bigquery/v2/projects/{PROJECT}/jobs")
    assert [j.json["configuration"] for j in jobs] == [job.json["configuration"]] * 2


def test_a_failed_mart_query_names_table_month_and_partition(fake_google, warehouse):
    """The fake refuses rows outside the decorated partition, as BigQuery does: the error says where."""
    february = [("2021-02-01", *row[1:]) for row in MART_ROWS]
    fake_google.query_answers.append((MART_RESULT_FIELDS, february))
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_month_from_query(MART_TABLE, "2021-01", mart_sql(), MART_SCHEMA)
    text = str(failure.value)
    assert f"{MART_TABLE} 2021-01: BigQuery query into {PROJECT}.{DATASET}.{MART_TABLE}$202101 failed" in text
    assert "different partitions" in text


def test_an_existing_mart_table_partitioned_otherwise_is_refused_before_any_query(fake_google, warehouse):
    fake_google.tables[(PROJECT, DATASET, MART_TABLE)] = {
        "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": MART_TABLE},
        "schema": {"fields": MART_BQ_FIELDS},
        "timePartitioning": {"type": "DAY", "field": "source_month"},
    }
    with pytest.raises(WarehouseError, match="not partitioned by MONTH on source_month"):
        warehouse.replace_month_from_query(MART_TABLE, "2021-01", mart_sql(), MART_SCHEMA)
    assert not fake_google.jobs


def test_the_bigquery_dialect_qualifies_tables_with_the_uri_project_and_dataset():
    assert dialect_for(URI).table("yellow_trips") == f"`{PROJECT}.{DATASET}.yellow_trips`"
    assert dialect_for(URI + "/").table_prefix == f"{PROJECT}.{DATASET}."
    assert dialect_for(URI).name == "bigquery" and dialect_for("duckdb:///x.duckdb") is DUCKDB
    with pytest.raises(ValueError, match="expected bigquery://PROJECT/DATASET"):
        dialect_for(f"bigquery://{PROJECT}")


def as_duckdb(bigquery_sql: str) -> str:
    """The BigQuery text with each dialect piece replaced by DuckDB's: what is left is shared."""
    d = dialect_for(URI)
    swaps = {f"CAST(NULL AS {d.float_type})": f"CAST(NULL AS {DUCKDB.float_type})"}
    for spec in DATASETS.values():
        pickup, dropoff = spec.pickup_column, spec.dropoff_column
        swaps[d.seconds_between(d.ident(pickup), d.ident(dropoff))] = DUCKDB.seconds_between(
            DUCKDB.ident(pickup), DUCKDB.ident(dropoff)
        )
    for table in [*(spec.table for spec in DATASETS.values()), ZONES_TABLE, MART_TABLE]:
        swaps[d.table(table)] = DUCKDB.table(table)
    pattern = re.compile("|".join(re.escape(k) for k in sorted(swaps, key=len, reverse=True)))
    swapped = pattern.sub(lambda m: swaps[m.group(0)], bigquery_sql)
    # What remains quoted are column names.
    return re.sub(r"`([^`]*)`", lambda m: DUCKDB.ident(m.group(1)), swapped)


def test_the_bigquery_sql_is_the_duckdb_sql_with_only_the_dialect_pieces_swapped():
    """The DuckDB text is proven on data by test_mart.py; this pins the BigQuery text to it."""
    for month in ["2021-01", "2019-12"]:
        bigquery_sql, duckdb_sql = mart_sql(month), trips_by_zone_sql(DATASETS.values(), DUCKDB, month)
        assert bigquery_sql != duckdb_sql and '"' not in bigquery_sql
        assert as_duckdb(bigquery_sql) == duckdb_sql
        assert as_duckdb(month_totals_sql(dialect_for(URI), month)) == month_totals_sql(DUCKDB, month)
    assert BIGQUERY.table_prefix == ""  # the unqualified template; dialect_for adds the URI's
