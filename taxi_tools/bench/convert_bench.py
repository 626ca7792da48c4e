"""Time the conversion variants on generated months of several sizes, interleaved and repeated.

Two kinds of source: the course's CSV.gz months (mirror generator) and Parquet months
shaped like TLC's official files (`parquet_months.py`). Each run is a fresh process
(`variants.py`); the order of the variants rotates from one repetition to the next,
so background load on a shared machine falls on all of them alike, and medians are
reported. Ours is compared with DuckDB on CSV and with the faster of DuckDB and
Polars on Parquet.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from taxi_assets.spec.datasets import DATASETS
from taxi_tools.bench.parquet_months import parquet_month
from taxi_tools.bench.variants import PARQUET_VARIANTS, VARIANTS, run_fresh
from taxi_tools.mirror import generate
from taxi_tools.mirror.generator import relpath

DATASET = "yellow"

# The peers' releases the figures are measured with (the bench extra in setup.cfg pins them).
PEERS = {"duckdb": "2.0.1", "polars": "2.2.0"}
# Targets: ours / the faster peer, and ours' peak (README, Performance).
TARGETS = {"csv": 0.8, "parquet": 1.0}
PEAK_TARGET_MIB = 300


@dataclass(frozen=True)
class Case:
    """One source file and the variants timed on it."""

    fmt: str  # "csv" (CSV.gz) or "parquet"
    dataset: str
    rows: int
    month: str
    path: Path
    variants: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.fmt} {self.dataset} {self.rows:,}"

    @property
    def reference(self) -> tuple[str, ...]:
        """What ours is compared with: the faster of DuckDB (on CSV: types sniffed or declared) and Polars."""
        wanted = ("duckdb", "duckdb-typed", "polars") if self.fmt == "csv" else ("duckdb", "polars")
        return tuple(v for v in wanted if v in self.variants)


@dataclass
class Run:
    case: Case
    variant: str
    wall: float
    cpu: float
    thread_cpu: float  # the busiest thread's CPU seconds
    peak_mib: float
    base_mib: float
    produced: int


def month_file(root: Path, rows: int, month: str, dataset: str = DATASET) -> Path:
    """A generated TLC-shaped CSV.gz month of `rows` rows, built once and cached under root."""
    folder = root / f"rows-{rows}"
    path = folder / relpath(dataset, month)
    if not path.exists():  # the generator writes atomically: an existing file is whole
        print(f"generating {path} ({rows:,} rows) ...", flush=True)
        generate(folder, [dataset], [month], rows=rows)
    return path


def csv_cases(root: Path, sizes: list[int], variants: list[str], month: str) -> list[Case]:
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    return [Case("csv", DATASET, rows, month, month_file(root, rows, month), tuple(variants)) for rows in sorted(sizes)]


def parquet_cases(root: Path, sizes: list[int], shapes: list[str], month: str) -> list[Case]:
    """TLC-shaped Parquet months; ours runs on a shape only once the spec table has its dataset."""
    cases = []
    for shape in shapes:
        variants = [v for v in PARQUET_VARIANTS if v != "ours" or shape in DATASETS]
        if "ours" not in variants:
            print(f"note: no {shape} dataset in the spec table yet: ours is not run on {shape} Parquet", flush=True)
        for rows in sorted(sizes):
            cases.append(Case("parquet", shape, rows, month, parquet_month(root, shape, rows, month), tuple(variants)))
    return cases


def run_variant(variant: str, case: Case, out_dir: Path) -> Run:
    dst = out_dir / f"{variant}.parquet"
    m, _ = run_fresh("taxi_tools.bench.variants", [variant, case.path, dst, case.month, case.dataset], dst)
    return Run(case, variant, m["wall"], m["cpu"], m["thread_cpu"], m["peak_mib"], m["base_mib"], m["produced"])


def quiet_wall(cpu: float, thread_cpu: float, cores: int = 2) -> float:
    """What the wall time becomes on a quiet machine of `cores` cores, from CPU seconds
    (steady under load, unlike wall time): no faster than the busiest thread, nor than all
    threads' CPU spread over the cores."""
    return max(thread_cpu, cpu / cores)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    libs = ", ".join(f"{p} {version(p)}" for p in ("pyarrow", "isal", "pandas"))
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, {libs}; {peer_versions()}"
    )


def peer_versions() -> str:
    """The peers' installed releases, flagged where one is not the pinned release."""
    found = []
    for name, pinned in PEERS.items():
        installed = version(name)
        found.append(f"{name} {installed}" + ("" if installed == pinned else f" (NOT the pinned {pinned})"))
    return "peers: " + ", ".join(found)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_bench(root: Path, cases: list[Case], repeats: int) -> list[Run]:
    """Every variant of every case, `repeats` times, the variants' order rotating."""
    out_dir = root / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(machine())
    print(f"start: {load()}", flush=True)
    runs: list[Run] = []
    try:
        for rep in range(repeats):
            for case in cases:
                variants = list(case.variants)
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                for variant in order:
                    run = run_variant(variant, case, out_dir)
                    print(
                        f"  rep {rep + 1} {case.label:>22} {variant:<12} {run.wall:7.2f} s {run.cpu:7.2f} cpu-s "
                        f"{run.thread_cpu:6.2f} busiest-thread cpu-s {run.peak_mib:7.0f} MiB",
                        flush=True,
                    )
                    runs.append(run)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"end: {load()}")
    for run in runs:
        if run.variant in ("ours", "duckdb", "duckdb-typed", "polars", "pandas") and run.produced != run.case.rows:
            raise RuntimeError(f"{run.variant} wrote {run.produced:,} rows of {run.case.rows:,} ({run.case.label})")
    return runs


def median(runs: list[Run], case: Case, variant: str, attr: str = "wall") -> float:
    return statistics.median(getattr(r, attr) for r in runs if r.case == case and r.variant == variant)


def peak(runs: list[Run], case: Case, variant: str) -> float:
    return max(r.peak_mib for r in runs if r.case == case and r.variant == variant)


def quiet(runs: list[Run], case: Case, variant: str) -> float:
    """Median projected quiet wall (quiet_wall) of a variant."""
    return statistics.median(quiet_wall(r.cpu, r.thread_cpu) for r in runs if r.case == case and r.variant == variant)


def reference_wall(runs: list[Run], case: Case) -> tuple[str, float] | None:
    """The reference peer of the case and its median wall (the faster one when there are two)."""
    walls = [(median(runs, case, v), v) for v in case.reference]
    if not walls:
        return None
    wall, variant = min(walls)
    return variant, wall


def summarize(runs: list[Run], cases: list[Case]) -> tuple[list[str], dict[str, str]]:
    """The table with the ratios, and the figures that go on the summary line."""
    lines = [
        f"{'case':>24} {'variant':<12} {'wall s':>8} {'min s':>7} {'cpu s':>7} {'thread s':>8} {'quiet s':>7} "
        f"{'peak MiB':>9} {'base MiB':>9} {'vs ref':>7} {'quiet vs ref':>12}"
    ]
    summary: dict[str, str] = {}
    for case in cases:
        ref = reference_wall(runs, case)
        for variant in case.variants:
            wall = median(runs, case, variant)
            fastest = min(r.wall for r in runs if r.case == case and r.variant == variant)
            ratio = f"{wall / ref[1]:7.2f}" if ref else f"{'':>7}"
            quiet_ratio = f"{quiet(runs, case, variant) / quiet(runs, case, ref[0]):12.2f}" if ref else ""
            lines.append(
                f"{case.label:>24} {variant:<12} {wall:8.2f} {fastest:7.2f} {median(runs, case, variant, 'cpu'):7.2f} "
                f"{median(runs, case, variant, 'thread_cpu'):8.2f} {quiet(runs, case, variant):7.2f} "
                f"{peak(runs, case, variant):9.0f} "
                f"{median(runs, case, variant, 'base_mib'):9.0f} {ratio} {quiet_ratio}"
            )
        if ref and "ours" in case.variants:
            ours = median(runs, case, "ours")
            ratios = [f"ours/{ref[0]} {ours / ref[1]:.2f}"]
            if case.fmt == "csv" and "duckdb-typed" in case.variants:
                ratios.append(f"ours/duckdb-typed {ours / median(runs, case, 'duckdb-typed'):.2f}")
            if case.fmt == "csv" and "polars" in case.variants:
                ratios.append(f"polars/ours {median(runs, case, 'polars') / ours:.1f}")
            if case.fmt == "csv" and "pandas" in case.variants:
                ratios.append(f"pandas/ours {median(runs, case, 'pandas') / ours:.1f}")
            ratios.append(f"projected quiet ours/{ref[0]} {quiet(runs, case, 'ours') / quiet(runs, case, ref[0]):.2f}")
            if case.fmt == "csv" and "duckdb-typed" in case.variants:
                ratios.append(
                    f"projected quiet ours/duckdb-typed {quiet(runs, case, 'ours') / quiet(runs, case, 'duckdb-typed'):.2f}"
                )
            lines.append(f"{case.label:>24} ratios: " + ", ".join(ratios))
    for fmt in ("csv", "parquet"):
        ours_cases = [c for c in cases if c.fmt == fmt and "ours" in c.variants and c.reference]
        if not ours_cases:
            continue
        lines.append(
            f"ours peak MiB ({fmt}): "
            + ", ".join(f"{c.dataset} {c.rows:,} rows {peak(runs, c, 'ours'):.0f}" for c in ours_cases)
        )
        # The summary: the largest month (of the last shape, fhvhv when it exists) and the worst peak.
        case = max(ours_cases, key=lambda c: (c.rows, c.dataset == "fhvhv"))
        ref_name, ref = reference_wall(runs, case)
        summary[f"{fmt}_ours/best_peer"] = f"{median(runs, case, 'ours') / ref:.2f}"
        summary[f"{fmt}_peak_mib"] = f"{max(peak(runs, c, 'ours') for c in ours_cases):.0f}"
        summary[f"{fmt}_rows"] = str(case.rows)
        lines += verdicts(runs, ours_cases, fmt)
    return lines, summary


def verdicts(runs: list[Run], cases: list[Case], fmt: str) -> list[str]:
    """Each case against the targets: measured and projected-quiet ratios, and the peak."""
    lines = []
    for case in cases:
        ref_name, ref = reference_wall(runs, case)
        ratio = median(runs, case, "ours") / ref
        quiet_ratio = quiet(runs, case, "ours") / min(quiet(runs, case, v) for v in case.reference)
        top = peak(runs, case, "ours")
        met = ratio <= TARGETS[fmt] and top <= PEAK_TARGET_MIB
        lines.append(
            f"target {fmt} {case.dataset} {case.rows:,}: ours/{ref_name} {ratio:.2f} (target <= {TARGETS[fmt]}), "
            f"projected quiet {quiet_ratio:.2f}, peak {top:.0f} MiB (target <= {PEAK_TARGET_MIB}): "
            + ("met" if met else "NOT met")
        )
    return lines
