"""Time the conversion variants on generated months of several sizes, interleaved and repeated.

Each run is a fresh process (`variants.py`); the order of the variants rotates from
one repetition to the next, so background load on a shared machine falls on all of
them alike, and medians are reported. The last line printed is the summary for the
largest month: `ours/duckdb_wall=R peak_mib=M rows=N`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from taxi_assets.bench.variants import VARIANTS
from taxi_assets.mirror import generate
from taxi_assets.mirror.generator import relpath

DATASET = "yellow"


@dataclass
class Run:
    variant: str
    rows: int
    wall: float
    peak_mib: float
    base_mib: float
    produced: int


def month_file(root: Path, rows: int, month: str) -> Path:
    """A generated TLC-shaped yellow month of `rows` rows, built once and cached under root."""
    folder = root / f"rows-{rows}"
    path = folder / relpath(DATASET, month)
    if not path.exists():  # the generator writes atomically: an existing file is whole
        print(f"generating {path} ({rows:,} rows) ...", flush=True)
        generate(folder, [DATASET], [month], rows=rows)
    return path


def run_variant(variant: str, src: Path, out_dir: Path, month: str, rows: int) -> Run:
    dst = out_dir / f"{variant}.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "taxi_assets.bench.variants", variant, str(src), str(dst), month],
        capture_output=True,
        text=True,
    )
    dst.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench variant {variant} failed on {src}:\n{proc.stderr}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    return Run(variant, rows, m["wall"], m["peak_mib"], m["base_mib"], m["produced"])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    libs = ", ".join(f"{p} {version(p)}" for p in ("pyarrow", "isal", "duckdb", "pandas"))
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, {libs}"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_bench(root: Path, sizes: list[int], variants: list[str], repeats: int, month: str) -> list[Run]:
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    files = {rows: month_file(root, rows, month) for rows in sizes}
    out_dir = root / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(machine())
    print(f"start: {load()}", flush=True)
    runs: list[Run] = []
    try:
        for rep in range(repeats):
            for rows in sizes:
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                for variant in order:
                    run = run_variant(variant, files[rows], out_dir, month, rows)
                    print(f"  rep {rep + 1} rows {rows:>9,} {variant:<12} {run.wall:7.2f} s {run.peak_mib:7.0f} MiB", flush=True)
                    runs.append(run)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"end: {load()}")
    for run in runs:
        if run.variant in ("ours", "duckdb", "pandas") and run.produced != run.rows:
            raise RuntimeError(f"{run.variant} wrote {run.produced:,} rows of {run.rows:,}")
    return runs


def summarize(runs: list[Run], sizes: list[int], variants: list[str]) -> list[str]:
    """The table, the ratios, and last the one-line summary for the largest month."""
    lines = [
        f"{'rows':>10} {'variant':<12} {'wall s':>8} {'min s':>7} {'peak MiB':>9} {'base MiB':>9} {'vs duckdb':>10}"
    ]

    def median(rows: int, variant: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs if r.rows == rows and r.variant == variant)

    def peak(rows: int, variant: str) -> float:
        return max(r.peak_mib for r in runs if r.rows == rows and r.variant == variant)

    for rows in sizes:
        duck = median(rows, "duckdb", "wall") if "duckdb" in variants else None
        for variant in variants:
            wall = median(rows, variant, "wall")
            fastest = min(r.wall for r in runs if r.rows == rows and r.variant == variant)
            ratio = f"{wall / duck:10.2f}" if duck else f"{'':>10}"
            lines.append(
                f"{rows:>10,} {variant:<12} {wall:8.2f} {fastest:7.2f} {peak(rows, variant):9.0f} "
                f"{median(rows, variant, 'base_mib'):9.0f} {ratio}"
            )
        ratios = []
        if duck and "ours" in variants:
            ratios.append(f"ours/duckdb {median(rows, 'ours', 'wall') / duck:.2f}")
        if {"pandas", "ours"} <= set(variants):
            ratios.append(f"pandas/ours {median(rows, 'pandas', 'wall') / median(rows, 'ours', 'wall'):.1f}")
        if duck and "gunzip" in variants:
            ratios.append(f"gunzip/duckdb {median(rows, 'gunzip', 'wall') / duck:.2f}")
        if ratios:
            lines.append(f"{rows:>10,} ratios: " + ", ".join(ratios))
    if "ours" in variants and len(sizes) > 1:
        lines.append(
            "ours peak MiB by month size: "
            + ", ".join(f"{rows:,} rows {peak(rows, 'ours'):.0f}" for rows in sizes)
        )
    largest = max(sizes)
    if {"ours", "duckdb"} <= set(variants):
        ratio = median(largest, "ours", "wall") / median(largest, "duckdb", "wall")
        lines.append(f"ours/duckdb_wall={ratio:.2f} peak_mib={peak(largest, 'ours'):.0f} rows={largest}")
    return lines


FHVHV_MONTH = "2024-01"  # the Parquet era with columns typed null and timestamp[ns]


def run_fhvhv_bench(root: Path, rows: int, repeats: int) -> list[str]:
    """Peak memory of the lake conversion on an fhvhv-shaped Parquet month (row groups of
    about a million rows, as TLC's), against DuckDB's COPY of the same file in the same run."""
    folder = root / f"fhvhv-rows-{rows}"
    src = folder / relpath("fhvhv", FHVHV_MONTH, "parquet")
    if not src.exists():
        print(f"generating {src} ({rows:,} rows) ...", flush=True)
        generate(folder, ["fhvhv"], [FHVHV_MONTH], rows=rows, formats=("parquet",))
    out_dir = folder / "out"
    out_dir.mkdir(exist_ok=True)
    runs = [
        run_variant(variant, src, out_dir, FHVHV_MONTH, rows)
        for _ in range(repeats)
        for variant in ("ours-fhvhv", "duckdb-parquet")
    ]
    lines = [machine(), load(), f"fhvhv Parquet month: {rows:,} rows, {src.stat().st_size / 2**20:,.0f} MiB"]
    for run in runs:
        lines.append(f"  {run.variant:15s} wall {run.wall:6.1f}s  peak {run.peak_mib:6.0f} MiB  rows {run.produced:,}")
    ours = [r for r in runs if r.variant == "ours-fhvhv"]
    duck = [r for r in runs if r.variant == "duckdb-parquet"]
    peak = max(r.peak_mib for r in ours)
    lines.append(
        f"fhvhv ours_peak_mib={peak:.0f} duckdb_peak_mib={max(r.peak_mib for r in duck):.0f} "
        f"ours/duckdb_wall={statistics.median(r.wall for r in ours) / statistics.median(r.wall for r in duck):.2f} "
        f"rows={ours[0].produced}"
    )
    return lines
