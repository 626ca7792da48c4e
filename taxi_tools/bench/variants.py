"""The contestants, each run alone in a fresh process so its peak RSS is its own.

    python -m taxi_tools.bench.variants VARIANT SRC DST MONTH DATASET

prints one JSON line: wall and CPU seconds (all threads) of the work (imports
excluded, for every variant alike), rows or bytes it produced, the process's RSS before the work and
its peak (VmHWM), both in MiB. Not ru_maxrss: Linux carries that over from the
forking parent, so every child would report at least the parent's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

Work = Callable[[Path, Path, str, str], int]


def ours() -> Work:
    """The lake asset's own code path (CSV.gz or Parquet, by the file's name)."""
    from taxi_assets.spec.datasets import get_spec
    from taxi_assets.transform.convert import convert

    return lambda src, dst, month, dataset: convert(get_spec(dataset), month, src, dst).rows


def _duckdb_copy(select: Callable[[Path, str], str], options: str = "") -> Work:
    import duckdb

    def work(src: Path, dst: Path, month: str, dataset: str) -> int:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        sql = f"COPY ({select(src, dataset)}) TO '{dst}' (FORMAT parquet{options})"
        (rows,) = con.execute(sql).fetchone()
        return rows

    return work


def duckdb_copy() -> Work:
    """What peers do: DuckDB's COPY with type sniffing, its default Parquet settings, all cores."""
    return _duckdb_copy(lambda src, dataset: f"SELECT * FROM read_csv_auto('{src}')")


def _csv_types(src: Path, dataset: str) -> dict[str, object]:
    """{header name: spec type} of a CSV month (the peers get the types we declare)."""
    import csv
    import gzip

    from taxi_assets.spec.datasets import get_spec
    from taxi_tools.mirror.generator import spec_column_name

    spec = get_spec(dataset)
    with gzip.open(src, "rt", encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    return {name: spec.column(spec_column_name(spec, name)).type for name in header}


def _header_types() -> None:
    """Import what _csv_types needs before the clock starts."""
    import taxi_assets.spec.datasets  # noqa: F401
    import taxi_tools.mirror.generator  # noqa: F401


DUCKDB_TYPES = {
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "timestamp[us]": "TIMESTAMP",
}


def duckdb_typed() -> Work:
    """DuckDB's COPY with the column types declared (no sniffing of types)."""
    _header_types()

    def select(src: Path, dataset: str) -> str:
        columns = ", ".join(f"'{name}': '{DUCKDB_TYPES[str(t)]}'" for name, t in _csv_types(src, dataset).items())
        return f"SELECT * FROM read_csv('{src}', header = true, columns = {{{columns}}})"

    return _duckdb_copy(select)


def duckdb_parquet() -> Work:
    """DuckDB's COPY of a Parquet month to zstd Parquet, all cores."""
    return _duckdb_copy(lambda src, dataset: f"SELECT * FROM read_parquet('{src}')", ", COMPRESSION zstd")


def _written_rows(dst: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(dst).num_rows


def polars_csv() -> Work:
    """Polars' streaming engine: scan_csv with the schema declared, sink_parquet (zstd)."""
    import polars as pl

    _header_types()
    kinds = {"int32": pl.Int32, "int64": pl.Int64, "double": pl.Float64, "string": pl.String}

    def work(src: Path, dst: Path, month: str, dataset: str) -> int:
        schema = {
            name: pl.Datetime("us") if str(t).startswith("timestamp") else kinds[str(t)]
            for name, t in _csv_types(src, dataset).items()
        }
        pl.scan_csv(src, schema=schema).sink_parquet(dst, compression="zstd")
        return _written_rows(dst)

    return work


def polars_parquet() -> Work:
    """Polars' streaming engine: scan_parquet, sink_parquet (zstd)."""
    import polars as pl

    def work(src: Path, dst: Path, month: str, dataset: str) -> int:
        pl.scan_parquet(src).sink_parquet(dst, compression="zstd")
        return _written_rows(dst)

    return work


def pandas_flow() -> Work:
    """The course's flow: the whole file into a DataFrame, to_datetime, to_parquet with gzip."""
    import pandas as pd

    def work(src: Path, dst: Path, month: str, dataset: str) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mixed-types DtypeWarning the course shows
            df = pd.read_csv(src)
        df["tpep_pickup_datetime"] = pd.to_datetime(df["tpep_pickup_datetime"])
        df["tpep_dropoff_datetime"] = pd.to_datetime(df["tpep_dropoff_datetime"])
        df.to_parquet(dst, compression="gzip")
        return len(df)

    return work


def _inflate(opener) -> Work:
    def work(src: Path, dst: Path, month: str, dataset: str) -> int:
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


# CSV.gz month -> lake Parquet.
VARIANTS: dict[str, Callable[[], Work]] = {
    "ours": ours,
    "duckdb": duckdb_copy,
    "duckdb-typed": duckdb_typed,
    "polars": polars_csv,
    "pandas": pandas_flow,
    "gunzip": gunzip,
    "gunzip-isal": gunzip_isal,
}
# Parquet month (TLC's official shape) -> lake Parquet.
PARQUET_VARIANTS: dict[str, Callable[[], Work]] = {
    "ours": ours,
    "duckdb": duckdb_parquet,
    "polars": polars_parquet,
}


class ProcSampler:
    """Reads CPU seconds from /proc on a background thread every `interval` seconds and keeps,
    per key (a thread, a process), the highest figure seen: threads and processes that end
    before the sampler stops keep their last figure. Subclasses read /proc in `_sample`."""

    interval = 0.5

    def __init__(self) -> None:
        import threading

        self.seen: dict = {}
        self.before: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        raise NotImplementedError

    def _keep(self, key, value) -> None:
        self.seen[key] = max(self.seen.get(key, 0), value)

    @staticmethod
    def _stat_fields(path: str) -> list[str] | None:
        """The fields of a /proc stat file after the command name (state first), or None if
        the thread or process ended before it was read."""
        try:
            with open(path) as f:
                return f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self.before = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class ThreadCpu(ProcSampler):
    """The CPU seconds of the busiest thread, sampled from /proc/self/task/*/stat every 20 ms
    (threads of a pool are gone by the end, so their figures are kept as they run).

    With 2 cores, a quiet machine runs a variant in about max(busiest thread, all threads / 2):
    the figure that tells what its wall time becomes once nothing else loads the machine."""

    interval = 0.02

    def __init__(self) -> None:
        import os

        super().__init__()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.me = ""  # the sampler's own thread, once it runs

    def _sample(self) -> None:
        import os

        for tid in os.listdir("/proc/self/task"):
            fields = self._stat_fields(f"/proc/self/task/{tid}/stat") if tid != self.me else None
            if fields is not None:
                self._keep(tid, int(fields[11]) + int(fields[12]))  # utime + stime

    def _loop(self) -> None:
        import threading

        self.me = str(threading.get_native_id())
        super()._loop()

    def busiest(self) -> float:
        return max((t - self.before.get(tid, 0) for tid, t in self.seen.items()), default=0) / self.tick


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))
    return kib / 1024


def measure(variant: str, work: Callable[[], int]) -> None:
    """Run work (it returns what it produced) in this process, imports already done, and
    print the JSON line run_fresh reads: wall, CPU (all threads; the busiest one's), RSS before
    and peak."""
    base = _status_mib("VmRSS")
    with ThreadCpu() as threads:
        cpu = time.process_time()
        started = time.perf_counter()
        produced = work()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    peak = _status_mib("VmHWM")
    print(
        json.dumps(
            {
                "variant": variant,
                "wall": wall,
                "cpu": cpu,
                "thread_cpu": threads.busiest(),
                "produced": produced,
                "base_mib": base,
                "peak_mib": peak,
            }
        )
    )


def run_fresh(module: str, args: list[str], output: Path) -> tuple[dict, str]:
    """`python -m module *args` in a fresh process (its peak RSS its own): the JSON line it
    prints last (measure's) and its stderr. The output file is removed after the run;
    a failed run raises with its stderr."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)
    output.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench variant {' '.join(map(str, args[:2]))} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def main(argv: list[str]) -> None:
    name, src, dst, month, dataset = argv
    table = PARQUET_VARIANTS if src.endswith(".parquet") else VARIANTS
    work = table[name]()
    measure(name, lambda: work(Path(src), Path(dst), month, dataset))


if __name__ == "__main__":
    main(sys.argv[1:])
