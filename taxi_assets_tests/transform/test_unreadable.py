"""Every way a row can be unreadable sets that row aside (never the month), values are
never silently changed, and both reader modes apply the same rules. Each case runs all
three layers against the real mirror and checks the lake and the warehouse afterwards."""

from __future__ import annotations

import csv
import gzip
import io

import dagster as dg

from taxi_assets_tests.helpers import mirror_file
from taxi_assets_tests.reliability import lake_table, logged, materialize, set_field
from taxi_assets_tests.transform.test_bad_input import (
    FILE,
    MONTH,
    QUARANTINE,
    SPEC,
    assert_failed_in_lake_step,
    assert_warehouse_holds_exactly_the_lake_file,
    serve,
)
from taxi_tools.mirror import Fault


def serve_bytes(source, body: bytes) -> bytes:
    gz = gzip.compress(body)
    source.set_fault(FILE, Fault("body", body=gz))
    return gz


def quarantined(platform) -> list[list[str]]:
    csv.field_size_limit(1 << 24)  # a set-aside record may be long (the whole record is kept)
    return list(csv.reader(io.StringIO((platform.lake().root / QUARANTINE).read_text())))[1:]


def assert_only_line_10_set_aside(platform, clean_platform, result, reason: str, record: str) -> None:
    """The month landed without line 10 of the file, which is in the quarantine with its reason."""
    assert result.success
    assert quarantined(platform) == [[reason, record]]
    clean = lake_table(clean_platform, "yellow", MONTH)
    expected = clean.slice(0, 9).to_pylist() + clean.slice(10).to_pylist()
    assert lake_table(platform, "yellow", MONTH).to_pylist() == expected
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: clean.num_rows - 1}
    assert_warehouse_holds_exactly_the_lake_file(platform)


def clean_lines(mirror_root) -> list[str]:
    return gzip.decompress(mirror_file(mirror_root, "yellow", MONTH).read_bytes()).decode().splitlines()


# ------------------------------------------------------------ rows the fast mode cannot read


def test_a_byte_that_is_not_utf8_sets_its_row_aside(platform, good, source, mirror_root, clean_platform):
    lines = clean_lines(mirror_root)
    raw = [line.encode() for line in lines]
    raw[10] = raw[10].replace(b",N,", b",\xff,", 1)  # store_and_fwd_flag
    serve_bytes(source, b"\n".join(raw) + b"\n")
    result = materialize(platform, SPEC, MONTH)
    record = lines[10].replace(",N,", ",\\xff,", 1)
    assert_only_line_10_set_aside(
        platform, clean_platform, result, "store_and_fwd_flag: b'\\xff' is not UTF-8 text", record
    )


def test_a_bom_and_a_malformed_row_set_the_row_aside(platform, good, source, mirror_root, clean_platform):
    lines = clean_lines(mirror_root)
    bad = lines[10].rsplit(",", 1)[0]
    serve_bytes(source, ("\ufeff" + "\n".join([*lines[:10], bad, *lines[11:]]) + "\n").encode())
    result = materialize(platform, SPEC, MONTH)
    assert_only_line_10_set_aside(platform, clean_platform, result, "expected 18 fields, got 17", bad)


def test_a_record_longer_than_two_csv_blocks_is_set_aside(platform, good, source, mirror_root, clean_platform):
    lines = clean_lines(mirror_root)
    huge = "Y" * 600_000  # > 2 x the 256 KiB fast-mode block
    edited = lines.copy()
    set_field(edited, 10, "store_and_fwd_flag", huge)
    serve_bytes(source, ("\n".join(edited) + "\n").encode())
    result = materialize(platform, SPEC, MONTH)
    assert_only_line_10_set_aside(
        platform,
        clean_platform,
        result,
        "store_and_fwd_flag: a value of 600,000 characters (at most 1000 are read)",
        edited[10],
    )


def test_a_hexadecimal_integer_is_not_read_as_a_number(platform, good, source, mirror_root, clean_platform):
    body = serve(source, mirror_root, lambda lines: set_field(lines, 10, "PULocationID", "0x8E"))
    result = materialize(platform, SPEC, MONTH)
    line = gzip.decompress(body).decode().splitlines()[10]
    assert_only_line_10_set_aside(
        platform, clean_platform, result, "PULocationID: '0x8E' is not a decimal integer", line
    )


def test_a_time_with_a_zone_offset_is_set_aside_not_shifted(platform, good, source, mirror_root, clean_platform):
    def zoned(lines):
        value = lines[10].split(",")[1]
        set_field(lines, 10, "tpep_pickup_datetime", value + "-05:00")

    body = serve(source, mirror_root, zoned)
    result = materialize(platform, SPEC, MONTH)
    line = gzip.decompress(body).decode().splitlines()[10]
    value = line.split(",")[1]
    reason = f"tpep_pickup_datetime: {value!r} carries a time zone; TLC times are New York wall-clock times without one"
    assert_only_line_10_set_aside(platform, clean_platform, result, reason, line)


def test_a_file_of_zoned_times_is_refused_naming_the_reason(platform, good, source, mirror_root):
    def all_zoned(lines):
        for i in range(1, len(lines)):
            set_field(lines, i, "tpep_dropoff_datetime", lines[i].split(",")[2] + "Z")

    body = serve(source, mirror_root, all_zoned)
    result = materialize(platform, SPEC, MONTH)
    message = r"yellow 2021-01: .* rows \(100.00%\) of .* are malformed, .*carries a time zone; TLC times are New York wall-clock times without one.*"
    assert_failed_in_lake_step(platform, good, result, "MalformedRowsError", message, body)


# ------------------------------------------------------------ values that are not numbers


def test_nan_and_infinity_are_stored_as_null_and_counted(platform, good, source, mirror_root, clean_platform):
    def not_numbers(lines):
        set_field(lines, 10, "total_amount", "nan")
        set_field(lines, 11, "total_amount", "inf")
        set_field(lines, 12, "tip_amount", "-Infinity")

    serve(source, mirror_root, not_numbers)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(platform, SPEC, MONTH, instance=instance)
    assert result.success
    expected = lake_table(clean_platform, "yellow", MONTH).to_pylist()
    for row, column in ((9, "total_amount"), (10, "total_amount"), (11, "tip_amount")):
        expected[row][column] = None
    assert lake_table(platform, "yellow", MONTH).to_pylist() == expected
    assert not (platform.lake().root / QUARANTINE).exists()
    assert_warehouse_holds_exactly_the_lake_file(platform)
    total = (
        platform.warehouse()
        .query("SELECT sum(total_amount) AS s, count(total_amount) AS n FROM yellow_trips")
        .to_pylist()[0]
    )
    assert total["s"] == total["s"] and total["n"] == len(expected) - 2  # a number, not NaN
    metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
    assert metadata["non_finite_nulled"].value == {"total_amount": 2, "tip_amount": 1}
    assert "yellow 2021-01: NaN/infinite values stored as null: 1 in tip_amount, 2 in total_amount" in logged(
        instance, result.run_id
    )


def test_nan_is_nulled_in_the_careful_mode_too(platform, good, source, mirror_root, clean_platform):
    def nan_and_a_bad_row(lines):
        set_field(lines, 5, "total_amount", "NaN")
        set_field(lines, 10, "passenger_count", "two")

    serve(source, mirror_root, nan_and_a_bad_row)
    result = materialize(platform, SPEC, MONTH)
    assert result.success and len(quarantined(platform)) == 1
    metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
    assert metadata["non_finite_nulled"].value == {"total_amount": 1}
    assert lake_table(platform, "yellow", MONTH).column("total_amount")[4].as_py() is None


# ------------------------------------------------------------ two columns for one


def test_the_exact_name_wins_over_another_spelling_on_both_paths(platform, good, source, mirror_root, clean_platform):
    def with_a_second_vendor_column(lines, bad_row: bool):
        lines[0] = "vendorid," + lines[0]
        for i in range(1, len(lines)):
            lines[i] = "99," + lines[i]
        if bad_row:
            fields = lines[10].split(",")
            fields[4] = "two"  # passenger_count, one column to the right
            lines[10] = ",".join(fields)

    for bad_row in (False, True):  # fast mode, then careful mode
        serve(source, mirror_root, lambda lines: with_a_second_vendor_column(lines, bad_row))
        instance = dg.DagsterInstance.ephemeral()
        result = materialize(platform, SPEC, MONTH, instance=instance)
        assert result.success
        vendors = set(lake_table(platform, "yellow", MONTH).column("VendorID").to_pylist())
        assert 99 not in vendors and vendors <= {1, 2, None}
        metadata = result.asset_materializations_for_node("lake__yellow_lake")[0].metadata
        assert metadata["dropped_columns"].value == ["vendorid"]
        assert metadata["quarantined_rows"].value == int(bad_row)
        assert "yellow 2021-01: dropped columns not in the spec: vendorid" in logged(instance, result.run_id)
        assert_warehouse_holds_exactly_the_lake_file(platform)


def test_two_equally_good_columns_for_one_are_an_error_naming_both(platform, good, source, mirror_root):
    def two_spellings(lines):
        lines[0] = "VENDORID," + lines[0].replace("VendorID", "vendorid", 1)
        for i in range(1, len(lines)):
            lines[i] = "99," + lines[i]

    body = serve(source, mirror_root, two_spellings)
    result = materialize(platform, SPEC, MONTH)
    message = (
        r"yellow 2021-01: columns 'VENDORID' \(#1\) and 'vendorid' \(#2\) both read as VendorID; "
        r"nothing says which one holds it: rename or drop one"
    )
    assert_failed_in_lake_step(platform, good, result, "SchemaError", message, body)


def test_an_unclosed_quote_cannot_hide_the_rest_of_the_file_in_one_row(platform, good, source, mirror_root):
    """Every line after the quote becomes part of one record: the share counts those lines."""
    body = serve(source, mirror_root, lambda lines: set_field(lines, 10, "store_and_fwd_flag", '"N'))
    result = materialize(platform, SPEC, MONTH)
    message = r"yellow 2021-01: 1,191 of 1,200 rows \(99.25%\) of .* are malformed, more than the 1.00% allowed; e.g. expected 18 fields, got 7: .*"
    assert_failed_in_lake_step(platform, good, result, "MalformedRowsError", message, body)
