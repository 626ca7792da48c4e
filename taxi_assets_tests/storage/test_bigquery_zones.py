"""The zone table on BigQuery, at the HTTP boundary of the real google-cloud-bigquery client
(the fake in fake_google.py; lake objects in the real fake-gcs-server): the exact load job that
replaces it. The dbt marts' BigQuery SQL is checked in test_marts.py (compiled offline,
transpiled to DuckDB, same rows)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse, WarehouseError
from taxi_assets.storage.lake import LakeObject, LocalLakeStore, lake_store_from_uri
from taxi_assets.storage.staging import StagedFile
from taxi_assets.transform.convert import PARQUET_COMPRESSION
from taxi_assets.transform.zones import ZONES_SCHEMA, ZONES_TABLE, read_zones_csv
from taxi_assets_tests.fake_google import DATASET, PROJECT
from taxi_assets_tests.harness import TEST_DATA

URI = f"bigquery://{PROJECT}/{DATASET}"
ZONES_RELPATH = f"{ZONES_TABLE}/part-0.parquet"
# Written out by hand (not derived from the schemas) so the tests check the mapping.
ZONES_BQ_FIELDS = [
    {"name": "LocationID", "type": "INT64", "mode": "REQUIRED"},
    {"name": "Borough", "type": "STRING", "mode": "REQUIRED"},
    {"name": "Zone", "type": "STRING", "mode": "REQUIRED"},
    {"name": "service_zone", "type": "STRING", "mode": "REQUIRED"},
]


@pytest.fixture
def warehouse(fake_google) -> BigQueryWarehouse:
    return BigQueryWarehouse.with_client(f"bigquery://{PROJECT}/{DATASET}", fake_google.bigquery_client())


@pytest.fixture
def zones_file(tmp_path, monkeypatch) -> Path:
    """The zone lookup's lake Parquet, written by the lake I/O manager's own code."""
    zones = read_zones_csv(TEST_DATA / "taxi_zone_lookup.csv", "test data")
    return stage_table(zones.table, tmp_path / "staging")


def stage_table(table: pa.Table, staging: Path) -> Path:
    """The table as the lake asset stages it."""
    staged = StagedFile.new("part-0.parquet", staging)
    pq.write_table(table, staged.path, compression=PARQUET_COMPRESSION)
    return staged.path


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
    zones = read_zones_csv(TEST_DATA / "taxi_zone_lookup.csv", "test data").table
    boroughs = zones["Borough"].to_pylist()
    boroughs[3] = None
    zones = zones.set_column(zones.schema.get_field_index("Borough"), "Borough", pa.array(boroughs))
    local = LocalLakeStore(tmp_path / "lake")
    local.publish(stage_table(zones, tmp_path / "staging"), ZONES_RELPATH)
    fake_google.tables[(PROJECT, DATASET, ZONES_TABLE)] = before = {"schema": {"fields": ZONES_BQ_FIELDS}}
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_table(ZONES_TABLE, LakeObject(local, ZONES_RELPATH), ZONES_SCHEMA)
    text = str(failure.value)
    assert text.startswith(f"{ZONES_TABLE}: BigQuery load of {tmp_path / 'lake' / ZONES_RELPATH} ")
    assert f"into {PROJECT}.{DATASET}.{ZONES_TABLE} failed (job taxi_{ZONES_TABLE}_" in text
    assert "Required field Borough cannot be null" in text
    assert fake_google.tables[(PROJECT, DATASET, ZONES_TABLE)] is before
