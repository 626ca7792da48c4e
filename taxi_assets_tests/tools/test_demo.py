"""`make demo` stops everything it started: on Ctrl-C (SIGINT to its process group) and
when `make` itself is terminated (SIGTERM to make alone)."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from taxi_assets_tests.deploy.services import free_port, wait_for

# Runs `make demo` (mirror + dagster dev as processes): in `make test`, not `make check`.
pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc), zombies left out."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def at_least(n: int, pids: set[int]) -> set[int] | None:
    return pids if len(pids) >= n else None


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm_to_make"])
def test_make_demo_stops_everything_it_started(tmp_path, how):
    mirror_port, web_port = free_port(), free_port()
    make = subprocess.Popen(
        [
            "make", "demo", f"DAGSTER_HOME={tmp_path / 'home'}", f"MIRROR_ROOT={tmp_path / 'mirror'}",
            f"MIRROR_PORT={mirror_port}", "DEMO_MONTHS=2021-01..2021-01",
            f"DEMO_DEV_ARGS=-w workspace.yaml -h 127.0.0.1 -p {web_port}",
        ],
        cwd=REPO,
        stdout=open(tmp_path / "demo.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )  # fmt: skip
    started: set[int] = set()
    try:
        log = lambda: (tmp_path / "demo.log").read_text(errors="replace")[-3000:]  # noqa: E731
        web = f"http://127.0.0.1:{web_port}/server_info"
        wait_for("the demo's webserver", lambda: make.poll() is None and answers(web), 240, on_timeout=log)
        assert answers(f"http://127.0.0.1:{mirror_port}/misc/taxi_zone_lookup.csv")
        # The daemon is up too (dagster dev starts it with the webserver).
        started = wait_for(
            "dagster dev's webserver and daemon", lambda: at_least(5, descendants(make.pid)), 60, on_timeout=log
        )
        if how == "ctrl_c":
            os.killpg(make.pid, signal.SIGINT)
        else:
            make.send_signal(signal.SIGTERM)
        running = lambda: [p for p in started if alive(p)]  # noqa: E731
        wait_for(
            "everything the demo started to stop", lambda: not running(), 90,
            on_timeout=lambda: f"still running: {running()}\n{log()}",
        )  # fmt: skip
        assert not answers(f"http://127.0.0.1:{mirror_port}/misc/taxi_zone_lookup.csv")
        assert not answers(web)
    finally:
        for pid in [make.pid, *started, *descendants(make.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
