"""The BigQuery warehouse at the HTTP boundary of the real google-cloud-bigquery client.

The server is `fake_google.FakeGoogle`: these tests prove what the real client sends (table
definition, load-job configuration, partition decorators, uploads, SQL) and how our code reads
the answers, not that BigQuery accepts them. Lake objects live in the real fake-gcs-server.
What a BigQuery emulator can execute runs there too (test_bigquery_emulator.py); the loads
into a partition decorator, which it refuses, are tested only here.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse, WarehouseError
from taxi_assets.storage.lake import LakeObject, LocalLakeStore, lake_store_from_uri
from taxi_assets.transform.convert import convert
from taxi_assets_tests.fake_google import DATASET, PROJECT, SLOT_MS
from taxi_assets_tests.harness import MONTHS
from taxi_assets_tests.helpers import mirror_file

YELLOW = DATASETS["yellow"]

# Written out by hand (not derived from the spec) so the test checks the mapping.
# The table as the version before the whole record made it:
PREVIOUS_YELLOW_BQ_SCHEMA = [
    ("VendorID", "INT64"),
    ("tpep_pickup_datetime", "DATETIME"),
    ("tpep_dropoff_datetime", "DATETIME"),
    ("passenger_count", "INT64"),
    ("trip_distance", "FLOAT64"),
    ("RatecodeID", "INT64"),
    ("store_and_fwd_flag", "STRING"),
    ("PULocationID", "INT64"),
    ("DOLocationID", "INT64"),
    ("payment_type", "INT64"),
    ("fare_amount", "FLOAT64"),
    ("extra", "FLOAT64"),
    ("mta_tax", "FLOAT64"),
    ("tip_amount", "FLOAT64"),
    ("tolls_amount", "FLOAT64"),
    ("improvement_surcharge", "FLOAT64"),
    ("total_amount", "FLOAT64"),
    ("congestion_surcharge", "FLOAT64"),
    ("airport_fee", "FLOAT64"),
    ("cbd_congestion_fee", "FLOAT64"),
    ("source_month", "DATE"),
]
COORDINATES = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
YELLOW_BQ_SCHEMA = PREVIOUS_YELLOW_BQ_SCHEMA[:-1] + [(c, "FLOAT64") for c in COORDINATES] + [("source_month", "DATE")]


@pytest.fixture
def warehouse(fake_google) -> BigQueryWarehouse:
    return BigQueryWarehouse.with_client(f"bigquery://{PROJECT}/{DATASET}", fake_google.bigquery_client())


@pytest.fixture
def lake_files(tmp_path_factory, mirror_root):
    """The yellow lake Parquet of each test month, converted from the mirror's files."""
    root = tmp_path_factory.mktemp("lake")
    files = {}
    for month in MONTHS:
        dst = root / "yellow" / f"month={month}" / "part-0.parquet"
        dst.parent.mkdir(parents=True)
        convert(YELLOW, month, mirror_file(mirror_root, "yellow", month), dst)
        files[month] = dst
    return root, files


@pytest.fixture
def gcs_objects(gcs_bucket, lake_files):
    store = lake_store_from_uri(f"gs://{gcs_bucket.name}/lake")
    _, files = lake_files
    objects = {}
    for month, path in files.items():
        relpath = f"yellow/month={month}/part-0.parquet"
        store.publish(path, relpath)
        objects[partition_key(month)] = LakeObject(store, relpath)
    return objects


def test_months_load_from_gcs_into_a_month_partitioned_clustered_table(
    fake_google, warehouse, gcs_objects, gcs_bucket, lake_files
):
    _, files = lake_files
    result = warehouse.replace_months(YELLOW, gcs_objects)

    (create,) = fake_google.calls("POST", f"/projects/{PROJECT}/datasets/{DATASET}/tables")
    body = create.json
    assert body["tableReference"] == {"projectId": PROJECT, "datasetId": DATASET, "tableId": "yellow_trips"}
    assert body["timePartitioning"] == {"type": "MONTH", "field": "source_month"}
    assert body["clustering"] == {"fields": ["PULocationID", "DOLocationID"]}
    assert [(f["name"], f["type"], f["mode"]) for f in body["schema"]["fields"]] == [
        (name, t, "NULLABLE") for name, t in YELLOW_BQ_SCHEMA
    ]

    jobs = fake_google.calls("POST", f"/projects/{PROJECT}/jobs")
    assert len(jobs) == 2  # one load job per month
    for job, month in zip(jobs, MONTHS):
        load = job.json["configuration"]["load"]
        assert load == {
            "sourceUris": [f"gs://{gcs_bucket.name}/lake/yellow/month={month}/part-0.parquet"],
            "sourceFormat": "PARQUET",
            "writeDisposition": "WRITE_TRUNCATE",
            "destinationTable": {
                "projectId": PROJECT,
                "datasetId": DATASET,
                "tableId": f"yellow_trips${month.replace('-', '')}",
            },
        }
    assert not fake_google.calls("POST", "/upload/")  # the rows never passed through this process

    rows = {m: pq.ParquetFile(p).metadata.num_rows for m, p in files.items()}
    assert result.rows_by_month == rows
    md = result.metadata
    assert md["table"] == f"{PROJECT}.{DATASET}.yellow_trips"
    assert set(result.month_metadata) == set(MONTHS)
    for month, stats in result.month_metadata.items():
        assert stats["job_id"].startswith(f"taxi_yellow_{month.replace('-', '')}_")
        assert fake_google.jobs[stats["job_id"]]["configuration"]["load"]["destinationTable"]["tableId"] == (
            f"yellow_trips${month.replace('-', '')}"
        )
        assert stats["slot_ms"] == SLOT_MS
        assert stats["input_file_bytes"] == files[month].stat().st_size
        assert stats["output_bytes"] > 0


def test_reloading_a_month_reuses_the_table_and_truncates_only_its_partition(fake_google, warehouse, gcs_objects):
    jan = {k: v for k, v in gcs_objects.items() if k.startswith("2021-01")}
    warehouse.replace_months(YELLOW, jan)
    warehouse.replace_months(YELLOW, jan)
    creates = fake_google.calls("POST", "/tables")
    assert [r.path for r in fake_google.calls("GET", "/tables/yellow_trips")] == [
        f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/yellow_trips"
    ]  # the second run found the table (409) and read it back
    assert len(creates) == 2
    loads = fake_google.load_configs()
    assert [c["destinationTable"]["tableId"] for c in loads] == ["yellow_trips$202101"] * 2
    assert {c["writeDisposition"] for c in loads} == {"WRITE_TRUNCATE"}


def test_a_local_lake_uploads_the_file_to_the_load_job(fake_google, warehouse, lake_files):
    root, files = lake_files
    store = LocalLakeStore(root)
    objects = {partition_key(m): LakeObject(store, f"yellow/month={m}/part-0.parquet") for m in MONTHS}
    result = warehouse.replace_months(YELLOW, objects)

    starts = fake_google.calls("POST", f"/upload/bigquery/v2/projects/{PROJECT}/jobs")
    assert [r.query["uploadType"] for r in starts] == [["resumable"]] * 2
    for start, month in zip(starts, MONTHS):
        load = start.json["configuration"]["load"]
        assert "sourceUris" not in load
        assert load["sourceFormat"] == "PARQUET"
        assert load["writeDisposition"] == "WRITE_TRUNCATE"
        assert load["destinationTable"]["tableId"] == f"yellow_trips${month.replace('-', '')}"
    sent = b"".join(r.body for r in fake_google.calls("PUT", "/upload/"))
    assert sent == b"".join(files[m].read_bytes() for m in MONTHS)
    assert result.rows_by_month == {m: pq.ParquetFile(p).metadata.num_rows for m, p in files.items()}


def test_a_failed_load_names_dataset_month_and_file_and_keeps_earlier_months(
    fake_google, warehouse, gcs_objects, gcs_bucket
):
    fake_google.failing_partitions["202102"] = "Error while reading data, error message: corrupt Parquet file"
    with pytest.raises(WarehouseError) as failure:
        warehouse.replace_months(YELLOW, gcs_objects)
    text = str(failure.value)
    assert "yellow 2021-02" in text
    assert f"gs://{gcs_bucket.name}/lake/yellow/month=2021-02/part-0.parquet" in text
    assert "yellow_trips$202102" in text and "corrupt Parquet file" in text
    # January's job ran (its partition is replaced, whole); February's partition is untouched.
    tables = [c["destinationTable"]["tableId"] for c in fake_google.load_configs()]
    assert tables == ["yellow_trips$202101", "yellow_trips$202102"]


def test_the_fake_rejects_rows_outside_the_decorated_partition(fake_google, warehouse, gcs_objects):
    """Guards the fake itself: the partition check it does is what makes the load tests able to fail."""
    jan = gcs_objects[partition_key("2021-01")]
    warehouse.ensure_table(YELLOW)
    with pytest.raises(WarehouseError, match="different partitions"):
        warehouse._load(YELLOW, "2021-02", jan)


def test_a_table_without_month_partitions_gets_a_staged_delete_and_insert_from_gcs(
    fake_google, warehouse, gcs_objects, gcs_bucket
):
    """An existing unpartitioned table: each month is loaded from gs:// into a staging table of
    the file's columns, then deleted and inserted by name in one transaction (it runs on the
    emulator in test_bigquery_emulator.py; here, what the client sends from a GCS lake)."""
    fake_google.tables[(PROJECT, DATASET, "yellow_trips")] = {
        "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": "yellow_trips"},
        "schema": {"fields": [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in YELLOW_BQ_SCHEMA]},
    }
    for _ in MONTHS:  # per month: the staged rows outside the month (none), then the transaction
        fake_google.query_answers += [([{"name": "n", "type": "INTEGER"}], [(0,)]), ([], [])]
    result = warehouse.replace_months(YELLOW, gcs_objects)
    assert result.metadata["replaced_by"] == "staged delete and insert"

    loads = fake_google.load_configs()
    assert len(loads) == 2
    for load, month in zip(loads, MONTHS):
        yyyymm = month.replace("-", "")
        assert load["sourceUris"] == [f"gs://{gcs_bucket.name}/lake/yellow/month={month}/part-0.parquet"]
        assert load["destinationTable"]["tableId"].startswith(f"_taxi_stage_yellow_trips_{yyyymm}_")
        assert [f["name"] for f in load["schema"]["fields"]] == [n for n, _ in YELLOW_BQ_SCHEMA]
    queries = [j["configuration"]["query"]["query"] for j in fake_google.jobs.values() if "query" in j["configuration"]]
    scripts = [q for q in queries if q.startswith("BEGIN TRANSACTION;")]
    assert len(scripts) == 2
    columns = ", ".join(f"`{n}`" for n, _ in YELLOW_BQ_SCHEMA)
    for script, load, month in zip(scripts, loads, MONTHS):
        stage = load["destinationTable"]["tableId"]
        assert script == (
            "BEGIN TRANSACTION;\n"
            f"DELETE FROM `{PROJECT}.{DATASET}.yellow_trips` WHERE source_month = DATE '{month}-01';\n"
            f"INSERT INTO `{PROJECT}.{DATASET}.yellow_trips` ({columns}) "
            f"SELECT {columns} FROM `{PROJECT}.{DATASET}.{stage}`;\n"
            "COMMIT TRANSACTION;\n"
        )
    # Each staging table is dropped after its month.
    assert len(fake_google.calls("DELETE", "/tables/_taxi_stage_yellow_trips_")) == 2
    assert set(fake_google.tables) == {(PROJECT, DATASET, "yellow_trips")}


def test_a_missing_dataset_is_a_clear_error(fake_google, warehouse, gcs_objects):
    fake_google.datasets.clear()
    with pytest.raises(WarehouseError, match=f"dataset {PROJECT}.{DATASET} does not exist"):
        warehouse.replace_months(YELLOW, gcs_objects)


def test_month_row_counts_sends_one_grouping_query_and_reads_its_rows(fake_google, warehouse):
    fake_google.query_answers.append(
        (
            [{"name": "month", "type": "STRING"}, {"name": "row_count", "type": "INTEGER"}],
            [("2021-01", 990), ("2021-02", 1010)],
        )
    )
    assert warehouse.month_row_counts(YELLOW) == {"2021-01": 990, "2021-02": 1010}
    (job,) = fake_google.calls("POST", f"/projects/{PROJECT}/jobs")
    query = job.json["configuration"]["query"]
    assert query["query"] == (
        "SELECT FORMAT_DATE('%Y-%m', source_month) AS month, COUNT(*) AS row_count "
        f"FROM `{PROJECT}.{DATASET}.yellow_trips` GROUP BY month ORDER BY month"
    )
    assert query["useLegacySql"] is False

    fake_google.query_answers.append((404, f"Not found: Table {PROJECT}:{DATASET}.yellow_trips"))
    assert warehouse.month_row_counts(YELLOW) == {}


def test_query_resolves_table_names_in_the_warehouse_dataset(fake_google, warehouse):
    fake_google.query_answers.append(([{"name": "n", "type": "INTEGER"}], [(3,)]))
    assert warehouse.query("SELECT count(*) AS n FROM yellow_trips").to_pylist() == [{"n": 3}]
    (job,) = fake_google.calls("POST", "/jobs")
    assert job.json["configuration"]["query"]["defaultDataset"] == {"projectId": PROJECT, "datasetId": DATASET}


def test_a_table_of_the_previous_schema_gains_the_new_columns_in_place(fake_google, warehouse, gcs_objects):
    """No reload: the previous version's table (2019 on, no coordinates) gains the columns by
    `ALTER TABLE ADD COLUMN` (on the emulator too: test_bigquery_emulator.py), then its months
    are loaded into their partitions (which only this fake takes: the emulator refuses decorators)."""
    previous = [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in PREVIOUS_YELLOW_BQ_SCHEMA]
    fake_google.tables[(PROJECT, DATASET, "yellow_trips")] = {
        "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": "yellow_trips"},
        "schema": {"fields": previous},
        "timePartitioning": {"type": "MONTH", "field": "source_month"},
        "clustering": {"fields": ["PULocationID", "DOLocationID"]},
        "numRows": "1000000",
        "etag": "old",
    }
    result = warehouse.replace_months(YELLOW, gcs_objects)

    (alter,) = [
        j["configuration"]["query"]["query"] for j in fake_google.jobs.values() if "query" in j["configuration"]
    ]
    assert alter == "".join(
        f"ALTER TABLE `{PROJECT}.{DATASET}.yellow_trips` ADD COLUMN IF NOT EXISTS `{c}` FLOAT64;\n" for c in COORDINATES
    )
    fields = fake_google.tables[(PROJECT, DATASET, "yellow_trips")]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields[: len(PREVIOUS_YELLOW_BQ_SCHEMA)]] == PREVIOUS_YELLOW_BQ_SCHEMA
    added = [(f["name"], f["type"], f["mode"]) for f in fields[len(PREVIOUS_YELLOW_BQ_SCHEMA) :]]
    assert added == [(c, "FLOAT64", "NULLABLE") for c in COORDINATES]
    # The table was neither created again nor replaced: each month went into its own partition.
    assert not fake_google.calls("DELETE", "/tables/")
    assert fake_google.tables[(PROJECT, DATASET, "yellow_trips")]["numRows"] == "1000000"
    assert [c["destinationTable"]["tableId"] for c in fake_google.load_configs()] == [
        f"yellow_trips${m.replace('-', '')}" for m in MONTHS
    ]
    assert result.metadata["migrated_columns"] == ", ".join(COORDINATES)
    # A second load finds nothing to add.
    warehouse.replace_months(YELLOW, gcs_objects)
    assert len([j for j in fake_google.jobs.values() if "query" in j["configuration"]]) == 1
