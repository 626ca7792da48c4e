"""Synthetic TLC-shaped monthly CSVs, laid out like the course mirror.

The point is to reproduce what a reader must survive (headers, number spelling,
empty integer fields, out-of-month pickups), not realistic trip statistics.
Rows are built column-wise with numpy/pyarrow in fixed-size chunks and streamed
into gzip, so a 7-8M-row month stays fast and memory-bounded.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_tools.mirror.era_files import write_era_file

# Fixed so that output bytes do not depend on anything but the arguments.
CHUNK_ROWS = 200_000
GZIP_LEVEL = 6
OUTSIDE_MONTH_SHARE = 0.005
NULL_ROW_SHARE = 0.03  # rows with empty integer fields, months from 2020 on

YELLOW_HEADER = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
    "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
    "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,congestion_surcharge"
).split(",")
GREEN_HEADER = (
    "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,"
    "PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,"
    "tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,"
    "trip_type,congestion_surcharge"
).split(",")
FHV_HEADER_2019 = (
    "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,SR_Flag,Affiliated_base_number"
).split(",")
FHV_HEADER_2020 = (
    "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag,Affiliated_base_number"
).split(",")

ZONES_RELPATH = "misc/taxi_zone_lookup.csv"
SHAPES_RELPATH = "misc/taxi_zones.zip"  # the real shapefile, as TLC publishes it


def header_for(dataset: str, month: str) -> list[str]:
    """The real course-mirror header of `dataset` for `month` (YYYY-MM)."""
    if month < "2019-01" or dataset not in ("yellow", "green", "fhv"):
        era = DATASETS[dataset].era(month, "csv") if dataset in DATASETS else None
        if era is None:
            raise ValueError(f"no mirror header for dataset {dataset!r} in {month}")
        return list(era.header)
    if dataset == "yellow":
        return list(YELLOW_HEADER)
    if dataset == "green":
        return list(GREEN_HEADER)
    if dataset == "fhv":
        return list(FHV_HEADER_2019 if month < "2020-01" else FHV_HEADER_2020)
    raise ValueError(f"no mirror header for dataset {dataset!r}")


def spec_column_name(spec: DatasetSpec, header_name: str) -> str:
    """Map a file header name onto the spec column (case-insensitive, aliases)."""
    wanted = header_name.lower()
    for col in spec.columns:
        if wanted == col.name.lower() or wanted in (a.lower() for a in col.aliases):
            return col.name
    raise KeyError(f"{spec.name}: header column {header_name!r} is not in the spec")


def relpath(dataset: str, month: str, fmt: str = "csv") -> str:
    return f"{dataset}/{dataset}_tripdata_{month}.{'parquet' if fmt == 'parquet' else 'csv.gz'}"


def _derived_seed(seed: int, dataset: str, month: str) -> int:
    digest = hashlib.sha256(f"{seed}/{dataset}/{month}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def default_rows(dataset: str, month: str, seed: int = 0) -> int:
    # Small, but different per month so row-count bugs between months show up.
    return 1000 + _derived_seed(seed, dataset, month) % 500


# ---------------------------------------------------------------- column helpers

# Cents suffix as TLC spells money: 8, 0.5, 9.3, 2.36 (no trailing zeros).
_MONEY_SUFFIX = pa.array(["" if c == 0 else f".{c:02d}".rstrip("0") for c in range(100)], pa.string())
# Distances always have two decimals and drop a zero integer part: .73, 2.10.
_DIST_SUFFIX = pa.array([f".{c:02d}" for c in range(100)], pa.string())


def _pick(rng: np.random.Generator, values: list[int], weights: list[float], n: int) -> np.ndarray:
    cum = np.cumsum(weights, dtype=float)
    idx = np.searchsorted(cum / cum[-1], rng.random(n), side="right")
    return np.asarray(values, dtype=np.int64)[np.minimum(idx, len(values) - 1)]


def _money(cents: np.ndarray) -> pa.Array:
    whole = pc.cast(pa.array(cents // 100), pa.string())
    return pc.binary_join_element_wise(whole, _MONEY_SUFFIX.take(pa.array(cents % 100)), "")


def _distance(hundredths: np.ndarray) -> pa.Array:
    whole_num = hundredths // 100
    whole = pc.if_else(pa.array(whole_num == 0), "", pc.cast(pa.array(whole_num), pa.string()))
    return pc.binary_join_element_wise(whole, _DIST_SUFFIX.take(pa.array(hundredths % 100)), "")


def _int(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype(np.int32), pa.int32(), mask=null)


def _ts(seconds: np.ndarray) -> pa.Array:
    # Arrow writes timestamp[s] as "YYYY-MM-DD HH:MM:SS", the TLC spelling.
    return pa.array(seconds, pa.int64()).cast(pa.timestamp("s"))


def _month_bounds(month: str) -> tuple[int, int]:
    start = np.datetime64(month, "M")
    return int(start.astype("datetime64[s]").astype(np.int64)), int(
        (start + 1).astype("datetime64[s]").astype(np.int64)
    )


class _Chunk:
    """Shared per-chunk draws: times, locations and the null-row mask."""

    def __init__(self, rng: np.random.Generator, month: str, first: int, n: int, total: int):
        start, end = _month_bounds(month)
        # Pickups advance through the month like the real, roughly time-ordered files.
        pos = (np.arange(first, first + n) + rng.random(n)) / total
        pickup = start + (pos * (end - start)).astype(np.int64)
        # A few rows belong to the previous month's last day or the next month's first.
        out = rng.random(n) < OUTSIDE_MONTH_SHARE
        day = rng.integers(0, 86_400, n)
        before = rng.random(n) < 0.8
        pickup = np.where(out & before, start - 86_400 + day, pickup)
        self.pickup = np.where(out & ~before, end + day, pickup)
        self.n = n
        self.rng = rng
        self.pu = rng.integers(1, 266, n)
        self.do = rng.integers(1, 266, n)
        self.null = (rng.random(n) < NULL_ROW_SHARE) if month >= "2020-01" else None

    def dropoff(self, duration: np.ndarray) -> np.ndarray:
        return self.pickup + np.maximum(duration.astype(np.int64), 1)


def _taxi_columns(c: _Chunk, green: bool) -> dict[str, pa.Array]:
    rng, n, null = c.rng, c.n, c.null
    dist = np.minimum(rng.exponential(290.0, n), 6000).astype(np.int64)
    dist[rng.random(n) < 0.02] = 0
    minutes = dist / 100 * rng.uniform(2.5, 6.0, n) + rng.exponential(3.0, n)
    ratecode = _pick(rng, [1, 2, 3, 4, 5], [0.95, 0.025, 0.005, 0.005, 0.015], n)
    payment = _pick(rng, [1, 2, 3, 4], [0.7, 0.27, 0.02, 0.01], n)
    # Metered fares move in 50-cent steps; JFK (rate code 2) is flat.
    fare = 250 + np.round((dist * 2.5 + minutes * 50) / 50).astype(np.int64) * 50
    fare = np.where(ratecode == 2, 5200, fare)
    extra = _pick(rng, [0, 50, 100, 250, 300], [0.35, 0.35, 0.1, 0.1, 0.1], n)
    mta = np.where(rng.random(n) < 0.97, 50, 0)
    tip = np.where(payment == 1, np.round(fare * rng.uniform(0.0, 0.3, n)).astype(np.int64), 0)
    tolls = np.where(rng.random(n) < 0.05, 612, 0)
    improvement = np.full(n, 30)
    congestion = np.where(rng.random(n) < 0.75, 250, 0)
    total = fare + extra + mta + tip + tolls + improvement + congestion
    flag = pa.array(np.where(rng.random(n) < 0.01, "Y", "N"), pa.string(), mask=null)
    prefix = "lpep" if green else "tpep"
    cols = {
        "VendorID": _int(_pick(rng, [1, 2], [0.3, 0.7], n), null),
        f"{prefix}_pickup_datetime": _ts(c.pickup),
        f"{prefix}_dropoff_datetime": _ts(c.dropoff(minutes * 60)),
        "passenger_count": _int(_pick(rng, [0, 1, 2, 3, 4, 5, 6], [1, 70, 14, 5, 3, 4, 3], n), null),
        "trip_distance": _distance(dist),
        "RatecodeID": _int(ratecode, null),
        "store_and_fwd_flag": flag,
        "PULocationID": _int(c.pu),
        "DOLocationID": _int(c.do),
        "payment_type": _int(payment, null),
        "fare_amount": _money(fare),
        "extra": _money(extra),
        "mta_tax": _money(mta),
        "tip_amount": _money(tip),
        "tolls_amount": _money(tolls),
        "improvement_surcharge": _money(improvement),
        "total_amount": _money(total),
        "congestion_surcharge": _money(congestion),
    }
    if green:
        cols["ehail_fee"] = pa.nulls(n, pa.string())
        cols["trip_type"] = _int(_pick(rng, [1, 2], [0.97, 0.03], n), null)
    return cols


# Deterministic pool of dispatch bases shaped like B00013 .. B03404.
_BASES = pa.array([f"B{b:05d}" for b in np.random.default_rng(2019).choice(3500, 300, replace=False)])


def _fhv_columns(c: _Chunk, month: str) -> dict[str, pa.Array]:
    rng, n = c.rng, c.n
    base = pa.array(rng.integers(0, len(_BASES), n))
    affiliated = pc.if_else(
        pa.array(rng.random(n) < 0.1), _BASES.take(pa.array(rng.integers(0, len(_BASES), n))), _BASES.take(base)
    )
    affiliated = pc.if_else(pa.array(rng.random(n) < 0.05), pa.scalar(None, pa.string()), affiliated)
    names = header_for("fhv", month)
    return {
        names[0]: _BASES.take(base),
        names[1]: _ts(c.pickup),
        names[2]: _ts(c.dropoff(rng.exponential(1100.0, n) + 60)),
        names[3]: _int(c.pu),
        names[4]: _int(c.do),
        names[5]: _int(np.ones(n), rng.random(n) >= 0.1),  # SR_Flag: mostly empty, else 1
        names[6]: affiliated,
    }


def _chunks(dataset: str, month: str, rows: int, seed: int) -> Iterator[pa.Table]:
    header = header_for(dataset, month)
    rng = np.random.default_rng(_derived_seed(seed, dataset, month))
    for first in range(0, rows, CHUNK_ROWS):
        chunk = _Chunk(rng, month, first, min(CHUNK_ROWS, rows - first), rows)
        if dataset == "fhv":
            cols = _fhv_columns(chunk, month)
        else:
            cols = _taxi_columns(chunk, green=dataset == "green")
        yield pa.table([cols[name] for name in header], names=header)


_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def _deflate(data: bytes | pa.Buffer) -> bytes:
    # Raw deflate ending in a sync flush: such pieces concatenate into one valid
    # deflate stream (as pigz does), so chunks can be compressed in parallel.
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)


def _write_gzip_csv(path: Path, header: list[str], tables: Iterator[pa.Table]) -> None:
    """Write via a temp file and rename, so a server never hands out half a month."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as out:
            _stream_gzip(out, header, tables)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _stream_gzip(out: BinaryIO, header: list[str], tables: Iterator[pa.Table]) -> None:
    """Stream tables into one deterministic single-member gzip stream.

    Deflate dominates the cost, so chunks are compressed on worker threads (zlib
    releases the GIL) while the next chunk is being built; pieces are written in
    order, so the bytes do not depend on scheduling.
    """
    workers = max(2, min(4, os.cpu_count() or 2))
    crc, size = 0, 0
    # gzip header: deflate, no flags, mtime 0, no extra flags, unknown OS.
    out.write(b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[bytes]] = deque()

        def feed(data: bytes | pa.Buffer) -> None:
            nonlocal crc, size
            crc, size = zlib.crc32(data, crc), size + len(data)
            pending.append(pool.submit(_deflate, data))
            while len(pending) > workers:  # bounds memory to a few chunks
                out.write(pending.popleft().result())

        # Arrow's writer would quote the header, so it is written by hand.
        feed((",".join(header) + "\n").encode())
        for table in tables:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, _CSV_OPTIONS)
            feed(sink.getvalue())
        while pending:
            out.write(pending.popleft().result())
    out.write(zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    out.write(struct.pack("<II", crc, size & 0xFFFFFFFF))


def write_month(root: Path, dataset: str, month: str, fmt: str, n: int, seed: int = 0, era=None) -> Path:
    """The month's file at its mirror path, in the shape of `era` (one of the month's
    shapes, spec.eras_of), by default the first declared."""
    spec = DATASETS[dataset]
    first = spec.era(month, fmt)
    era = era or first
    if era is None:
        raise ValueError(f"{dataset} {month}: no {fmt} era declared")
    path = root / relpath(dataset, month, fmt)
    if era is first and fmt == "csv" and month >= "2019-01" and dataset in ("yellow", "green", "fhv"):
        # The course mirror's files, written fast in chunks (any size).
        _write_gzip_csv(path, header_for(dataset, month), _chunks(dataset, month, n, seed))
    else:
        write_era_file(path, spec, era, month, n, seed)
    return path


def write_zones(root: Path) -> Path:
    """The zone lookup CSV and the zone shapes zip (real files shipped with the package)."""
    for relpath in (SHAPES_RELPATH, ZONES_RELPATH):
        dest = Path(root) / relpath
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = resources.files(__package__).joinpath(relpath.rsplit("/", 1)[-1]).read_bytes()
        if not dest.exists() or dest.read_bytes() != data:
            dest.write_bytes(data)
    return dest


def generate(
    root: Path,
    datasets: list[str],
    months: list[str],
    rows: int | None = None,
    seed: int = 0,
    progress: Callable[[str, str, int], None] | None = None,
    formats: tuple[str, ...] = ("csv",),
) -> dict[tuple[str, str], int]:
    """Write `{root}/{dataset}/{dataset}_tripdata_{YYYY-MM}.csv.gz` (and/or `.parquet`, by
    `formats`) for every pair, in the shape of the month's era (datasets.py); months before
    a feed's first month are skipped.

    Returns the number of data rows per (dataset, month). Same arguments give
    byte-identical files. Also writes `{root}/misc/taxi_zone_lookup.csv` and `taxi_zones.zip`.
    """
    root = Path(root)
    for dataset in datasets:
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    for month in months:
        np.datetime64(month, "M")  # raises on anything but YYYY-MM
        if len(month) != 7:
            raise ValueError(f"month must be YYYY-MM, got {month!r}")
    write_zones(root)
    counts: dict[tuple[str, str], int] = {}
    for dataset in datasets:
        spec = DATASETS[dataset]
        for month in months:
            if month < spec.first_month:
                continue
            n = default_rows(dataset, month, seed) if rows is None else int(rows)
            for fmt in formats:
                if spec.era(month, fmt) is not None:
                    write_month(root, dataset, month, fmt, n, seed)
            counts[(dataset, month)] = n
            if progress is not None:
                progress(dataset, month, n)
    return counts
