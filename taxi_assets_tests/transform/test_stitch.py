"""Row groups encoded apart and stitched into one file: the single writer's file, byte for byte."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import taxi_assets.transform.stitch as stitch_module
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.transform.convert import convert, dictionary_columns
from taxi_assets.transform.stitch import StitchedWriter, empty_footer, encode_row_group
from taxi_assets_tests.helpers import mirror_file
from taxi_tools.mirror import generate

SCHEMA = pa.schema(
    [
        ("vendor", pa.int32()),
        ("pickup", pa.timestamp("us")),
        ("fare", pa.float64()),
        ("flag", pa.string()),
        ("day", pa.date32()),
    ]
)
OPTIONS = dict(use_dictionary=dictionary_columns(SCHEMA), compression="zstd")


def row_groups(sizes: list[int]) -> list[pa.Table]:
    rng = np.random.default_rng(7)
    tables = []
    for n in sizes:
        fare = rng.normal(15, 5, n)
        tables.append(
            pa.table(
                {
                    "vendor": pa.array(rng.integers(1, 3, n), pa.int32(), mask=rng.random(n) < 0.1),
                    "pickup": pa.array(
                        rng.integers(1_600_000_000_000_000, 1_600_100_000_000_000, n), pa.timestamp("us")
                    ),
                    "fare": pa.array(fare, mask=rng.random(n) < 0.05),
                    "flag": pa.array(rng.choice(["Y", "N"], n), mask=rng.random(n) < 0.2),
                    "day": pa.array([dt.date(2021, 1, 1)] * n, pa.date32()),
                },
                schema=SCHEMA,
            )
        )
    return tables


def single_writer(path, tables: list[pa.Table]) -> None:
    with pq.ParquetWriter(path, SCHEMA, **OPTIONS) as writer:
        for table in tables:
            writer.write_table(table, row_group_size=table.num_rows)


def stitched(path, tables: list[pa.Table]) -> None:
    with open(path, "wb") as f:
        out = StitchedWriter(f.write)
        for table in tables:
            out.add(encode_row_group(table, SCHEMA, **OPTIONS))
        out.close(lambda: empty_footer(SCHEMA, **OPTIONS))


@pytest.mark.parametrize("sizes", [[5000, 5000, 1234], [300], []], ids=["three", "one", "none"])
def test_stitched_row_groups_are_the_single_writers_file_byte_for_byte(tmp_path, sizes):
    tables = row_groups(sizes)
    single_writer(tmp_path / "single.parquet", tables)
    stitched(tmp_path / "stitched.parquet", tables)
    assert (tmp_path / "stitched.parquet").read_bytes() == (tmp_path / "single.parquet").read_bytes()
    read = pq.read_table(tmp_path / "stitched.parquet")
    assert read.schema.equals(SCHEMA) and read.num_rows == sum(sizes)
    if tables:
        assert read.equals(pa.concat_tables(tables))
    meta = pq.read_metadata(tmp_path / "stitched.parquet")
    assert meta.num_row_groups == len(sizes)
    # Another reader finds every row group where the footer says it is (offsets and statistics).
    rows, fares = (
        duckdb.connect()
        .execute(f"SELECT count(*), sum(fare) FROM read_parquet('{tmp_path / 'stitched.parquet'}')")
        .fetchone()
    )
    assert rows == sum(sizes)
    if tables:
        assert fares == pytest.approx(pc.sum(read["fare"]).as_py())


def test_the_lake_step_encodes_two_row_groups_at_once_into_one_file(tmp_path, monkeypatch):
    """Two row groups are in the encoders together (each waits for the other to start), and
    the month is still one file whose rows are the single writer's."""
    generate(tmp_path / "mirror", ["yellow"], ["2021-01"], rows=3000)
    src = mirror_file(tmp_path / "mirror", "yellow", "2021-01")
    monkeypatch.setattr("taxi_assets.transform.convert.ROW_GROUP_ROWS", 1000)
    both = threading.Barrier(2, timeout=30)
    threads: set[int] = set()
    calls = itertools.count()
    encode = stitch_module.encode_row_group

    def meeting(table, schema, **options):
        threads.add(threading.get_ident())
        if next(calls) < 2:
            both.wait()  # BrokenBarrierError if the other row group never reaches an encoder
        return encode(table, schema, **options)

    monkeypatch.setattr(stitch_module, "encode_row_group", meeting)
    out = tmp_path / "part-0.parquet"
    result = convert(DATASETS["yellow"], "2021-01", src, out)
    assert len(threads) == 2
    meta = pq.read_metadata(out)
    assert result.rows == meta.num_rows == 3000 and meta.num_row_groups == 3
    assert pq.read_table(out).schema.equals(DATASETS["yellow"].arrow_schema())
