"""The fast lake conversion: same values as an independent reader, row groups, errors, the seam for malformed rows."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import taxi_assets.transform.convert as convert_module
import taxi_assets.transform.reader as reader_module
from taxi_assets.errors import ConversionError, MalformedRowsError, SchemaError, UnreadableRowError
from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.transform.convert import convert, month_column, outside_month_rows
from taxi_assets.transform.quarantine import convert_quarantining
from taxi_assets_tests.helpers import mirror_file
from taxi_tools.mirror import generate

YELLOW = DATASETS["yellow"]


@pytest.fixture(scope="module")
def month_5k(tmp_path_factory):
    root = tmp_path_factory.mktemp("m5k")
    generate(root, ["yellow"], ["2021-01"], rows=5000)
    return mirror_file(root, "yellow", "2021-01")


def independent_read(src) -> pa.Table:
    """The file read whole by pyarrow's plain read_csv with the declared types (no streaming, no threads of ours)."""
    types = {c.name: c.type for c in YELLOW.columns}
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True))
    return table


def test_small_row_groups_hold_every_value_of_an_independent_read(tmp_path, month_5k, monkeypatch):
    monkeypatch.setattr(convert_module, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(reader_module, "PARSE_BLOCK_SIZE", 7 << 10)  # ~70 blocks on the parser threads, in order
    out = tmp_path / "out.parquet"
    result = convert(YELLOW, "2021-01", month_5k, out)
    meta = pq.ParquetFile(out).metadata
    assert result.row_groups == meta.num_row_groups == 5
    assert all(meta.row_group(i).num_rows == 1000 for i in range(meta.num_row_groups))
    ours = pq.read_table(out)
    expected = independent_read(month_5k)
    assert ours.num_rows == expected.num_rows == 5000
    for name in expected.column_names:
        assert ours[name].equals(expected[name].cast(ours[name].type)), name
    for name in ("airport_fee", "cbd_congestion_fee"):  # absent from the file: typed nulls
        assert ours[name].null_count == 5000 and ours[name].type == pa.float64()
    assert set(ours[SOURCE_MONTH_COLUMN].to_pylist()) == {dt.date(2021, 1, 1)}
    pickup = expected["tpep_pickup_datetime"]
    lo, hi = (
        pa.scalar(dt.datetime(2021, 1, 1), pa.timestamp("us")),
        pa.scalar(dt.datetime(2021, 2, 1), pa.timestamp("us")),
    )
    assert result.outside_month_rows == pc.sum(pc.or_(pc.less(pickup, lo), pc.greater_equal(pickup, hi))).as_py() > 0


def test_columns_in_another_order_with_aliases_extras_and_a_bom(tmp_path):
    header = [
        "extra_col",
        "total_amount",
        *[c.name for c in YELLOW.columns[:17] if c.name != "total_amount"],
        "Airport_fee",
    ]
    row = {
        "extra_col": "zzz",
        "total_amount": "12.5",
        "VendorID": "2",
        "tpep_pickup_datetime": "2024-01-03 10:00:00",
        "tpep_dropoff_datetime": "2024-01-03 10:10:00",
        "passenger_count": "",
        "trip_distance": ".73",
        "RatecodeID": "1",
        "store_and_fwd_flag": "N",
        "PULocationID": "264",
        "DOLocationID": "265",
        "payment_type": "1",
        "fare_amount": "8",
        "extra": "0",
        "mta_tax": "0.5",
        "tip_amount": "1",
        "tolls_amount": "0",
        "improvement_surcharge": "0.3",
        "Airport_fee": "1.25",
    }
    src = tmp_path / "yellow_tripdata_2024-01.csv.gz"
    src.write_bytes(
        gzip.compress(("\ufeff" + ",".join(header) + "\n" + ",".join(row[h] for h in header) + "\n").encode())
    )
    result = convert(YELLOW, "2024-01", src, tmp_path / "out.parquet")
    assert result.extra_columns == ["extra_col"]
    assert result.renamed == {"Airport_fee": "airport_fee"}
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.remove_metadata() == YELLOW.arrow_schema()
    got = table.to_pylist()[0]
    assert got["total_amount"] == 12.5 and got["airport_fee"] == 1.25 and got["trip_distance"] == 0.73
    assert got["passenger_count"] is None and got["PULocationID"] == 264 and got["cbd_congestion_fee"] is None


def test_outside_month_count_matches_arrow_compute_with_nulls_and_slices():
    values = [
        dt.datetime(2020, 12, 31, 23),
        None,
        dt.datetime(2021, 1, 1),
        dt.datetime(2021, 1, 31, 23, 59),
        dt.datetime(2021, 2, 1),
        None,
        dt.datetime(2021, 2, 3),
        dt.datetime(2021, 1, 15),
    ] * 5
    array = pa.array(values, pa.timestamp("us"))
    chunked = pa.chunked_array([array.slice(3, 17), array.slice(20), pa.array([], pa.timestamp("us"))])
    lo, hi = (
        pa.scalar(dt.datetime(2021, 1, 1), pa.timestamp("us")),
        pa.scalar(dt.datetime(2021, 2, 1), pa.timestamp("us")),
    )
    expected = pc.sum(pc.or_(pc.less(chunked, lo), pc.greater_equal(chunked, hi))).as_py()
    assert outside_month_rows(chunked, dt.date(2021, 1, 1), dt.date(2021, 2, 1)) == expected == 14


def test_month_column_is_the_first_day_as_date32():
    column = month_column(dt.date(2019, 3, 1), 4)
    assert column.type == pa.date32() and column.to_pylist() == [dt.date(2019, 3, 1)] * 4


def test_a_csv_conversion_does_not_import_pandas(month_5k, tmp_path):
    """pyarrow imports pandas lazily on pa.scalar/pa.array/compute: 0.3+ s and ~45 MiB per process."""
    code = (
        "import sys; from taxi_assets.transform.convert import main; "
        f"main(['--dataset', 'yellow', '--month', '2021-01', {str(month_5k)!r}, {str(tmp_path / 'o.parquet')!r}]); "
        "assert 'pandas' not in sys.modules, 'pandas was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert '"rows": 5000' in proc.stdout
    assert pq.ParquetFile(tmp_path / "o.parquet").metadata.num_rows == 5000


def _raw(src) -> bytes:
    return gzip.decompress(src.read_bytes())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw.replace(b"\n1,", b"\nX,", 1), r"CSV conversion error to int32: invalid value 'X'"),
        (lambda raw: raw[:1000] + b"1,2,3\n" + raw[1000:], r"Expected 18 columns, got"),
    ],
)
def test_a_row_that_does_not_fit_raises_the_malformed_rows_error(tmp_path, month_5k, damage, message):
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(gzip.compress(damage(_raw(month_5k))))
    with pytest.raises(UnreadableRowError, match=rf"yellow 2021-01 \({src}\).*{message}"):
        convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda gz: gz[: len(gz) // 2], "ended before the end-of-stream marker"),
        (lambda gz: gz[: len(gz) // 2] + bytes(range(256)) * 8 + gz[len(gz) // 2 + 2048 :], ""),
        (lambda gz: b"<html>not found</html>" * 50, "Not a gzipped file"),
    ],
)
def test_a_broken_gzip_is_a_conversion_error_naming_the_file(tmp_path, month_5k, damage, message):
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(damage(month_5k.read_bytes()))
    with pytest.raises(
        ConversionError, match=rf"yellow 2021-01: cannot (convert|read header of) {src}: .*{message}"
    ) as err:
        convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")
    assert not isinstance(err.value, UnreadableRowError)


def test_a_block_cut_inside_a_quoted_line_break_goes_to_the_careful_mode(tmp_path, month_5k, monkeypatch):
    """The fast mode cuts the file into blocks at line breaks; one inside a quoted value
    would give wrong rows, so that block stops the fast mode and the careful mode, which
    reads the stream whole, converts the file: the same rows as a fast read that did not cut there."""
    lines = _raw(month_5k).split(b"\n")
    fields = lines[2500].split(b",")
    fields[6] = b'"N\n' + b"Y" * 40 + b'"'  # store_and_fwd_flag: not a known code, so null (counted)
    lines[2500] = b",".join(fields)
    raw = b"\n".join(lines)
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(gzip.compress(raw))
    whole = convert(YELLOW, "2021-01", src, tmp_path / "whole.parquet")  # one block: the quote is inside it
    assert whole.rows == 5000 and whole.unknown_codes == {"store_and_fwd_flag": {"N\n" + "Y" * 40: 1}}

    # The first block now ends right after the quoted line break.
    monkeypatch.setattr(reader_module, "PARSE_BLOCK_SIZE", raw.index(b'"N\n') + 3 + 20)
    with pytest.raises(UnreadableRowError, match=rf"yellow 2021-01 \({src}\): a quoted value spans lines"):
        convert(YELLOW, "2021-01", src, tmp_path / "cut.parquet")
    result, found = convert_quarantining(YELLOW, "2021-01", src, tmp_path / "careful.parquet", tmp_path / "q.csv")
    assert result.rows == 5000 and found.rows == 0 and result.unknown_codes == whole.unknown_codes
    assert pq.read_table(tmp_path / "careful.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))


def test_a_record_longer_than_two_parse_blocks_stops_the_fast_mode(tmp_path, month_5k, monkeypatch):
    monkeypatch.setattr(reader_module, "PARSE_BLOCK_SIZE", 16 << 10)
    lines = _raw(month_5k).split(b"\n")
    lines[100] = lines[100].replace(b",N,", b"," + b"Y" * (40 << 10) + b",", 1)
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(UnreadableRowError, match=r"yellow 2021-01 .*: a record longer than 32 KiB"):
        convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")


# ---------------------------------------------------------------- Parquet sources: the same rules


@pytest.fixture(scope="module")
def lake_5k(tmp_path_factory, month_5k) -> pa.Table:
    out = tmp_path_factory.mktemp("lake5k") / "out.parquet"
    convert(YELLOW, "2021-01", month_5k, out)
    return pq.read_table(out).drop_columns([SOURCE_MONTH_COLUMN])


@pytest.mark.parametrize("zone", ["America/New_York", "UTC", "Asia/Tokyo"])
def test_zone_aware_parquet_times_keep_the_new_york_wall_clock_time(tmp_path, lake_5k, zone):
    """The same instants labelled with any zone land as the New York time the trip happened at."""
    source = lake_5k
    for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        instants = pc.assume_timezone(lake_5k[name], "America/New_York", ambiguous="earliest", nonexistent="earliest")
        source = source.set_column(source.schema.get_field_index(name), name, instants.cast(pa.timestamp("us", zone)))
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(source, src)
    convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")
    got = pq.read_table(tmp_path / "out.parquet")
    assert got["tpep_pickup_datetime"].type == pa.timestamp("us")
    assert got["tpep_pickup_datetime"].equals(lake_5k["tpep_pickup_datetime"])
    assert got["tpep_dropoff_datetime"].equals(lake_5k["tpep_dropoff_datetime"])


def test_parquet_nan_and_infinity_become_null_and_are_counted(tmp_path, lake_5k):
    amounts = lake_5k["total_amount"].to_pylist()
    amounts[3], amounts[7] = float("nan"), float("-inf")
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(
        lake_5k.set_column(lake_5k.schema.get_field_index("total_amount"), "total_amount", pa.array(amounts)), src
    )
    result = convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")
    assert result.non_finite_nulled == {"total_amount": 2}
    got = pq.read_table(tmp_path / "out.parquet")["total_amount"].to_pylist()
    assert got[3] is None and got[7] is None and got[:3] == amounts[:3]
    assert got[8:] == amounts[8:]


def test_parquet_columns_follow_the_same_precedence_rule(tmp_path, lake_5k):
    other = pa.array([99] * lake_5k.num_rows, pa.int32())
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(lake_5k.append_column("vendorid", other), src)
    result = convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")
    assert result.extra_columns == ["vendorid"]
    assert pq.read_table(tmp_path / "out.parquet")["VendorID"].equals(lake_5k["VendorID"])
    pq.write_table(
        lake_5k.rename_columns(["VENDORID", *lake_5k.column_names[1:]]).append_column("vendorid", other), src
    )
    last = lake_5k.num_columns + 1  # the appended column's position
    with pytest.raises(
        SchemaError,
        match=rf"yellow 2021-01: columns 'VENDORID' \(#1\) and 'vendorid' \(#{last}\) both read as VendorID",
    ):
        convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")


# ---------------------------------------------------------------- the command


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taxi_assets.transform.convert", *args], capture_output=True, text=True
    )


def test_the_command_never_writes_over_its_input(tmp_path, month_5k):
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(month_5k.read_bytes())
    (tmp_path / "link.csv.gz").symlink_to(src)
    for out in (src, tmp_path / "link.csv.gz", tmp_path):
        proc = run_cli("--dataset", "yellow", "--month", "2021-01", str(src), str(out))
        assert proc.returncode == 2 and "must be a new file name, not the input or a folder" in proc.stderr
        assert src.read_bytes() == month_5k.read_bytes()


def test_a_failed_command_leaves_no_file_under_the_name_asked_for(tmp_path, month_5k):
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(gzip.compress(_raw(month_5k).replace(b"\n1,", b"\nX,", 1)))
    out = tmp_path / "out" / "o.parquet"
    proc = run_cli("--dataset", "yellow", "--month", "2021-01", str(src), str(out))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: yellow 2021-01 ({src}): ")
    assert list(out.parent.iterdir()) == []  # neither OUT nor a temporary file
    out.write_bytes(b"an older output")
    assert run_cli("--dataset", "yellow", "--month", "2021-01", str(src), str(out)).returncode == 1
    assert out.read_bytes() == b"an older output"
    assert run_cli("--dataset", "yellow", "--month", "2021-13", str(src), str(out)).stderr.endswith(
        "error: not a month: '2021-13' (expected YYYY-MM)\n"
    )


@pytest.mark.parametrize("block", [1 << 20, 5 << 10])
def test_the_careful_mode_reads_a_clean_file_exactly_as_the_fast_mode(tmp_path, month_5k, monkeypatch, block):
    monkeypatch.setattr(reader_module, "PARSE_BLOCK_SIZE", block)
    set_aside = []
    fast = convert(YELLOW, "2021-01", month_5k, tmp_path / "fast.parquet")
    careful = convert(
        YELLOW, "2021-01", month_5k, tmp_path / "careful.parquet", set_aside=lambda *row: set_aside.append(row)
    )
    assert set_aside == [] and careful.rows == fast.rows == 5000
    assert pq.read_table(tmp_path / "careful.parquet").equals(pq.read_table(tmp_path / "fast.parquet"))


def test_parquet_text_in_another_integer_notation_is_refused(tmp_path, lake_5k):
    counts = pa.array([str(v) if v is not None else None for v in lake_5k["passenger_count"].to_pylist()])
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    at = lake_5k.schema.get_field_index("passenger_count")
    pq.write_table(lake_5k.set_column(at, "passenger_count", counts), src)
    assert convert(YELLOW, "2021-01", src, tmp_path / "out.parquet").rows == 5000  # decimal text is read
    pq.write_table(lake_5k.set_column(at, "passenger_count", pa.array(["0x2"] + counts.to_pylist()[1:])), src)
    with pytest.raises(
        ConversionError, match=r"yellow 2021-01: column passenger_count holds '0x2', which is not a decimal integer"
    ):
        convert(YELLOW, "2021-01", src, tmp_path / "out.parquet")
    # In the pipeline (quarantining) the row is set aside with the reason; the others load.
    from taxi_assets.transform.quarantine import convert_quarantining

    result, found = convert_quarantining(YELLOW, "2021-01", src, tmp_path / "q.parquet", tmp_path / "q.csv")
    assert (result.rows, found.rows) == (4999, 1)
    assert "passenger_count: '0x2' is not a decimal integer" in (tmp_path / "q.csv").read_text()
    assert (
        pq.read_table(tmp_path / "q.parquet")["passenger_count"].to_pylist()
        == lake_5k["passenger_count"].to_pylist()[1:]
    )


# ---------------------------------------------------------------- Parquet type variants


def _parquet_month(tmp_path, table: pa.Table, **options):
    """`table` as a yellow 2021-01 Parquet file, converted as the lake step does: (lake table, quarantine)."""
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(table, src, **options)
    result, quarantine = convert_quarantining(YELLOW, "2021-01", src, tmp_path / "out.parquet", tmp_path / "rows.csv")
    return result, quarantine, pq.read_table(tmp_path / "out.parquet").drop_columns([SOURCE_MONTH_COLUMN])


def _with(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def test_parquet_dictionary_text_codes_load_like_plain_text(tmp_path, lake_5k):
    codes = pa.array(["VTS" if v == 2 else "CMT" if v == 1 else None for v in lake_5k["VendorID"].to_pylist()])
    _, quarantine, got = _parquet_month(tmp_path, _with(lake_5k, "VendorID", codes.dictionary_encode()))
    assert pq.read_schema(tmp_path / "yellow_tripdata_2021-01.parquet").field("VendorID").type == pa.dictionary(
        pa.int32(), pa.string()
    )
    assert quarantine.rows == 0
    assert got.equals(lake_5k)


def test_parquet_boolean_flags_become_y_and_n(tmp_path, lake_5k):
    flags = pa.array([{"Y": True, "N": False}.get(v) for v in lake_5k["store_and_fwd_flag"].to_pylist()])
    assert flags.type == pa.bool_() and flags.true_count and flags.false_count
    result, quarantine, got = _parquet_month(tmp_path, _with(lake_5k, "store_and_fwd_flag", flags))
    assert result.unknown_codes == {} and quarantine.rows == 0
    assert got.equals(lake_5k)


def test_parquet_int96_times_keep_their_true_value_far_in_the_future(tmp_path, lake_5k):
    """An INT96 year 3019 (a real fhv file has one) lands as 3019, as the same CSV value does,
    not wrapped by a nanosecond reading (to 1849, and then refused for its nanoseconds)."""
    dropoffs = lake_5k["tpep_dropoff_datetime"].to_pylist()
    dropoffs[7] = dt.datetime(3019, 2, 1, 12, 30, 5)
    expected = _with(lake_5k, "tpep_dropoff_datetime", pa.array(dropoffs, pa.timestamp("us")))
    _, quarantine, got = _parquet_month(tmp_path, expected, use_deprecated_int96_timestamps=True)
    assert pq.ParquetFile(tmp_path / "yellow_tripdata_2021-01.parquet").schema.column(2).physical_type == "INT96"
    assert quarantine.rows == 0
    assert got["tpep_dropoff_datetime"][7].as_py() == dt.datetime(3019, 2, 1, 12, 30, 5)
    assert got.equals(expected)


def test_a_parquet_time_beyond_what_the_lake_holds_is_set_aside_with_its_true_value(tmp_path, lake_5k):
    """timestamp[ms] reaches far beyond timestamp[us] (year 294,276): such a row is set aside,
    showing the year it holds, not refused with a bare OverflowError."""
    millis = pc.divide(lake_5k["tpep_pickup_datetime"].cast(pa.int64()), 1000).to_pylist()
    millis[7] = 300_000 * 365 * 86_400_000  # in the year 301,770
    table = _with(lake_5k, "tpep_pickup_datetime", pa.array(millis, pa.int64()).cast(pa.timestamp("ms")))
    _, quarantine, got = _parquet_month(tmp_path, table)
    assert quarantine.rows == 1
    vendor = lake_5k["VendorID"][7].as_py()
    assert quarantine.examples[0].startswith(
        f"tpep_pickup_datetime: '301770-10-26 00:00:00.000' is not timestamp[us]: {vendor},301770-10-26 00:00:00.000,"
    )
    assert got.equals(pa.concat_tables([lake_5k.slice(0, 7), lake_5k.slice(8)]))


def test_parquet_decimal_amounts_land_as_the_same_numbers_as_from_text(tmp_path, lake_5k):
    import decimal

    amounts = [None if v is None else decimal.Decimal(repr(v)) for v in lake_5k["total_amount"].to_pylist()]
    _, quarantine, got = _parquet_month(
        tmp_path, _with(lake_5k, "total_amount", pa.array(amounts, pa.decimal128(12, 2)))
    )
    assert quarantine.rows == 0
    assert got.equals(lake_5k)  # 25.9, not 25.900000000000002


def test_parquet_times_with_nanoseconds_are_truncated_to_the_microsecond(tmp_path, lake_5k):
    pickups = pc.add(lake_5k["tpep_pickup_datetime"].cast(pa.timestamp("ns")), pa.scalar(999, pa.duration("ns")))
    _, quarantine, got = _parquet_month(tmp_path, _with(lake_5k, "tpep_pickup_datetime", pickups))
    assert pq.read_schema(tmp_path / "yellow_tripdata_2021-01.parquet").field(1).type == pa.timestamp("ns")
    assert quarantine.rows == 0
    assert got.equals(lake_5k)


def test_parquet_amounts_as_text_are_read_as_the_csv_reader_reads_them(tmp_path, lake_5k):
    """Blanks around a number are trimmed, an empty value is null, blanks alone set the row aside."""
    amounts = [f"  {v!r} " if v is not None else None for v in lake_5k["total_amount"].to_pylist()]
    amounts[3], amounts[4] = "", "   "
    result, quarantine, got = _parquet_month(tmp_path, _with(lake_5k, "total_amount", pa.array(amounts)))
    assert quarantine.rows == 1 and quarantine.examples[0].startswith("total_amount: '' is not double: ")
    expected = _with(
        lake_5k,
        "total_amount",
        pa.array([None if i == 3 else v for i, v in enumerate(lake_5k["total_amount"].to_pylist())]),
    )
    assert got.equals(pa.concat_tables([expected.slice(0, 4), expected.slice(5)]))


def _footer_start(data: bytes) -> int:
    return len(data) - 8 - int.from_bytes(data[-8:-4], "little")


def _assert_clear_error_or_same_rows(tmp_path, data: bytes, lake: pa.Table) -> str:
    """A damaged Parquet file converts to the same rows or fails with an error naming dataset,
    month and file (a column it no longer finds: dataset and month, and the columns it has)."""
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    src.write_bytes(data)
    try:
        convert_quarantining(YELLOW, "2021-01", src, tmp_path / "out.parquet", tmp_path / "rows.csv")
    except ConversionError as exc:
        assert str(exc).startswith("yellow 2021-01: ") and (str(src) in str(exc) or isinstance(exc, SchemaError)), exc
        return str(exc)
    assert pq.read_table(tmp_path / "out.parquet").drop_columns([SOURCE_MONTH_COLUMN]).equals(lake)
    return "same rows"


def test_a_parquet_footer_with_bytes_that_are_not_utf8_is_a_conversion_error(tmp_path, lake_5k):
    src = tmp_path / "good.parquet"
    pq.write_table(lake_5k, src)
    data = bytearray(src.read_bytes())
    footer = _footer_start(data)
    at = data.find(b"VendorID", footer)
    assert at > 0
    data[at] = 0xFF  # the column's name in the footer's schema
    message = _assert_clear_error_or_same_rows(tmp_path, bytes(data), lake_5k)
    assert "its metadata is not UTF-8 text (damaged?)" in message


def _name_bytes(data: bytes, start: int) -> list[int]:
    """Positions of the column names' bytes in the footer (from `start`)."""
    found = []
    for name in YELLOW.arrow_schema().names:
        at = data.find(name.encode(), start)
        while at >= 0:
            found += range(at, at + len(name))
            at = data.find(name.encode(), at + 1)
    return found


@pytest.mark.parametrize("where", ["anywhere", "in_names"])
@pytest.mark.parametrize("seed", range(12))
def test_a_damaged_parquet_footer_converts_or_names_the_file(tmp_path, lake_5k, seed, where):
    src = tmp_path / "good.parquet"
    pq.write_table(lake_5k, src)
    data = bytearray(src.read_bytes())
    footer = _footer_start(data)
    rng = np.random.default_rng(seed)
    positions = range(footer, len(data) - 8) if where == "anywhere" else _name_bytes(data, footer)
    for at in rng.choice(positions, size=int(rng.integers(1, 9))):
        data[at] = int(rng.integers(0, 256))
    _assert_clear_error_or_same_rows(tmp_path, bytes(data), lake_5k)


# ---------------------------------------------------------------- a file of malformed rows stops early


def _refused_early(tmp_path, src, rows: int, reason: str) -> int:
    """The file is refused naming month, file and examples, after fewer rows than it has;
    returns the rows read (all set aside in the quarantine file so far)."""
    quarantine = tmp_path / "rows.csv"
    with pytest.raises(MalformedRowsError) as err:
        convert_quarantining(YELLOW, "2021-01", src, tmp_path / "out.parquet", quarantine)
    pattern = (
        rf"yellow 2021-01: ([\d,]+) of the first ([\d,]+) rows \(100.00%\) of {re.escape(str(src))} are malformed, "
        rf"more than the 1.00% allowed; the rest was not read; e\.g\. {re.escape(reason)}: .*"
    )
    found = re.fullmatch(pattern, str(err.value), re.S)
    assert found, str(err.value)
    bad, read = (int(g.replace(",", "")) for g in found.groups())
    assert bad == read and 10_000 <= read < rows
    with open(quarantine, newline="") as f:
        assert sum(1 for _ in csv.reader(f)) - 1 == read  # the rest was never set aside
    return read


def test_a_csv_of_malformed_rows_is_refused_after_its_first_rows(tmp_path, month_5k):
    header, *lines = _raw(month_5k).decode().splitlines()
    column = header.split(",").index("passenger_count")
    bad = []
    for line in lines:
        fields = line.split(",")
        fields[column] = "two"
        bad.append(",".join(fields))
    rows = 8 * len(bad)  # two and a half of the careful mode's parts
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(gzip.compress(("\n".join([header, *bad * 8]) + "\n").encode(), compresslevel=1))
    read = _refused_early(tmp_path, src, rows, "passenger_count: 'two' is not int32")
    assert read == reader_module.CAREFUL_PART_ROWS


def test_a_parquet_of_malformed_rows_is_refused_after_its_first_batches(tmp_path, lake_5k, monkeypatch):
    monkeypatch.setattr(convert_module, "PARQUET_BATCH_ROWS", 4096)
    table = pa.concat_tables([lake_5k] * 8)
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(_with(table, "total_amount", pa.array(["x"] * table.num_rows)), src)
    assert _refused_early(tmp_path, src, table.num_rows, "total_amount: 'x' is not double") == 3 * 4096
