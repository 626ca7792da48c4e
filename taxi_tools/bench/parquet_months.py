"""Parquet months shaped like TLC's official files, for the Parquet half of `make bench`.

The mirror generator writes the course's CSV.gz; the official site serves Parquet, and
what a reader pays there depends on the file's physical shape, so these follow it:
snappy, 1M-row row groups, nanosecond timestamps, int64 IDs and double counts
(yellow 2019), fhvhv's 24 columns with 'Y'/'N' flags, `airport_fee` and
`wav_match_flag` typed null (the spec table's 2019-2024 era), large_string text as
pandas-written TLC files have.
Values are random but plausible (zones 1..265, minutes-long trips inside the month,
a few pickups outside it); the same arguments give the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 1_000_000  # TLC's files: ~1M-row row groups
COMPRESSION = "snappy"
SHAPES = ("yellow", "fhvhv")

TS = pa.timestamp("ns")  # as TLC's files of these eras (datasets.py); the lake keeps microseconds
TEXT = pa.large_string()


def _month_us(month: str) -> tuple[int, int]:
    start = np.datetime64(month, "M")
    return (
        int(start.astype("datetime64[us]").astype(np.int64)),
        int((start + 1).astype("datetime64[us]").astype(np.int64)),
    )


def _ts(micros: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(micros * 1000, TS, mask=mask)


def _pickups(rng: np.random.Generator, month: str, first: int, n: int, total: int) -> np.ndarray:
    start, end = _month_us(month)
    pos = (np.arange(first, first + n) + rng.random(n)) / total
    pickup = start + (pos * (end - start)).astype(np.int64)
    out = rng.random(n) < 0.002  # a few rows of the neighbouring days, as in TLC's files
    return np.where(out, start - rng.integers(1, 86_400_000_000, n), pickup)


def _money(rng: np.random.Generator, scale: float, n: int) -> np.ndarray:
    return np.round(rng.exponential(scale, n), 2)


def _choice(values: list[str], idx: np.ndarray, type_: pa.DataType = TEXT) -> pa.Array:
    return pa.array(values, type_).take(pa.array(idx))


def _flags(rng: np.random.Generator, share_y: float, n: int) -> pa.Array:
    return _choice(["N", "Y"], (rng.random(n) < share_y).astype(np.int8))


YELLOW_SCHEMA = pa.schema(
    [
        ("VendorID", pa.int64()), ("tpep_pickup_datetime", TS), ("tpep_dropoff_datetime", TS),
        ("passenger_count", pa.float64()), ("trip_distance", pa.float64()), ("RatecodeID", pa.float64()),
        ("store_and_fwd_flag", TEXT), ("PULocationID", pa.int64()), ("DOLocationID", pa.int64()),
        ("payment_type", pa.int64()), ("fare_amount", pa.float64()), ("extra", pa.float64()),
        ("mta_tax", pa.float64()), ("tip_amount", pa.float64()), ("tolls_amount", pa.float64()),
        ("improvement_surcharge", pa.float64()), ("total_amount", pa.float64()),
        ("congestion_surcharge", pa.float64()), ("airport_fee", pa.float64()),
    ]
)  # fmt: skip

FHVHV_SCHEMA = pa.schema(
    [
        ("hvfhs_license_num", TEXT), ("dispatching_base_num", TEXT), ("originating_base_num", TEXT),
        ("request_datetime", TS), ("on_scene_datetime", TS), ("pickup_datetime", TS), ("dropoff_datetime", TS),
        ("PULocationID", pa.int64()), ("DOLocationID", pa.int64()), ("trip_miles", pa.float64()),
        ("trip_time", pa.int64()), ("base_passenger_fare", pa.float64()), ("tolls", pa.float64()),
        ("bcf", pa.float64()), ("sales_tax", pa.float64()), ("congestion_surcharge", pa.float64()),
        ("airport_fee", pa.null()), ("tips", pa.float64()), ("driver_pay", pa.float64()),
        ("shared_request_flag", TEXT), ("shared_match_flag", TEXT), ("access_a_ride_flag", TEXT),
        ("wav_request_flag", TEXT), ("wav_match_flag", pa.null()),
    ]
)  # fmt: skip


def _yellow(rng: np.random.Generator, month: str, first: int, n: int, total: int) -> pa.RecordBatch:
    pickup = _pickups(rng, month, first, n, total)
    minutes = rng.exponential(12.0, n) + 1
    fare = np.round(2.5 + minutes * 0.9, 1)
    tip = np.round(fare * rng.uniform(0, 0.25, n), 2)
    passengers = rng.integers(0, 7, n).astype(np.float64)
    passengers[rng.random(n) < 0.01] = np.nan  # a few nulls, as in 2019's files
    cols = [
        pa.array(rng.choice([1, 2], n, p=[0.3, 0.7]).astype(np.int64)),
        _ts(pickup),
        _ts(pickup + (minutes * 60e6).astype(np.int64)),
        pa.array(passengers, from_pandas=True),
        pa.array(np.round(minutes * 0.25, 2)),
        pa.array(rng.choice([1.0, 2.0, 5.0], n, p=[0.96, 0.03, 0.01])),
        _flags(rng, 0.01, n),
        pa.array(rng.integers(1, 266, n)),
        pa.array(rng.integers(1, 266, n)),
        pa.array(rng.choice([1, 2, 3, 4], n, p=[0.7, 0.27, 0.02, 0.01]).astype(np.int64)),
        pa.array(fare),
        pa.array(rng.choice([0.0, 0.5, 1.0, 2.5], n)),
        pa.array(np.full(n, 0.5)),
        pa.array(tip),
        pa.array(np.where(rng.random(n) < 0.05, 6.12, 0.0)),
        pa.array(np.full(n, 0.3)),
        pa.array(np.round(fare + tip + 3.3, 2)),
        pa.array(np.where(rng.random(n) < 0.75, 2.5, 0.0)),
        pa.nulls(n, pa.float64()),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=YELLOW_SCHEMA)


_LICENSES = ["HV0002", "HV0003", "HV0004", "HV0005"]
_HV_BASES = [f"B{b:05d}" for b in range(2500, 2900, 7)]


def _fhvhv(rng: np.random.Generator, month: str, first: int, n: int, total: int) -> pa.RecordBatch:
    pickup = _pickups(rng, month, first, n, total)
    wait = (rng.exponential(240.0, n) * 1e6).astype(np.int64)
    seconds = (rng.exponential(900.0, n) + 60).astype(np.int64)
    miles = np.round(seconds / 3600 * rng.uniform(6, 20, n), 3)
    fare = _money(rng, 22.0, n)
    base = rng.integers(0, len(_HV_BASES), n)
    no_scene = rng.random(n) < 0.7  # on_scene_datetime is mostly null outside Uber
    cols = [
        _choice(_LICENSES, rng.choice(4, n, p=[0.01, 0.72, 0.02, 0.25])),
        _choice(_HV_BASES, base),
        _choice(_HV_BASES, base),
        _ts(pickup - wait),
        _ts(pickup - wait // 4, no_scene),
        _ts(pickup),
        _ts(pickup + seconds * 1_000_000),
        pa.array(rng.integers(1, 266, n)),
        pa.array(rng.integers(1, 266, n)),
        pa.array(miles),
        pa.array(seconds),
        pa.array(fare),
        pa.array(np.where(rng.random(n) < 0.06, 6.55, 0.0)),
        pa.array(np.round(fare * 0.0275, 2)),
        pa.array(np.round(fare * 0.08875, 2)),
        pa.array(np.where(rng.random(n) < 0.7, 2.75, 0.0)),
        pa.nulls(n),
        pa.array(np.where(rng.random(n) < 0.2, _money(rng, 4.0, n), 0.0)),
        pa.array(np.round(fare * 0.75, 2)),
        _flags(rng, 0.05, n),
        _flags(rng, 0.02, n),
        _flags(rng, 0.001, n),
        _flags(rng, 0.01, n),
        pa.nulls(n),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=FHVHV_SCHEMA)


_BUILDERS = {"yellow": (_yellow, YELLOW_SCHEMA), "fhvhv": (_fhvhv, FHVHV_SCHEMA)}


def relpath(shape: str, month: str) -> str:
    return f"{shape}/{shape}_tripdata_{month}.parquet"


def write_month(path: Path, shape: str, month: str, rows: int, seed: int = 0) -> Path:
    """Write a `shape` month of `rows` rows to path (via a temp file: an existing file is whole)."""
    build, schema = _BUILDERS[shape]
    rng = np.random.default_rng([seed, rows, SHAPES.index(shape), int(month.replace("-", ""))])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with pq.ParquetWriter(tmp, schema, compression=COMPRESSION) as writer:
            for first in range(0, rows, ROW_GROUP_ROWS):
                n = min(ROW_GROUP_ROWS, rows - first)
                writer.write_batch(build(rng, month, first, n, rows), row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parquet_month(root: Path, shape: str, rows: int, month: str) -> Path:
    """The cached `shape` month of `rows` rows under root, generated on first use."""
    path = root / f"parquet-{rows}" / relpath(shape, month)
    if not path.exists():
        print(f"generating {path} ({rows:,} rows) ...", flush=True)
        write_month(path, shape, month, rows)
    return path
