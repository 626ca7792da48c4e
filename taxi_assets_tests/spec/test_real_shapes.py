"""The shapes TLC really published, as generated files of the same bytes (the end-to-end value
comparison of every era is test_eras.py), and the accounting of every row of a month."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.errors import MalformedRowsError, RowsUnaccountedError, SchemaError
from taxi_assets.spec.datasets import DATASETS, FHVHV_COURSE, FHVHV_ORIGINAL
from taxi_assets.transform import convert as convert_module
from taxi_assets.transform.quarantine import convert_quarantining
from taxi_tools.mirror.generator import write_month

ROWS = 250


def shape(dataset: str, month: str, header: tuple[str, ...] | None = None, **quirks):
    """The era of the month with that header (or those quirks): one of its published shapes."""
    spec = DATASETS[dataset]
    found = [
        e
        for e in spec.eras_of(month, "csv")
        if (header is None or e.header == header) and all(getattr(e, k) == v for k, v in quirks.items())
    ]
    assert len(found) == 1, found
    return found[0]


def lines_of(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def load(dataset: str, month: str, src: Path, tmp_path: Path):
    return convert_quarantining(DATASETS[dataset], month, src, tmp_path / "out.parquet", tmp_path / "q.csv")


@pytest.mark.parametrize(
    "month, width, blank", [("2013-09", 20, [b"\r\n"]), ("2014-03", 20, [b"\n", b"\r\n"]), ("2016-09", 19, [b"\r\n"])]
)
def test_green_blank_crlf_line_and_wider_rows_load_every_row(tmp_path, month, width, blank):
    era = shape("green", month)
    src = write_month(tmp_path / "m", "green", month, "csv", ROWS, era=era)
    lines = lines_of(src)
    # The real bytes: header ending in LF, blank line(s) ending in CRLF, CRLF rows two fields wider.
    assert lines[0].endswith(b"e\n") or lines[0].endswith(b"e \n")
    assert lines[1 : 1 + len(blank)] == blank
    rows = lines[1 + len(blank) :]
    assert len(rows) == ROWS and all(line.endswith(b",,\r\n") and line.count(b",") == width + 1 for line in rows)

    result, found = load("green", month, src, tmp_path)
    assert (result.rows_read, result.rows, found.rows) == (ROWS, ROWS, 0)
    lake = pq.read_table(tmp_path / "out.parquet")
    assert lake.num_rows == ROWS and lake.column("lpep_pickup_datetime").null_count == 0


@pytest.mark.parametrize(
    "dataset, month, header, dropped",
    [
        ("fhv", "2019-03", tuple("dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag".split(",")), []),
        ("fhvhv", "2019-05", FHVHV_ORIGINAL, ["SR_Flag"]),
        ("fhvhv", "2021-05", FHVHV_COURSE, ["SR_Flag", "Affiliated_base_number"]),
    ],
    ids=["fhv-6-columns", "fhvhv-original-7", "fhvhv-course-mirror"],
)  # fmt: skip
def test_a_month_published_in_several_shapes_reads_each(tmp_path, dataset, month, header, dropped):
    era = shape(dataset, month, header)
    src = write_month(tmp_path / "m", dataset, month, "csv", ROWS, era=era)
    assert lines_of(src)[0].decode().strip() == ",".join(header)

    result, found = load(dataset, month, src, tmp_path)
    assert (result.rows_read, result.rows, found.rows) == (ROWS, ROWS, 0)
    assert result.era == era.months and result.extra_columns == dropped
    lake = pq.read_table(tmp_path / "out.parquet")
    # What the shape does not have is null; what it has is there.
    absent = [c.name for c in DATASETS[dataset].columns if c.name not in {*result.renamed.values(), *header}]
    assert all(lake.column(c).null_count == ROWS for c in absent), absent
    assert lake.column("pickup_datetime").null_count == 0


def test_a_file_lacking_a_column_of_every_shape_is_still_refused(tmp_path):
    header = "dispatching_base_num,dropoff_datetime,PULocationID,DOLocationID,SR_Flag"  # no pickup time
    src = tmp_path / "fhv_tripdata_2019-03.csv"
    src.write_text(header + "\nB00001,2019-03-01 10:00:00,1,2,\n")
    with pytest.raises(SchemaError, match="fhv 2019-03: required column\\(s\\) pickup_datetime missing"):
        load("fhv", "2019-03", src, tmp_path)


def test_yellow_2010_payment_na_is_unknown_and_fhv_location_zero_is_null(tmp_path):
    era = DATASETS["yellow"].era("2010-05", "csv")
    row = "VTS,2010-05-01 10:00:00,2010-05-01 10:10:00,1,1.5,-73.9,40.7,1,0,-73.9,40.7,{},6.5,0.5,0.5,0,0,7.5"
    src = tmp_path / "yellow_tripdata_2010-05.csv"
    src.write_text(",".join(era.header) + "\n\n" + "\n".join(row.format(p) for p in ("NA ", "CSH", "NA")) + "\n")
    result, _ = load("yellow", "2010-05", src, tmp_path)
    assert pq.read_table(tmp_path / "out.parquet").column("payment_type").to_pylist() == [5, 2, 5]
    assert result.unknown_codes == {}

    src = tmp_path / "fhv_tripdata_2017-03.csv"
    src.write_text(
        "Dispatching_base_num,Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID\n"
        "B00001,2017-03-01 10:00:00,2017-03-01 10:20:00,0,0\nB00001,2017-03-01 11:00:00,,132,\n"
    )
    load("fhv", "2017-03", src, tmp_path)
    lake = pq.read_table(tmp_path / "out.parquet")
    assert lake.column("PULocationID").to_pylist() == [None, 132]
    assert lake.column("DOLocationID").to_pylist() == [None, None]


# ---------------------------------------------------------------- every row accounted for


def test_rows_a_reader_loses_are_an_error_naming_the_lines(tmp_path, monkeypatch):
    """A reader that drops rows without a word (as the CSV reader once did with green 2014's
    blank CRLF line) cannot go unnoticed: the lines are counted from the bytes."""
    month = "2021-01"
    src = write_month(tmp_path / "m", "green", month, "csv", ROWS)
    fast = convert_module.fast_batches

    def losing(*args, **kwargs):
        for batch in fast(*args, **kwargs):
            yield batch.slice(3)  # the first rows of every batch vanish

    monkeypatch.setattr(convert_module, "fast_batches", losing)
    with pytest.raises(RowsUnaccountedError) as error:
        load("green", month, src, tmp_path)
    message = str(error.value)
    assert f"green 2021-01: {src} holds {ROWS} rows but {ROWS - 3} were read and 0 set aside: 3 lost" in message
    assert "line 2 has 20 fields (20 in the header)" in message


def test_a_file_whose_every_row_is_unreadable_says_which_lines_and_why(tmp_path):
    """Rows narrower than the header everywhere: no row loads, and the error says why, never 'no rows'."""
    era = DATASETS["green"].era("2017-02", "csv")
    row = "2,2017-02-01 10:00:00,2017-02-01 10:10:00,N,1,74,75,1,1.5,6.5,0.5,0.5,0,0,,0.3,7.8"
    src = tmp_path / "green_tripdata_2017-02.csv"
    src.write_text(",".join(era.header) + "\n" + "\n".join([row] * 40) + "\n")
    with pytest.raises(MalformedRowsError, match="40 of 40 rows .* expected 19 fields, got 17: 2,2017-02-01"):
        load("green", "2017-02", src, tmp_path)


def test_blank_lines_anywhere_are_not_rows(tmp_path):
    era = DATASETS["green"].era("2017-02", "csv")
    row = "2,2017-02-01 10:00:00,2017-02-01 10:10:00,N,1,74,75,1,1.5,6.5,0.5,0.5,0,0,,0.3,7.8,1,1"
    body = ",".join(era.header) + "\n\r\n\n" + row + "\r\n\r\n" + row + "\n\n\n" + row  # no final line end
    src = tmp_path / "green_tripdata_2017-02.csv"
    src.write_bytes(body.encode())
    result, found = load("green", "2017-02", src, tmp_path)
    assert (result.rows_read, result.rows, found.rows) == (3, 3, 0)


def test_parquet_rows_are_counted_from_the_footer(tmp_path, monkeypatch):
    month = "2023-03"
    src = write_month(tmp_path / "m", "green", month, "parquet", ROWS)
    assert pq.ParquetFile(src).metadata.num_rows == ROWS
    result, found = load("green", month, src, tmp_path)
    assert (result.rows_read, result.rows, found.rows) == (ROWS, ROWS, 0)

    batches = convert_module._parquet_batches
    monkeypatch.setattr(convert_module, "_parquet_batches", lambda *a, **k: (b.slice(1) for b in batches(*a, **k)))
    with pytest.raises(RowsUnaccountedError, match=f"green 2023-03: .* holds {ROWS} rows but {ROWS - 1} were read"):
        load("green", month, src, tmp_path)


def test_the_schema_check_of_the_raw_step_reads_only_the_header(tmp_path):
    """What the raw step asks of a downloaded file: the lake step's column mapping, on the header."""
    era = shape("fhvhv", "2019-05", FHVHV_COURSE)
    src = write_month(tmp_path / "m", "fhvhv", "2019-05", "csv", ROWS, era=era)
    convert_module.check_schema(DATASETS["fhvhv"], "2019-05", src)  # readable: no error
    bad = tmp_path / "fhvhv_tripdata_2019-05.csv"
    bad.write_text("dispatching_base_num,dropoff_datetime\n" + "x\n" * 3)
    with pytest.raises(SchemaError, match="fhvhv 2019-05: required column"):
        convert_module.check_schema(DATASETS["fhvhv"], "2019-05", bad)
    table = pa.table({"pickup_datetime": pa.array([1], pa.timestamp("us"))})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(SchemaError):
        convert_module.check_schema(DATASETS["fhvhv"], "2019-05", tmp_path / "x.parquet")


def test_a_value_in_the_fields_past_the_header_sets_its_row_aside(tmp_path):
    """Rows wider than the header load when the extra fields are empty; a value there is not
    dropped unseen: its row goes to the quarantine with the reason."""
    era = shape("green", "2016-09")
    src = write_month(tmp_path / "m", "green", "2016-09", "csv", ROWS, era=era)
    lines = lines_of(src)
    lines[10] = lines[10].replace(b",,\r\n", b",7,\r\n")
    plain = tmp_path / "green_tripdata_2016-09.csv"
    plain.write_bytes(b"".join(lines))
    result, found = load("green", "2016-09", plain, tmp_path)
    assert (result.rows_read, result.rows, found.rows) == (ROWS, ROWS - 1, 1)
    assert "a value past the header's last column: '7'" in (tmp_path / "q.csv").read_text()


def test_the_schema_check_leaves_other_faults_to_the_lake_step(tmp_path):
    """An empty or broken file is not a question of columns: the raw step keeps it as published."""
    for name, body in (("fhvhv_tripdata_2019-05.csv", b""), ("fhvhv_tripdata_2019-05.parquet", b"PAR1 not parquet")):
        (tmp_path / name).write_bytes(body)
        convert_module.check_schema(DATASETS["fhvhv"], "2019-05", tmp_path / name)


def test_records_are_counted_from_the_bytes_whatever_the_reads():
    """Blank lines (LF or CRLF) and quoted line breaks are not records, wherever reads cut the bytes."""
    import io
    import random

    from taxi_assets.transform.reader import _Scanned

    rng = random.Random(7)
    for _ in range(200):
        lines = ["h"] + [rng.choice(["", "\r", "a,b", '"x\ny",1', '"q""\n""",2']) for _ in range(25)]
        data = "".join(line + rng.choice(["\n", "\r\n"]) for line in lines).replace("\r\r", "\r").encode()
        records = sum(1 for line in lines[1:] if line not in ("", "\r"))
        scanned = _Scanned(io.BytesIO(data))
        while scanned.read(rng.randint(1, 6)):
            pass
        assert scanned.records == records, data
