"""`make bench` works end to end on tiny inputs (no timing is asserted: the machine is shared)."""

from __future__ import annotations

import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.helpers import csv_data_rows
from taxi_tools.bench.convert_bench import month_file
from taxi_tools.bench.dagster_bench import DEV_MAX_CONCURRENT_RUNS, idle_slot_seconds, instance_yaml, max_overlap
from taxi_tools.bench.parquet_months import FHVHV_SCHEMA, ROW_GROUP_ROWS, YELLOW_SCHEMA, parquet_month
from taxi_tools.bench.variants import PARQUET_VARIANTS, VARIANTS

# Runs the bench and the dagster CLI as processes: in `make test`, not `make check`.
pytestmark = pytest.mark.deploy


def _bench(*args: str, tmp_path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "taxi_tools.bench", *args, "--repeats", "1", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_convert_bench_prints_every_variant_and_ends_with_the_summary_line(tmp_path):
    lines = _bench("convert", "--rows", "2000,3000", tmp_path=tmp_path)
    assert re.fullmatch(r"csv_ours/best_peer=\d+\.\d\d csv_peak_mib=\d+ csv_rows=3000", lines[-1]), lines[-1]
    for rows in ("2,000", "3,000"):
        for variant in VARIANTS:
            assert any(re.match(rf"\s+csv yellow {rows} {re.escape(variant)}\s+\d", line) for line in lines), (
                rows,
                variant,
            )
        ratios = next(line for line in lines if re.match(rf"\s+csv yellow {rows} ratios:", line))
        assert re.search(
            r"ours/(duckdb|duckdb-typed|polars) \d+\.\d\d, ours/duckdb-typed \d+\.\d\d, polars/ours \d", ratios
        )
        # The target's verdict, against the faster of the three peers.
        assert any(
            re.fullmatch(
                rf"target csv yellow {rows}: ours/(duckdb|duckdb-typed|polars) \d+\.\d\d .*: (met|NOT met)", line
            )
            for line in lines
        ), rows
    # The peers' releases, which the figures depend on.
    assert any(re.search(r"peers: duckdb \d+\.\d+\.\d+.*, polars \d+\.\d+\.\d+", line) for line in lines)
    assert lines[0].startswith("generating") and any(line.startswith("machine:") for line in lines)
    # The generated months stay cached for the next run, and hold the rows asked for.
    assert csv_data_rows(month_file(tmp_path, 3000, "2021-01")) == 3000
    assert not (tmp_path / "out").exists()


def test_parquet_bench_runs_ours_against_duckdb_and_polars_on_tlc_shaped_months(tmp_path):
    lines = _bench("parquet", "--parquet-rows", "1500,2500", tmp_path=tmp_path)
    assert re.fullmatch(r"parquet_ours/best_peer=\d+\.\d\d parquet_peak_mib=\d+ parquet_rows=2500", lines[-1]), lines[
        -1
    ]
    assert any(
        re.fullmatch(r"target parquet yellow 2,500: ours/(duckdb|polars) .*: (met|NOT met)", line) for line in lines
    )
    for shape in ("yellow", "fhvhv"):
        for variant in PARQUET_VARIANTS:
            assert any(re.match(rf"\s+parquet {shape} 2,500 {variant}\s+\d", line) for line in lines), (shape, variant)
        assert any(re.match(rf"\s+parquet {shape} 2,500 ratios: ours/(duckdb|polars) \d", line) for line in lines)


def test_generated_parquet_months_have_tlc_types_and_row_groups(tmp_path):
    yellow = parquet_month(tmp_path, "yellow", ROW_GROUP_ROWS + 10, "2019-06")
    meta = pq.read_metadata(yellow)
    assert meta.num_rows == ROW_GROUP_ROWS + 10 and meta.num_row_groups == 2
    assert pq.read_schema(yellow).remove_metadata() == YELLOW_SCHEMA
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    fhvhv = parquet_month(tmp_path, "fhvhv", 100, "2019-06")
    table = pq.read_table(fhvhv)
    assert table.schema.remove_metadata() == FHVHV_SCHEMA and table.num_rows == 100
    assert set(table.column("shared_request_flag").to_pylist()) <= {"Y", "N"}
    assert table.column("wav_match_flag").type == "null" and table.column("pickup_datetime").type == "timestamp[ns]"
    assert parquet_month(tmp_path, "fhvhv", 100, "2019-06").read_bytes() == fhvhv.read_bytes()  # cached


def test_max_overlap_counts_runs_running_at_once():
    assert max_overlap([]) == 0
    assert max_overlap([(0, 10), (1, 6), (3, 4), (5, 11), (10.5, 12)]) == 3
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1


def test_idle_slots_count_unused_run_slots_between_launch_and_end():
    # Two slots from 0 to 10: one run 2..10 and one 4..6 leave 2*2 + 1*2 + 1*4 = 10 slot-seconds idle.
    assert idle_slot_seconds([(2, 10), (4, 6)], 0, 10, 2) == 10
    assert idle_slot_seconds([(0, 10), (0, 10)], 0, 10, 2) == 0


def test_session_cpu_counts_the_processes_of_the_session_only():
    from taxi_tools.bench.dagster_bench import SessionCpu

    # A process in its own session that spends 1.5 s of CPU, and one outside it.
    spin = "import time\nwhile time.process_time() < 1.5: pass"
    inside = subprocess.Popen([sys.executable, "-c", spin], start_new_session=True)
    with SessionCpu(inside.pid) as cpu:
        outside = subprocess.run([sys.executable, "-c", spin], check=True)
        inside.wait()
    assert outside.returncode == 0
    # Sampled every half second: at most the last half second of the process is missed.
    assert 0.9 <= cpu.seconds <= 1.5 + 0.5, cpu.seconds


def test_partition_overhead_runs_the_convert_command_and_dagster_on_the_same_raw_file(tmp_path):
    from taxi_tools.bench.dagster_bench import partition_overhead

    lines = partition_overhead(tmp_path, rows=2000, month="2021-01", repeats=1)
    assert lines[0].startswith("one partition, lake/yellow_lake 2021-01 (2,000 rows)")
    assert re.match(
        r"\s+python -m taxi_assets.transform.convert\s+\d+\.\d s \(conversion inside \d+\.\d s\)$", lines[1]
    )
    assert re.match(
        r"\s+dagster asset materialize\s+\d+\.\d s \(conversion inside \d+\.\d s, Dagster overhead [+-]\d+\.\d s\)$",
        lines[2],
    )
    assert not list(tmp_path.glob("dagster-*"))  # the scratch platform is gone


def test_the_baseline_loads_every_month_of_the_history_without_dagster(tmp_path):
    import duckdb

    from taxi_tools.bench.history import baseline, history_mirror, history_months, source_urls
    from taxi_tools.mirror import MirrorServer

    months = history_months(last=2)
    assert set(months) == set(DATASETS) and all(len(m) == 2 for m in months.values())
    mirror = history_mirror(tmp_path, 300, months)
    with MirrorServer(mirror) as server:
        _, cpu, rows = baseline(tmp_path / "work", source_urls(server.url_template), months, mirror)
    assert rows == 300 * 2 * len(DATASETS)
    assert cpu > 0  # the workers' CPU, counted once they are reaped
    with duckdb.connect(str(tmp_path / "work" / "warehouse.duckdb"), read_only=True) as con:
        for spec in DATASETS.values():
            assert con.execute(f"SELECT count(DISTINCT source_month), count(*) FROM {spec.table}").fetchone() == (
                2,
                600,
            )


def test_the_local_instance_queue_takes_two_runs_and_looks_every_second(tmp_path, monkeypatch):
    import dagster as dg

    (tmp_path / "dagster.yaml").write_text(instance_yaml())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == DEV_MAX_CONCURRENT_RUNS
    # The bench's instance is the one `make dev` installs: its launcher and run monitoring too.
    assert type(instance.run_launcher).__name__ == "LocalRunLauncher" and instance.run_monitoring_enabled


def test_the_definitions_import_trace_is_broken_down_by_package_and_by_what_the_definitions_import():
    from taxi_tools.bench.dagster_bench import parse_importtime

    trace = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     numpy",
            "import time:       200 |        300 |   pyarrow",
            "import time:       700 |        700 |   dagster",
            "import time:        50 |        350 |   taxi_assets.spec.datasets",
            "import time:       150 |       1350 | taxi_assets.definitions",
        ]
    )
    heavy, top, own = parse_importtime(trace)
    assert heavy == {"numpy": 0.0001, "pyarrow": 0.0003, "dagster": 0.0007}
    assert top == [("dagster", 0.0007), ("taxi_assets.spec.datasets", 0.00035), ("pyarrow", 0.0003)]
    assert own == 0.00015
