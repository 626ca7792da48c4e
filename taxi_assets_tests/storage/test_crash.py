"""Crash safety and concurrency with real processes (taxi_assets_tests.materialize_month,
the product's resources from the environment): a run killed with SIGKILL mid-download
or between the lake write and the warehouse load, then rerun, ends exactly like a clean
run; two runs of the same month at once serialise on the warehouse's lock and leave one
copy of the month."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.storage.lake import LocalLakeStore
from taxi_assets_tests.reliability import State, lake_files, materialize
from taxi_tools.mirror import Fault

# Kills run processes mid-run: in `make test`, not `make check`.
pytestmark = pytest.mark.deploy

PROJECT = Path(__file__).resolve().parents[2]
SPEC = DATASETS["yellow"]
MONTH = "2021-01"
FILE = "yellow/yellow_tripdata_2021-01.csv.gz"
WAITING_FOR_LOCK = "waiting for the warehouse lock"


@pytest.fixture
def staging() -> Path:
    return Path(os.environ["TAXI_STAGING_DIR"])


def start_run(platform, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "TAXI_SOURCE_URL": platform.source_url,
        "TAXI_LAKE_URI": platform.lake_uri,
        "TAXI_WAREHOUSE_URI": platform.warehouse_uri,
    }
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "taxi_assets_tests.materialize_month", SPEC.name, MONTH],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )


def wait_for(condition: Callable[[], bool], runs: list[subprocess.Popen], what: str) -> None:
    """Poll until condition holds; fail early if a run ends first. The limit only
    keeps a broken test from hanging: nothing is asserted about time."""
    give_up = time.monotonic() + 120
    while not condition():
        ended = [r.args for r in runs if r.poll() is not None]
        assert not ended, f"run ended before {what}: {ended}"
        assert time.monotonic() < give_up, f"never saw {what}"
        time.sleep(0.02)


def kill(run: subprocess.Popen) -> None:
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(30)  # reaped: a zombie's pid would still look alive


def warehouse_lock(platform) -> FileLock:
    """The DuckDB warehouse's own write lock: held here, a run's load waits for it."""
    return FileLock(f"{platform.warehouse().path}.lock")


def partial_download_size(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.glob(f"stage-pid*/{Path(FILE).name}") if p.exists())


def test_killed_mid_download_then_rerun_equals_a_clean_run(platform, source, clean_state, staging, tmp_path):
    source.set_fault(FILE, Fault("trickle", nbytes=1024, delay=0.05))
    run = start_run(platform, tmp_path / "run.log")
    wait_for(lambda: partial_download_size(staging) > 0, [run], "the download under way")
    kill(run)

    # The crash left a partial file in staging (outside the lake) and nothing else.
    assert [p.name.split("-")[1] for p in staging.iterdir()] == [f"pid{run.pid}"]
    assert lake_files(platform) == {}
    assert platform.warehouse().month_row_counts(SPEC) == {}

    source.clear_faults()
    assert materialize(platform, SPEC, MONTH).success
    clean_state.assert_same(State.of(platform, SPEC))
    assert list(staging.iterdir()) == []  # the rerun removed the killed run's folder


def test_killed_between_lake_write_and_warehouse_load_then_rerun_equals_a_clean_run(
    platform, source, clean_state, staging, tmp_path
):
    log = tmp_path / "run.log"
    with warehouse_lock(platform):
        run = start_run(platform, log)
        wait_for(lambda: WAITING_FOR_LOCK in log.read_text(), [run], "the run waiting to load")
        kill(run)

    # Raw and lake files were published whole; the warehouse never got the month.
    assert lake_files(platform) == clean_state.lake
    assert platform.warehouse().month_row_counts(SPEC) == {}

    assert materialize(platform, SPEC, MONTH).success
    clean_state.assert_same(State.of(platform, SPEC))
    assert list(staging.iterdir()) == []


def test_two_runs_of_the_same_month_at_once_leave_one_copy(platform, source, clean_state, staging, tmp_path):
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    with warehouse_lock(platform):
        runs = [start_run(platform, log) for log in logs]
        # Both have published to the lake and wait for the lock to load; on release they race for it.
        wait_for(lambda: all(WAITING_FOR_LOCK in log.read_text() for log in logs), runs, "both runs waiting to load")
    for run, log in zip(runs, logs):
        assert run.wait(120) == 0, log.read_text()[-3000:]
    clean_state.assert_same(State.of(platform, SPEC))
    assert list(staging.iterdir()) == []


def test_publish_removes_temporary_files_of_dead_publishers_only(tmp_path):
    """A run killed mid-publish leaves a dot-named temporary file in the lake folder;
    the next publish there removes it, but not one a live run is still writing."""
    store = LocalLakeStore(tmp_path / "lake")
    folder = store.root / "yellow" / f"month={MONTH}"
    folder.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        try:
            crashed = folder / f".part-0.parquet.pid{int(gone.stdout)}.0123.tmp"
            in_flight = folder / f".part-0.parquet.pid{alive.pid}.4567.tmp"
            for tmp in (crashed, in_flight):
                tmp.write_bytes(b"half a file")
            staged = tmp_path / "part-0.parquet"
            staged.write_bytes(b"a whole file")
            store.publish(staged, f"yellow/month={MONTH}/part-0.parquet")
            assert sorted(p.name for p in folder.iterdir()) == sorted([in_flight.name, "part-0.parquet"])
            assert store.list(f"yellow/month={MONTH}") == [f"yellow/month={MONTH}/part-0.parquet"]
        finally:
            alive.kill()
