"""The contestants, each run alone in a fresh process so its peak RSS is its own.

    python -m taxi_assets.bench.variants VARIANT SRC DST MONTH

prints one JSON line: wall seconds of the work (imports excluded, for every
variant alike), rows or bytes it produced, the process's RSS before the work and
its peak (VmHWM), both in MiB. Not ru_maxrss: Linux carries that over from the
forking parent, so every child would report at least the parent's size.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

Work = Callable[[Path, Path, str], int]


def ours() -> Work:
    """The lake asset's own code path."""
    from taxi_assets.convert import convert
    from taxi_assets.datasets import get_spec

    spec = get_spec("yellow")
    return lambda src, dst, month: convert(spec, month, src, dst).rows


def ours_fhvhv() -> Work:
    """The lake asset's code path on an fhvhv-shaped Parquet month (streamed by batch)."""
    from taxi_assets.convert import convert
    from taxi_assets.datasets import get_spec

    spec = get_spec("fhvhv")
    return lambda src, dst, month: convert(spec, month, src, dst).rows


def duckdb_parquet() -> Work:
    """The baseline for Parquet sources: DuckDB's COPY of the file to Parquet."""
    import duckdb

    def work(src: Path, dst: Path, month: str) -> int:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        (rows,) = con.execute(f"COPY (SELECT * FROM read_parquet('{src}')) TO '{dst}' (FORMAT parquet)").fetchone()
        return rows

    return work


def duckdb_copy() -> Work:
    """What peers do: DuckDB's COPY with type sniffing, its default Parquet settings, all cores."""
    import duckdb

    def work(src: Path, dst: Path, month: str) -> int:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        sql = f"COPY (SELECT * FROM read_csv_auto('{src}')) TO '{dst}' (FORMAT parquet)"
        (rows,) = con.execute(sql).fetchone()
        return rows

    return work


def pandas_flow() -> Work:
    """The course's flow: the whole file into a DataFrame, to_datetime, to_parquet with gzip."""
    import pandas as pd

    def work(src: Path, dst: Path, month: str) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mixed-types DtypeWarning the course shows
            df = pd.read_csv(src)
        df["tpep_pickup_datetime"] = pd.to_datetime(df["tpep_pickup_datetime"])
        df["tpep_dropoff_datetime"] = pd.to_datetime(df["tpep_dropoff_datetime"])
        df.to_parquet(dst, compression="gzip")
        return len(df)

    return work


def _inflate(opener) -> Work:
    def work(src: Path, dst: Path, month: str) -> int:
        size = 0
        with opener(src, "rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
        return size

    return work


def gunzip() -> Work:
    """Decompression alone with zlib (Python's gzip): the floor for any zlib-based reader."""
    import gzip

    return _inflate(gzip.open)


def gunzip_isal() -> Work:
    """Decompression alone with ISA-L, the inflater ours uses."""
    from isal import igzip

    return _inflate(igzip.open)


VARIANTS: dict[str, Callable[[], Work]] = {
    "ours": ours,
    "duckdb": duckdb_copy,
    "pandas": pandas_flow,
    "gunzip": gunzip,
    "gunzip-isal": gunzip_isal,
}
# On an fhvhv-shaped Parquet month (run_fhvhv_bench), not on the yellow CSV months.
PARQUET_VARIANTS: dict[str, Callable[[], Work]] = {"ours-fhvhv": ours_fhvhv, "duckdb-parquet": duckdb_parquet}


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))
    return kib / 1024


def main(argv: list[str]) -> None:
    name, src, dst, month = argv
    work = {**VARIANTS, **PARQUET_VARIANTS}[name]()
    base = _status_mib("VmRSS")
    started = time.perf_counter()
    produced = work(Path(src), Path(dst), month)
    wall = time.perf_counter() - started
    peak = _status_mib("VmHWM")
    print(json.dumps({"variant": name, "wall": wall, "produced": produced, "base_mib": base, "peak_mib": peak}))


if __name__ == "__main__":
    main(sys.argv[1:])
