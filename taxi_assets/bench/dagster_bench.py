"""Dagster's own cost: one partition through `dagster asset materialize` vs the conversion
alone, and a backfill of a year of every dataset through `dagster dev` (webserver,
daemon, run queue), as a user would launch it from the UI.

Everything runs on the local defaults (lake folder, DuckDB file) in a scratch folder,
against the project's mirror on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import requests

# The definitions' beta-API notices are not what this bench reports.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from taxi_assets.bench.convert_bench import month_file  # noqa: E402
from taxi_assets.datasets import DATASETS  # noqa: E402
from taxi_assets.defs.assets.keys import lake_key, raw_key, warehouse_key  # noqa: E402
from taxi_assets.mirror import MirrorServer, generate  # noqa: E402
from taxi_assets.mirror.generator import relpath  # noqa: E402
from taxi_assets.months import month_range, partition_key  # noqa: E402

BACKFILL_MONTHS = "2021-01..2021-12"
DAGSTER = Path(sys.executable).with_name("dagster")


def instance_yaml(max_concurrent_runs: int) -> str:
    """The instance settings `make dev` writes to DAGSTER_HOME (see the Makefile)."""
    return (
        "telemetry:\n  enabled: false\n"
        f"concurrency:\n  runs:\n    max_concurrent_runs: {max_concurrent_runs}\n"
    )


def platform_env(work: Path, source_url: str, max_concurrent_runs: int = 2) -> dict[str, str]:
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(max_concurrent_runs))
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TAXI_SOURCE_URL": source_url,
        "TAXI_LAKE_URI": str(work / "lake"),
        "TAXI_WAREHOUSE_URI": f"duckdb:///{work / 'warehouse.duckdb'}",
        "TAXI_STAGING_DIR": str(work / "staging"),
    }


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _materialize_cmd(key: str, partition: str) -> list[str]:
    return [str(DAGSTER), "asset", "materialize", "-m", "taxi_assets.definitions", "--select", key, "--partition", partition]


def _lake_seconds(env: dict[str, str]) -> float:
    """The conversion's own time inside the last lake/yellow_lake run (the asset's `seconds` metadata)."""
    code = (
        "import dagster as dg\n"
        "ev = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(['lake', 'yellow_lake']))\n"
        "print(ev.asset_materialization.metadata['seconds'].value)\n"
    )
    return float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)


def partition_overhead(root: Path, rows: int, month: str, repeats: int) -> list[str]:
    """Process wall time of one lake/yellow_lake partition: the convert command vs `dagster asset materialize`."""
    spec = DATASETS["yellow"]
    root = root.resolve()  # DAGSTER_HOME must be absolute
    source = month_file(root, rows, month)
    mirror_root = source.parents[1]
    pk = partition_key(month)
    with tempfile.TemporaryDirectory(dir=root, prefix="dagster-") as tmp, MirrorServer(mirror_root) as server:
        work = Path(tmp)
        env = platform_env(work, server.url_template)
        _timed(_materialize_cmd("/".join(raw_key(spec).path), pk), env)
        raw_file = work / "lake" / "raw" / spec.name / f"month={month}" / source.name
        variants = {
            "python -m taxi_assets.convert": [
                sys.executable, "-m", "taxi_assets.convert", "--dataset", spec.name, "--month", month,
                str(raw_file), str(work / "out.parquet"),
            ],
            "dagster asset materialize": _materialize_cmd("/".join(lake_key(spec).path), pk),
        }
        walls: dict[str, list[float]] = {name: [] for name in variants}
        inner: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for rep in range(repeats):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                wall, out = _timed(variants[name], env)
                walls[name].append(wall)
                if name.startswith("python"):
                    inner[name].append(json.loads(out.strip().splitlines()[-1])["seconds"])
                else:
                    inner[name].append(_lake_seconds(env))
    base = statistics.median(walls[names[0]])
    lines = [f"one partition, lake/yellow_lake {month} ({rows:,} rows), median of {repeats} process wall times:"]
    for name in names:
        wall, conv = statistics.median(walls[name]), statistics.median(inner[name])
        extra = "" if name == names[0] else f", Dagster overhead {wall - base:+.1f} s"
        lines.append(f"  {name:<52} {wall:6.1f} s (conversion inside {conv:.1f} s{extra})")
    return lines


# ------------------------------------------------------------------ backfill

LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } ... on PythonError { message } }
}"""
RUNS = """query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status startTime endTime } }
  }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict) -> dict:
    response = requests.post(url, json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """How many of the (start, end) intervals ran at the same moment, at most."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def mirror_year(root: Path, rows: int, months: list[str]) -> Path:
    folder = root / f"mirror-{rows}"
    missing = [m for m in months for d in DATASETS if not (folder / relpath(d, m)).exists()]
    if missing:
        print(f"generating {len(DATASETS)} datasets x {len(months)} months of {rows:,} rows under {folder} ...", flush=True)
        generate(folder, list(DATASETS), months, rows=rows)
    return folder


def backfill(root: Path, rows: int, max_concurrent_runs: int = 2) -> list[str]:
    """Launch a year of every dataset on a fresh `dagster dev`, twice: as one backfill of
    all assets, and as one backfill per dataset launched together; time each."""
    root = root.resolve()
    months = month_range(BACKFILL_MONTHS)
    partitions = [partition_key(m) for m in months]
    per_dataset = [[raw_key(spec), lake_key(spec), warehouse_key(spec)] for spec in DATASETS.values()]
    ways = {
        "one backfill of all assets": [[k for keys in per_dataset for k in keys]],
        "one backfill per dataset": per_dataset,
    }
    lines = [
        f"backfill: {len(DATASETS)} datasets x {len(months)} months ({rows:,} rows each), raw+lake+warehouse, "
        f"dagster dev, run queue max_concurrent_runs={max_concurrent_runs}:"
    ]
    mirror_root = mirror_year(root, rows, months)
    with MirrorServer(mirror_root) as server:
        for label, groups in ways.items():
            with tempfile.TemporaryDirectory(dir=root, prefix="backfill-") as tmp:
                env = platform_env(Path(tmp), server.url_template, max_concurrent_runs)
                port = _free_port()
                dev = subprocess.Popen(
                    [str(DAGSTER), "dev", "-m", "taxi_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                    env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
                try:
                    url = f"http://127.0.0.1:{port}/graphql"
                    _wait_ready(url, dev)
                    lines.append(_timed_backfills(url, label, groups, partitions, env, rows * len(months)))
                finally:
                    os.killpg(dev.pid, signal.SIGTERM)  # dagster dev and the daemon/webserver it started
                    try:
                        dev.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        os.killpg(dev.pid, signal.SIGKILL)
    return lines


def _wait_ready(url: str, dev: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dev.poll() is not None:
            raise RuntimeError("dagster dev exited before it was ready")
        try:
            if _graphql(url, "{ version }", {}).get("version"):
                return
        except (requests.RequestException, RuntimeError):
            pass
        time.sleep(1)
    raise RuntimeError(f"dagster dev not ready after {timeout:.0f} s")


def _timed_backfills(url, label, groups, partitions, env, expected_rows) -> str:
    started = time.time()
    ids = []
    for keys in groups:
        params = {"partitionNames": partitions, "assetSelection": [{"path": k.path} for k in keys]}
        launched = _graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        ids.append(launched["backfillId"])
    runs = []
    for backfill_id in ids:
        while (status := _graphql(url, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]) in (
            "REQUESTED", "CANCELING", "FAILING"
        ):
            time.sleep(1)
        these = _graphql(url, RUNS, {"id": backfill_id})["runsOrError"]["results"]
        if status != "COMPLETED_SUCCESS" or any(r["status"] != "SUCCESS" for r in these):
            raise RuntimeError(f"backfill {backfill_id} ended {status}: {[(r['runId'], r['status']) for r in these]}")
        runs += these
    finished = max(r["endTime"] for r in runs)
    intervals = [(r["startTime"], r["endTime"]) for r in runs]
    _check_warehouse(env, expected_rows)
    return (
        f"  {label:<28} wall {finished - started:6.1f} s, {len(runs)} runs, at most {max_overlap(intervals)} at once, "
        f"run time {sum(e - s for s, e in intervals):.0f} s in all"
    )


def _check_warehouse(env: dict[str, str], expected: int) -> None:
    import duckdb

    path = env["TAXI_WAREHOUSE_URI"].removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        for spec in DATASETS.values():
            (count,) = con.execute(f"SELECT count(*) FROM {spec.table}").fetchone()
            if count != expected:
                raise RuntimeError(f"{spec.table} has {count:,} rows after the backfill, expected {expected:,}")


def run_dagster_bench(root: Path, rows: int, month: str, backfill_rows: int, repeats: int = 3) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for line in partition_overhead(root, rows, month, repeats):
        print(line, flush=True)
    for line in backfill(root, backfill_rows):
        print(line, flush=True)
