"""`make bench` works end to end on tiny months (no timing is asserted: the machine is shared)."""

from __future__ import annotations

import re
import subprocess
import sys

from taxi_assets.bench.convert_bench import month_file
from taxi_assets.bench.dagster_bench import instance_yaml, max_overlap
from taxi_assets.bench.variants import VARIANTS
from taxi_assets_tests.helpers import csv_data_rows


def test_convert_bench_prints_every_variant_and_ends_with_the_summary_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "taxi_assets.bench", "convert", "--rows", "2000,3000", "--repeats", "1", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"ours/duckdb_wall=\d+\.\d\d peak_mib=\d+ rows=3000", lines[-1]), lines[-1]
    for rows in ("2,000", "3,000"):
        for variant in VARIANTS:
            assert any(re.match(rf"\s+{rows} {re.escape(variant)}\s+\d", line) for line in lines), (rows, variant)
        assert any(re.match(rf"\s+{rows} ratios: ours/duckdb \d", line) for line in lines)
    assert lines[0].startswith("generating") and "machine:" in proc.stdout
    # The generated months stay cached for the next run, and hold the rows asked for.
    cached = month_file(tmp_path, 3000, "2021-01")
    assert csv_data_rows(cached) == 3000
    assert not (tmp_path / "out").exists()


def test_max_overlap_counts_runs_running_at_once():
    assert max_overlap([]) == 0
    assert max_overlap([(0, 10), (1, 6), (3, 4), (5, 11), (10.5, 12)]) == 3
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1


def test_the_bench_instance_limits_runs_to_two():
    assert "max_concurrent_runs: 2" in instance_yaml(2)


def test_partition_overhead_runs_the_convert_command_and_dagster_on_the_same_raw_file(tmp_path):
    from taxi_assets.bench.dagster_bench import partition_overhead

    lines = partition_overhead(tmp_path, rows=2000, month="2021-01", repeats=1)
    assert lines[0].startswith("one partition, lake/yellow_lake 2021-01 (2,000 rows)")
    assert re.match(r"\s+python -m taxi_assets.convert\s+\d+\.\d s \(conversion inside \d+\.\d s\)$", lines[1])
    assert re.match(
        r"\s+dagster asset materialize\s+\d+\.\d s \(conversion inside \d+\.\d s, Dagster overhead [+-]\d+\.\d s\)$",
        lines[2],
    )
    assert not list(tmp_path.glob("dagster-*"))  # the scratch platform is gone


def test_fhvhv_bench_reports_the_peak_of_a_parquet_month(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "taxi_assets.bench", "fhvhv", "--fhvhv-rows", "5000", "--repeats", "1",
         "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"fhvhv ours_peak_mib=\d+ duckdb_peak_mib=\d+ ours/duckdb_wall=\d+\.\d\d rows=5000", last), last
