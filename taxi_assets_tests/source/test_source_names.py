"""Source URLs that do not end in the file's name: the raw file is stored under a name that
says its format (the query's file name, or the month's name with the format its bytes show),
and the month loads."""

from __future__ import annotations

import pytest

from taxi_assets.source.http import url_file_name
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.reliability import materialize
from taxi_tools.mirror import Fault, MirrorServer, generate
from taxi_tools.mirror.generator import relpath

SPEC = DATASETS["yellow"]
MONTH = "2021-01"
ROWS = 120


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("named")
    generate(root, ["yellow"], [MONTH], rows=ROWS, formats=("csv", "parquet"))
    with MirrorServer(root) as server:
        yield server, root


@pytest.mark.parametrize(
    "url,name",
    [
        ("http://h/get?f=yellow_tripdata_2021-01.parquet", "yellow_tripdata_2021-01.parquet"),
        ("http://h/dl?token=abc&file=trips/green_tripdata_2021-01.csv.gz", "green_tripdata_2021-01.csv.gz"),
        (
            "http://h/trip-data/yellow_tripdata_2021-01.parquet?X-Amz-Signature=ab.csv",
            "yellow_tripdata_2021-01.parquet",
        ),
        ("http://h/download/1234", "1234"),
    ],
)
def test_the_file_name_comes_from_the_path_or_else_the_query(url, name):
    assert url_file_name(url) == name


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "template,served,fmt",
    [
        ("/get?f={dataset}_tripdata_{month}.parquet", "get", "parquet"),
        ("/download/{month}/{dataset}", "download/2021-01/yellow", "parquet"),
        ("/download/{month}/{dataset}", "download/2021-01/yellow", "csv"),
    ],
    ids=["name_in_the_query", "no_name_parquet", "no_name_gzip_csv"],
)
def test_a_url_without_the_file_name_is_stored_by_its_format_and_loads(
    files, tmp_path, monkeypatch, template, served, fmt
):
    server, root = files
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    server.set_fault(served, Fault("body", body=(root / relpath("yellow", MONTH, fmt)).read_bytes()))
    try:
        platform = Platform(tmp_path, server.base_url + template, zones_url=server.zones_url)
        result = materialize(platform, SPEC, MONTH)
    finally:
        server.clear_faults()
    assert result.success
    name = f"yellow_tripdata_{MONTH}.{'parquet' if fmt == 'parquet' else 'csv.gz'}"
    assert platform.lake().list(f"raw/yellow/month={MONTH}") == [f"raw/yellow/month={MONTH}/{name}"]
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: ROWS}


def test_a_csv_sent_with_content_encoding_gzip_is_stored_as_gzip_and_loads(files, tmp_path, monkeypatch):
    # The bytes as sent are kept (Accept-Encoding: identity asked for none): a .csv that is gzip.
    server, root = files
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    gz = (root / relpath("yellow", MONTH)).read_bytes()
    server.set_fault("yellow/yellow_tripdata_2021-01.csv", Fault("body", body=gz, headers={"Content-Encoding": "gzip"}))
    try:
        platform = Platform(tmp_path, server.base_url + "/{dataset}/{dataset}_tripdata_{month}.csv", server.zones_url)
        result = materialize(platform, SPEC, MONTH)
    finally:
        server.clear_faults()
    assert result.success
    name = f"yellow_tripdata_{MONTH}.csv.gz"
    assert platform.lake().list(f"raw/yellow/month={MONTH}") == [f"raw/yellow/month={MONTH}/{name}"]
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: ROWS}
