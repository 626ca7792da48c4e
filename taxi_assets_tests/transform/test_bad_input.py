"""Bad content through all three layers, served by the real mirror: malformed rows are
quarantined in the lake (or fail the run above the limit), schema drift is mapped,
reported or refused, and a failing load leaves every warehouse month as it was.

The raw layer keeps the file as the source served it once it passed transport
verification, so in the failing cases below the raw file is the new one while the
lake's Parquet and the warehouse keep the previous good version
(docs/failure-behaviour.md)."""

from __future__ import annotations

import csv
import gzip
import io
import re

import dagster as dg
import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.assets.keys import warehouse_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.reliability import State, edited_source, failure, lake_table, logged, materialize, set_field
from taxi_tools.mirror import Fault

SPEC = DATASETS["yellow"]
MONTH = "2021-01"
FILE = "yellow/yellow_tripdata_2021-01.csv.gz"
RAW = f"raw/yellow/month={MONTH}/yellow_tripdata_{MONTH}.csv.gz"
LAKE = f"yellow/month={MONTH}/part-0.parquet"
QUARANTINE = f"quarantine/yellow/month={MONTH}/rows.csv"


def serve(source, mirror_root, edit) -> bytes:
    body = edited_source(mirror_root, "yellow", MONTH, edit)
    source.set_fault(FILE, Fault("body", body=body))
    return body


def assert_warehouse_holds_exactly_the_lake_file(platform) -> None:
    lake = platform.lake().root / LAKE
    diff = platform.warehouse().query(
        f"SELECT (SELECT count(*) FROM (SELECT * FROM yellow_trips EXCEPT ALL SELECT * FROM read_parquet('{lake}', hive_partitioning=false))) AS extra, "
        f"(SELECT count(*) FROM (SELECT * FROM read_parquet('{lake}', hive_partitioning=false) EXCEPT ALL SELECT * FROM yellow_trips)) AS missing"
    )
    assert diff.to_pylist() == [{"extra": 0, "missing": 0}]


def assert_failed_in_lake_step(platform, good: State, result, error: str, message: str, body: bytes) -> None:
    step, cls, got = failure(result)
    assert (step, cls) == ("lake__yellow_lake", error)
    assert re.fullmatch(message, got, re.S), got
    after = State.of(platform, SPEC)
    assert after.warehouse.equals(good.warehouse)
    # Lake Parquet as before, nothing quarantined or temporary; raw is the file as served.
    assert {k: v for k, v in after.lake.items() if k != RAW} == {k: v for k, v in good.lake.items() if k != RAW}
    assert (platform.lake().root / RAW).read_bytes() == body


# ---------------------------------------------------------------- malformed rows


def drop_last_field(lines: list[str]) -> None:
    lines[10] = lines[10].rsplit(",", 1)[0]


def word_for_number(lines: list[str]) -> None:
    set_field(lines, 10, "passenger_count", "two")


def impossible_date(lines: list[str]) -> None:
    set_field(lines, 10, "tpep_pickup_datetime", "2021-02-30 10:00:00")


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "edit,error",
    [
        (drop_last_field, "expected 18 fields, got 17"),
        (word_for_number, "passenger_count: 'two' is not int32"),
        (impossible_date, "tpep_pickup_datetime: '2021-02-30 10:00:00' is not timestamp[us]"),
    ],
    ids=["wrong_field_count", "unparsable_number", "unparsable_date"],
)
def test_malformed_row_is_quarantined_in_the_lake_and_the_rest_lands(
    platform, good, source, mirror_root, clean_platform, edit, error
):
    body = serve(source, mirror_root, edit)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(platform, SPEC, MONTH, instance=instance)
    assert result.success

    # The quarantine holds the row as it was in the file, with the reason.
    lines = gzip.decompress(body).decode().splitlines()
    quarantined = list(csv.reader(io.StringIO((platform.lake().root / QUARANTINE).read_text())))
    assert quarantined == [["error", "record"], [error, lines[10]]]

    # Every other row landed, with the values a clean run gives them.
    clean = lake_table(clean_platform, "yellow", MONTH)
    expected = clean.slice(0, 9).to_pylist() + clean.slice(10).to_pylist()
    assert lake_table(platform, "yellow", MONTH).to_pylist() == expected
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: clean.num_rows - 1}
    assert_warehouse_holds_exactly_the_lake_file(platform)

    metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
    assert metadata["quarantined_rows"].value == 1
    assert metadata["quarantine_uri"].value == str(platform.lake().root / QUARANTINE)
    assert any("set aside 1 malformed" in m and error in m for m in logged(instance, result.run_id))
    assert not [f for f in State.of(platform, SPEC).lake if f.rsplit("/", 1)[-1].startswith(".")]


def test_a_clean_rerun_drops_the_old_quarantine(platform, good, source, mirror_root, clean_state):
    serve(source, mirror_root, word_for_number)
    assert materialize(platform, SPEC, MONTH).success
    assert (platform.lake().root / QUARANTINE).is_file()
    source.clear_faults()
    assert materialize(platform, SPEC, MONTH).success
    clean_state.assert_same(State.of(platform, SPEC))


def test_malformed_rows_above_the_limit_fail_the_run(platform, good, source, mirror_root):
    rows = pq.ParquetFile(platform.lake().root / LAKE).metadata.num_rows
    bad = int(rows * SPEC.thresholds.malformed_rows_error) + 1

    def many_words(lines: list[str]) -> None:
        for line in range(1, bad + 1):
            set_field(lines, line, "trip_distance", "far")

    body = serve(source, mirror_root, many_words)
    result = materialize(platform, SPEC, MONTH)
    message = (
        f"yellow 2021-01: {bad} of {rows:,} rows \\([\\d.]+%\\) of .*yellow_tripdata_2021-01.csv.gz are malformed, "
        f"more than the 1.00% allowed; e.g. trip_distance: 'far' is not double: .*"
    )
    assert_failed_in_lake_step(platform, good, result, "MalformedRowsError", message, body)


# ---------------------------------------------------------------- schema drift


def test_renamed_columns_are_mapped(platform, good, source, mirror_root, clean_platform):
    def rename(lines: list[str]) -> None:
        lines[0] = lines[0].replace("VendorID", "VENDORID").replace("tpep_pickup_datetime", "Tpep_Pickup_DateTime")

    serve(source, mirror_root, rename)
    result = materialize(platform, SPEC, MONTH)
    assert result.success
    assert lake_table(platform, "yellow", MONTH).equals(lake_table(clean_platform, "yellow", MONTH))
    assert State.of(platform, SPEC).warehouse.equals(good.warehouse)
    metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
    assert metadata["renamed_columns"].value == {
        "VENDORID": "VendorID",
        "Tpep_Pickup_DateTime": "tpep_pickup_datetime",
    }


def test_unknown_extra_column_is_reported_and_dropped(platform, good, source, mirror_root, clean_platform):
    def add_column(lines: list[str]) -> None:
        lines[0] += ",new_fee"
        for i in range(1, len(lines)):
            lines[i] += ",1.25"

    serve(source, mirror_root, add_column)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(platform, SPEC, MONTH, instance=instance)
    assert result.success
    table = lake_table(platform, "yellow", MONTH)
    assert table.schema.remove_metadata() == SPEC.arrow_schema()
    assert table.equals(lake_table(clean_platform, "yellow", MONTH))
    assert State.of(platform, SPEC).warehouse.equals(good.warehouse)
    metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
    assert metadata["dropped_columns"].value == ["new_fee"]
    assert "yellow 2021-01: dropped columns not in the spec: new_fee" in logged(instance, result.run_id)


def test_missing_required_column_fails_naming_it(platform, good, source, mirror_root):
    def drop_column(lines: list[str]) -> None:
        at = lines[0].split(",").index("PULocationID")
        for i, line in enumerate(lines):
            fields = line.split(",")
            del fields[at]
            lines[i] = ",".join(fields)

    body = serve(source, mirror_root, drop_column)
    result = materialize(platform, SPEC, MONTH)
    message = "yellow 2021-01: required column\\(s\\) PULocationID missing \\(file has VendorID, .*\\)"
    assert_failed_in_lake_step(platform, good, result, "SchemaError", message, body)


# ---------------------------------------------------------------- warehouse load


def test_load_failing_midway_changes_no_warehouse_month(platform, source):
    for month in ("2021-01", "2021-02"):
        assert materialize(platform, SPEC, month).success
    before = State.of(platform, SPEC)
    # February's lake file is damaged: the one-transaction load of both months fails
    # after deleting and reinserting January and deleting February; all rolled back.
    broken = platform.lake().root / "yellow" / "month=2021-02" / "part-0.parquet"
    broken.write_bytes(b"PAR1 not really parquet PAR1")
    result = dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        selection=[warehouse_key(SPEC)],
        resources=platform.resources(),
        tags={"dagster/asset_partition_range_start": "2021-01-01", "dagster/asset_partition_range_end": "2021-02-01"},
        raise_on_error=False,
    )
    step, _, message = failure(result)
    assert step == "warehouse__yellow_trips"
    assert str(broken) in message
    assert State.of(platform, SPEC).warehouse.equals(before.warehouse)
