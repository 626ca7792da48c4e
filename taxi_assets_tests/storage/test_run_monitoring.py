"""The local instance (taxi_assets/dagster_local.yaml, what `make dev` and `make demo` use)
with a real `dagster-daemon`: a run whose process is killed with SIGKILL, together with the
code server that started it, ends FAILURE instead of staying STARTED for ever."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

import dagster as dg
import psutil
import pytest

from taxi_tools.mirror import Fault

# Starts and kills Dagster's processes: in `make test`, not `make check`.
pytestmark = pytest.mark.deploy

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILE = "yellow/yellow_tripdata_2021-01.csv.gz"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], logs: list[Path], timeout: float = 240) -> T:
    """Poll until `probe` returns something; the limit only keeps a broken test from hanging."""
    give_up = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > give_up:
            tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
            raise AssertionError(f"never saw {what}\n{tails}")
        time.sleep(0.5)
    return value


@pytest.fixture
def local_instance(platform, source, tmp_path, monkeypatch) -> Iterator[tuple[dict, Path]]:
    """DAGSTER_HOME with the local instance's dagster.yaml, and the product's settings."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the storage's base_dir reads it
    shutil.copy(PROJECT / "taxi_assets" / "dagster_local.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TAXI_SOURCE_URL": platform.source_url,
        "TAXI_ZONES_URL": platform.zones_url,
        "TAXI_LAKE_URI": platform.lake_uri,
        "TAXI_WAREHOUSE_URI": platform.warehouse_uri,
        "PYTHONUNBUFFERED": "1",
    }
    yield env, home


@contextmanager
def daemon(env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the project's workspace, in a process group of its own (its
    code server and the runs it launches are in it); killed with that group at the end."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(30)


def run_process(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's process once it is downloading (Dagster's own engine event)."""
    messages = [e.message or "" for e in instance.all_logs(run_id)]
    if not any('Started execution of step "raw__yellow_raw"' in m for m in messages):
        return None
    pids = [int(m.group(1)) for text in messages if (m := re.search(r"Started process for run \(pid: (\d+)\)", text))]
    return pids[0] if pids else None


def kill_process_and_parent(pid: int) -> None:
    """SIGKILL to the run's process and its parent, the code server that launched it."""
    parent = psutil.Process(pid).parent()
    for process in (psutil.Process(pid), parent):
        process.kill()
    psutil.wait_procs([psutil.Process(pid)] if psutil.pid_exists(pid) else [], timeout=10)


@pytest.mark.parametrize("how", ["run-and-code-server", "everything-then-a-new-daemon"])
def test_a_run_killed_with_sigkill_ends_failed_on_the_local_instance(local_instance, source, tmp_path, how):
    env, home = local_instance
    source.set_fault(FILE, Fault("trickle", nbytes=64, delay=0.5))  # the run stays in its download
    daemon_log = tmp_path / "daemon.log"
    # The storage is created here, before two processes would race to create it.
    with dg.DagsterInstance.from_config(str(home)) as instance, daemon(env, daemon_log) as first:
        launched = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "yellow_month_job",
             "--tags", json.dumps({"dagster/partition": "2021-01-01"})],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert launched.returncode == 0, launched.stderr[-3000:]
        (run,) = instance.get_runs()
        pid = wait_for("the run downloading", lambda: run_process(instance, run.run_id), [daemon_log])
        kill_process_and_parent(pid)
        if how == "everything-then-a-new-daemon":  # `dagster dev` killed, then started again
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)

        def finished() -> dg.DagsterRun | None:
            current = instance.get_run_by_id(run.run_id)
            return current if current and current.is_finished else None

        with daemon(env, daemon_log) if how == "everything-then-a-new-daemon" else nullcontext():
            ended = wait_for("the killed run to end", finished, [daemon_log])
        assert ended.status == dg.DagsterRunStatus.FAILURE
        messages = [e.message or "" for e in instance.all_logs(run.run_id)]
        assert any(f"pid {pid}" in m for m in messages[-3:]), messages[-3:]
