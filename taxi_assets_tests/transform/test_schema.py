"""Lake column types equal the declared schema, for generated files and for real TLC samples."""

from __future__ import annotations

import gzip
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.errors import SchemaError
from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.transform.convert import convert
from taxi_assets.transform.reader import resolve_columns
from taxi_assets_tests.harness import MONTHS, TEST_DATA, Platform
from taxi_assets_tests.helpers import csv_data_rows, mirror_file
from taxi_tools.mirror import MirrorServer


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_generated_months_convert_to_the_declared_schema(tmp_path, mirror_root, dataset):
    spec = DATASETS[dataset]
    out = tmp_path / "out.parquet"
    result = convert(spec, MONTHS[0], mirror_file(mirror_root, dataset, MONTHS[0]), out)
    assert pq.read_schema(out).remove_metadata() == spec.arrow_schema()
    assert result.rows == pq.ParquetFile(out).metadata.num_rows


def test_fhv_2019_spelling_is_normalised(tmp_path):
    from taxi_tools.mirror import generate

    generate(tmp_path / "m", ["fhv"], ["2019-06"], rows=50)
    src = mirror_file(tmp_path / "m", "fhv", "2019-06")
    with gzip.open(src, "rt") as f:
        assert "PUlocationID" in f.readline()
    result = convert(DATASETS["fhv"], "2019-06", src, tmp_path / "fhv.parquet")
    assert result.renamed == {
        "dropOff_datetime": "dropoff_datetime",
        "PUlocationID": "PULocationID",
        "DOlocationID": "DOLocationID",
    }
    table = pq.read_table(tmp_path / "fhv.parquet")
    assert table.schema.remove_metadata() == DATASETS["fhv"].arrow_schema()
    assert table.column("PULocationID").null_count < table.num_rows


def test_real_yellow_csv_sample_converts_with_values_intact(tmp_path):
    src = TEST_DATA / "yellow_tripdata_2020-07_sample.csv"
    out = tmp_path / "y.parquet"
    result = convert(DATASETS["yellow"], "2020-07", src, out)
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == DATASETS["yellow"].arrow_schema()
    # Every line of the sample (266 data rows, the last without a newline) lands.
    assert result.rows == table.num_rows == csv_data_rows(src) == 266
    first = table.slice(0, 1).to_pylist()[0]
    # Values from the sample's first data line.
    assert first["VendorID"] == 1
    assert str(first["tpep_pickup_datetime"]) == "2020-07-01 00:25:32"
    assert first["trip_distance"] == 1.5
    assert first["total_amount"] == 9.3
    assert first["store_and_fwd_flag"] == "N"
    assert first["airport_fee"] is None
    assert str(first[SOURCE_MONTH_COLUMN]) == "2020-07-01"


def test_real_official_green_parquet_converts_to_the_declared_schema(tmp_path):
    src = TEST_DATA / "green_tripdata_2023-12.parquet"
    out = tmp_path / "g.parquet"
    result = convert(DATASETS["green"], "2023-12", src, out)
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == DATASETS["green"].arrow_schema()
    assert result.rows == table.num_rows == 64_215
    assert table.column("ehail_fee").null_count == table.num_rows
    original = pq.read_table(src, columns=["total_amount", "passenger_count"])
    assert pa.compute.sum(table["total_amount"]).as_py() == pytest.approx(
        pa.compute.sum(original["total_amount"]).as_py()
    )
    assert table["passenger_count"].null_count == original["passenger_count"].null_count


def test_official_parquet_source_through_all_layers(tmp_path, monkeypatch):
    """The official TLC source serves Parquet: raw keeps it as is, lake reads it to the same schema."""
    root = tmp_path / "official"
    (root / "green").mkdir(parents=True)
    shutil.copy(TEST_DATA / "green_tripdata_2023-12.parquet", root / "green")
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    with MirrorServer(root) as server:
        platform = Platform(tmp_path / "p", server.base_url + "/{dataset}/{dataset}_tripdata_{month}.parquet")
        assert platform.materialize(DATASETS["green"], "2023-12").success
    raw = platform.lake().root / "raw" / "green" / "month=2023-12" / "green_tripdata_2023-12.parquet"
    assert raw.read_bytes() == (TEST_DATA / "green_tripdata_2023-12.parquet").read_bytes()
    assert platform.warehouse().month_row_counts(DATASETS["green"]) == {"2023-12": 64_215}


def test_missing_required_column_is_named():
    spec = DATASETS["yellow"]
    names = [c.name for c in spec.columns if c.name != "PULocationID"]
    with pytest.raises(SchemaError, match="yellow 2021-01: required column.*PULocationID"):
        resolve_columns(spec, names, "yellow 2021-01")


def test_known_renames_and_extra_columns_are_reported():
    spec = DATASETS["yellow"]
    names = [c.name for c in spec.columns if c.name != "airport_fee"] + ["Airport_fee", "new_fee"]
    mapping, extra, fill = resolve_columns(spec, names, "yellow 2024-01")
    assert mapping["Airport_fee"] == "airport_fee"
    assert extra == ["new_fee"]
    assert fill == []
