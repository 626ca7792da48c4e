"""The GCS drop-zone sensor with the real google-cloud-storage client against fake-gcs-server
(the session's `fake_gcs`)."""

import uuid

import dagster as dg
import pytest
from google.cloud import storage

from taxi_assets.defs.resources import build_resources
from taxi_assets.defs.sensors.gcs_drop import build_gcs_drop_sensor
from taxi_assets.source.drop_zone import DROP_URI_ENV
from taxi_assets.spec.datasets import DATASETS
from taxi_tools.mirror import generate
from taxi_tools.mirror.generator import relpath

YELLOW = DATASETS["yellow"]


@pytest.fixture
def drop_bucket(fake_gcs, monkeypatch):
    # fake_gcs sets STORAGE_EMULATOR_HOST, which this client and the product's follow.
    bucket = storage.Client().create_bucket(f"drops-{uuid.uuid4().hex[:12]}")
    # As a deployment sets it: the definitions built from the environment carry it to the sensor.
    monkeypatch.setenv(DROP_URI_ENV, f"gs://{bucket.name}/incoming")
    return bucket


def tick(sensor, cursor):
    """A tick with the source resource as the definitions build it from the environment now."""
    source = build_resources()["source"].process_config_and_initialize()
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), cursor=cursor, resources={"source": source}
    )
    return sensor(context)


def upload_month(bucket, tmp_path, dataset, month, rows, folder="incoming"):
    root = tmp_path / f"gen-{uuid.uuid4().hex[:6]}"
    generate(root, [dataset], [month], rows=rows)
    key = f"{folder}/{dataset}_tripdata_{month}.csv.gz"
    bucket.blob(key).upload_from_filename(root / relpath(dataset, month))
    return key


def test_without_a_drop_zone_the_sensor_says_so(monkeypatch):
    monkeypatch.delenv(DROP_URI_ENV, raising=False)
    result = tick(build_gcs_drop_sensor(), None)
    assert isinstance(result, dg.SkipReason)
    assert DROP_URI_ENV in result.skip_message


def test_a_dropped_file_loads_its_month_from_gcs_once(drop_bucket, tmp_path, platform, mirror):
    sensor = build_gcs_drop_sensor()
    drop_bucket.blob("incoming/README.txt").upload_from_string(b"drop month files here")
    key = upload_month(drop_bucket, tmp_path, "yellow", "2021-02", rows=77)
    drop_bucket.blob("elsewhere/yellow_tripdata_2021-01.csv.gz").upload_from_string(b"outside the prefix")

    first = tick(sensor, None)
    (request,) = first.run_requests
    uri = f"gs://{drop_bucket.name}/{key}"
    generation = drop_bucket.get_blob(key).generation
    assert request.job_name == "yellow_month_job"
    assert request.partition_key == "2021-02-01"
    assert request.run_key == f"{uri}#{generation}"
    assert request.run_config == {"ops": {"raw__yellow_raw": {"config": {"source_uri": uri}}}}
    assert request.tags["taxi/trigger"] == "gcs_drop"

    second = tick(sensor, first.cursor)
    assert second.run_requests == []
    assert second.skip_reason.skip_message == f"no new month file under gs://{drop_bucket.name}/incoming/"

    # The run it asks for reads the dropped object, not the HTTP source.
    gets_before = mirror.request_count(relpath("yellow", "2021-02"), "GET")
    result = platform.materialize(YELLOW, "2021-02", run_config=request.run_config)
    assert result.success
    assert mirror.request_count(relpath("yellow", "2021-02"), "GET") == gets_before
    raw_md = result.asset_materializations_for_node("raw__yellow_raw")[0].metadata
    assert raw_md["url"].value == uri
    assert platform.warehouse().month_row_counts(YELLOW)["2021-02"] == 77

    # A re-upload of the same key is a new generation: requested again, once.
    upload_month(drop_bucket, tmp_path, "yellow", "2021-02", rows=78)
    third = tick(sensor, second.cursor)
    (again,) = third.run_requests
    assert again.run_key == f"{uri}#{drop_bucket.get_blob(key).generation}" != request.run_key
    assert tick(sensor, third.cursor).run_requests == []


def test_files_that_are_not_months_are_skipped_and_runs_bounded(drop_bucket, tmp_path):
    drop_bucket.blob("incoming/purple_tripdata_2021-01.csv.gz").upload_from_string(b"no such dataset")
    for month in ("2021-01", "2021-02", "2021-03"):
        upload_month(drop_bucket, tmp_path, "green", month, rows=5)
    sensor = build_gcs_drop_sensor(max_runs=2)
    first = tick(sensor, None)
    assert [r.partition_key for r in first.run_requests] == ["2021-01-01", "2021-02-01"]
    assert {r.job_name for r in first.run_requests} == {"green_month_job"}
    second = tick(sensor, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2021-03-01"]
    third = tick(sensor, second.cursor)
    assert third.run_requests == []
