"""`make demo`: a generated TLC-shaped mirror on 127.0.0.1 as the source, and `dagster dev`.

    python -m taxi_tools.demo --root data/mirror --months 2021-01..2021-03 --port 8765

Every feed, each month in its era's shape, as CSV and as Parquet: the source is the
two URL templates in turn (the first that has the month wins), as in production.

Ctrl-C, a termination signal (SIGTERM, SIGHUP) or the end of the process that started
it (e.g. `make` killed) stops everything it started: `dagster dev` is asked to stop
the way Ctrl-C asks it (SIGINT, its clean path), then whatever is left of its process
group (webserver, daemon, code server, run workers) is terminated, then the mirror.
`dagster dev` alone exits on SIGTERM without stopping its webserver and daemon, which
is why it runs in a process group of its own here.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from taxi_assets.defs.sensors.common import START_MONTH_ENV, start_months_value
from taxi_assets.spec.datasets import DATASETS
from taxi_tools.mirror import MirrorServer, generate
from taxi_tools.mirror.__main__ import parse_months

GRACE_S = 30.0
DAGSTER = Path(sys.executable).parent / "dagster"


def stop_group(process: subprocess.Popen, grace: float = GRACE_S) -> None:
    """SIGINT to `process` (dagster dev's clean shutdown), then SIGTERM and SIGKILL to its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)  # the group it leads (start_new_session)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return
    # Still there: a last SIGKILL for stragglers that ignored SIGTERM.
    os.killpg(process.pid, signal.SIGKILL)


def sensor_start_months(datasets: list[str], months: list[str]) -> str:
    """TAXI_SENSOR_START_MONTH for the demo: each feed's earliest month the mirror serves (a
    month before a feed's first month is not generated), so that each feed's new-month sensor
    finds its first month on its first tick."""
    starts = {}
    for name in datasets:
        served = [m for m in months if m >= DATASETS[name].first_month]
        if served:
            starts[name] = min(served)
    return start_months_value(starts)


def run(
    root: Path, months: list[str], port: int, datasets: list[str], formats: tuple[str, ...], dev_args: list[str]
) -> int:
    generate(root, datasets, months, formats=formats)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    with MirrorServer(root, port=port) as mirror:
        env = {
            **os.environ,
            "TAXI_SOURCE_URL": " ".join(
                mirror.url_template.replace(".csv.gz", ".csv.gz" if f == "csv" else f".{f}") for f in formats
            ),
            "TAXI_ZONES_URL": mirror.zones_url,
            "TAXI_ZONE_SHAPES_URL": mirror.zone_shapes_url,
            START_MONTH_ENV: sensor_start_months(datasets, months),
        }
        print(f"demo: mirror of {', '.join(datasets)} {', '.join(months)} on {mirror.base_url}", flush=True)
        dev = subprocess.Popen([str(DAGSTER), "dev", *dev_args], env=env, start_new_session=True)
        try:
            while not stop.wait(1.0):
                if dev.poll() is not None or os.getppid() != parent:
                    break
        finally:
            print("demo: stopping dagster dev (webserver, daemon, code server, runs) and the mirror", flush=True)
            stop_group(dev)
    print("demo: stopped", flush=True)
    return dev.returncode or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxi_tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="where the mirror's files are generated")
    parser.add_argument("--months", type=parse_months, required=True, help="e.g. 2021-01..2021-03")
    parser.add_argument("--port", type=int, default=8765, help="the mirror's port (0: any free port)")
    parser.add_argument("--datasets", default="yellow,green,fhv,fhvhv")
    parser.add_argument("--formats", default="csv,parquet", help="csv, parquet or both (the URL templates' order)")
    parser.add_argument("dev_args", nargs=argparse.REMAINDER, help="after --: arguments of `dagster dev`")
    args = parser.parse_args(argv)
    dev_args = args.dev_args[1:] if args.dev_args[:1] == ["--"] else args.dev_args
    return run(
        args.root, args.months, args.port, args.datasets.split(","), tuple(args.formats.split(",")),
        dev_args or ["-w", "workspace.yaml"],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
