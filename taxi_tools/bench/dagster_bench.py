"""Dagster's own cost: the definitions' import time; one partition through `dagster asset
materialize` vs the conversion alone; and the whole record's backfill launched through
`dagster dev` (webserver, daemon, run queue) over GraphQL as the UI does, against the
same work in plain Python (`history.py`), with where Dagster's extra time goes; then
the UI's load times with that history materialized (`ui_bench.py`).

Everything runs on the local defaults (sqlite instance, lake folder, DuckDB file) in a
scratch folder, against the project's mirror on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import requests
import yaml

# The definitions' beta-API notices are not what this bench reports.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

import taxi_assets  # noqa: E402
from taxi_assets.defs.assets.keys import lake_key, raw_key, shapes_key, warehouse_key  # noqa: E402
from taxi_assets.spec.datasets import DATASETS  # noqa: E402
from taxi_assets.spec.months import partition_key  # noqa: E402
from taxi_tools.bench.convert_bench import month_file  # noqa: E402
from taxi_tools.bench.variants import ProcSampler  # noqa: E402
from taxi_tools.mirror import MirrorServer  # noqa: E402

DAGSTER = Path(sys.executable).with_name("dagster")


# The run queue of the local instance (`make dev`): two runs at once.
DEV_MAX_CONCURRENT_RUNS = 2
LOCAL_INSTANCE = Path(taxi_assets.__file__).parent / "dagster_local.yaml"


def instance_yaml(max_concurrent_runs: int = DEV_MAX_CONCURRENT_RUNS) -> str:
    """The instance `make dev` copies to DAGSTER_HOME (taxi_assets/dagster_local.yaml), with
    its run queue's size set: the bench measures the instance users run."""
    config = yaml.safe_load(LOCAL_INSTANCE.read_text())
    config["run_coordinator"]["config"]["max_concurrent_runs"] = max_concurrent_runs
    return yaml.safe_dump(config, sort_keys=False)


def local_instance(home: Path) -> dg.DagsterInstance:
    """The instance of `home` (written by instance_yaml: its storage is under $DAGSTER_HOME)."""
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.from_config(str(home))


def platform_env(work: Path, source_url: str, max_concurrent_runs: int = DEV_MAX_CONCURRENT_RUNS) -> dict[str, str]:
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
    """`dagster asset materialize` of `key` (comma-separated keys), at `partition` unless empty."""
    return [
        str(DAGSTER),
        "asset",
        "materialize",
        "-m",
        "taxi_assets.definitions",
        "--select",
        key,
        *(["--partition", partition] if partition else []),
    ]


def _lake_seconds(env: dict[str, str]) -> float:
    """The conversion's own time inside the last lake/yellow_lake run (the asset's `seconds` metadata)."""
    code = (
        "import dagster as dg\n"
        "ev = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(['lake', 'yellow_lake']))\n"
        "print(ev.asset_materialization.metadata['seconds'].value)\n"
    )
    return float(
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    )


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
            "python -m taxi_assets.transform.convert": [
                sys.executable,
                "-m",
                "taxi_assets.transform.convert",
                "--dataset",
                spec.name,
                "--month",
                month,
                str(raw_file),
                str(work / "out.parquet"),
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


# ------------------------------------------------------------------ definitions load

IMPORT_DEFS = (
    "import time; t, c = time.perf_counter(), time.process_time(); import taxi_assets.definitions; "
    "print(time.perf_counter() - t, time.process_time() - c)"
)
# The packages whose import time the definitions' load is broken down by (the heavy ones
# are kept out of it: taxi_assets_tests/defs/test_definitions.py).
HEAVY = (
    "dagster",
    "dagster_graphql",
    "pyarrow",
    "duckdb",
    "pandas",
    "numpy",
    "google",
    "google.cloud.bigquery",
    "dagster_gcp",
    "dbt",
    "dagster_dbt",
    "matplotlib",
    "pyproj",
    "shapely",
    "sqlglot",
    "isal",
    "requests",
    "grpc",
)


@dataclass
class ImportCost:
    wall_s: float  # medians of fresh interpreters
    cpu_s: float
    heavy: dict[str, float]  # package: cumulative s under -X importtime where first imported
    top: list[tuple[str, float]]  # what the definitions import (directly or from defs/), costliest first
    own_s: float  # taxi_assets.definitions' own time: building the definitions from defs/


def parse_importtime(trace: str) -> tuple[dict[str, float], list[tuple[str, float]], float]:
    heavy: dict[str, float] = {}
    top: list[tuple[str, float]] = []
    own = 0.0
    for line in trace.splitlines():
        # "import time: self [us] | cumulative | imported package", nested names indented by two:
        # a package's cumulative time where it is first imported, whoever imports it.
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name, depth = parts[2].strip(), (len(parts[2]) - len(parts[2].lstrip()) - 1) // 2
        if name in HEAVY:
            heavy.setdefault(name, int(parts[1]) / 1e6)
        if depth == 1:
            top.append((name, int(parts[1]) / 1e6))
        if name == "taxi_assets.definitions":
            own = int(parts[0].split(":")[1]) / 1e6
    return heavy, sorted(top, key=lambda kv: -kv[1]), own


def definitions_import(env: dict[str, str], repeats: int = 5) -> ImportCost:
    """Median wall and CPU seconds to import taxi_assets.definitions in a fresh interpreter
    (what every run worker, code server and sensor process pays), and where the time goes.
    CPU seconds move less than wall time with other processes' load."""
    seconds, cpu = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", IMPORT_DEFS], env=env, capture_output=True, text=True, check=True)
        wall, used = out.stdout.strip().splitlines()[-1].split()
        seconds.append(float(wall))
        cpu.append(float(used))
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import taxi_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    heavy, top, own = parse_importtime(trace)
    return ImportCost(statistics.median(seconds), statistics.median(cpu), heavy, top, own)


def definitions_load(root: Path, repeats: int = 5) -> ImportCost:
    """`bench defs`: the definitions' import on the local defaults, printed."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.resolve(), prefix="defs-") as tmp:
        env = platform_env(Path(tmp), "http://127.0.0.1:9/{dataset}/{dataset}_tripdata_{month}.csv.gz")
        cost = definitions_import(env, repeats=repeats)
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"definitions import (python -c 'import taxi_assets.definitions', median of {repeats}): "
        f"{cost.wall_s:.2f} s wall, {cost.cpu_s:.2f} s CPU (load average {load})",
        flush=True,
    )
    print("  heavy packages (s under -X importtime, each with what it imports first): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(cost.heavy.items(), key=lambda kv: -kv[1]) if v >= 0.02
    ), flush=True)  # fmt: skip
    print("  what the definitions import, costliest: " + ", ".join(
        f"{k} {v:.2f}" for k, v in cost.top[:6]
    ) + f"; building them from defs/ {cost.own_s:.2f}", flush=True)  # fmt: skip
    return cost


# ------------------------------------------------------------------ whole-history backfill

LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}"""
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
STATUS = """query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } ... on PythonError { message } }
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


def idle_slot_seconds(intervals: list[tuple[float, float]], start: float, end: float, slots: int) -> float:
    """Slot-seconds between start and end when fewer than `slots` runs were running."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals] + [(end, 0)])
    idle, running, t = 0.0, 0, start
    for when, step in edges:
        when = min(max(when, start), end)
        idle += max(slots - running, 0) * (when - t)
        running, t = running + step, when
    return idle


class SessionCpu(ProcSampler):
    """CPU seconds (user + system) of every process of a session (`dagster dev`, its webserver,
    daemon, code server and run workers), sampled from /proc every half second: a process's
    last half second before it exits is missed, so the figure is a slight underestimate."""

    def __init__(self, session: int):
        super().__init__()
        self.session = session
        self.tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = self._stat_fields(str(stat))
            # fields[0] is the state (field 3 of proc(5)): session is field 6, utime/stime 14/15, starttime 22.
            if fields is not None and int(fields[3]) == self.session:
                key = (int(stat.parent.name), int(fields[19]))
                self._keep(key, (int(fields[11]) + int(fields[12])) / self.tick)

    @property
    def seconds(self) -> float:
        return sum(self.seen.values()) - sum(self.before.values())


@contextmanager
def dagster_dev(env: dict[str, str], cwd: Path):
    """`dagster dev` (webserver, daemon, code server) on a free port; yields the base URL."""
    port = _free_port()
    log = open(cwd / "dagster-dev.log", "wb")
    dev = subprocess.Popen(
        [str(DAGSTER), "dev", "-m", "taxi_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/graphql", dev)
        yield url, dev.pid
    finally:
        os.killpg(dev.pid, signal.SIGTERM)  # dagster dev and the daemon/webserver it started
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()


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


def trip_keys(datasets: Iterable[str] | None = None) -> list[tuple[str, list[dg.AssetKey]]]:
    return [
        (name, [raw_key(spec), lake_key(spec), warehouse_key(spec)])
        for name, spec in DATASETS.items()
        if datasets is None or name in datasets
    ]


def launch_history_backfill(graphql: str, months: dict[str, list[str]]) -> str:
    """One backfill of every layer of every trip dataset over its months, as the UI launches it."""
    selectors = [
        {"assetKey": {"path": key.path},
         "partitions": {"range": {"start": partition_key(months[name][0]), "end": partition_key(months[name][-1])}}}
        for name, keys in trip_keys(months) for key in keys
    ]  # fmt: skip
    launched = _graphql(graphql, LAUNCH, {"params": {"partitionsByAssets": selectors}})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {launched}")
    return launched["backfillId"]


def wait_backfill(graphql: str, backfill_id: str, timeout: float = 7200) -> None:
    deadline = time.monotonic() + timeout
    while (status := _graphql(graphql, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]) in (
        "REQUESTED",
        "CANCELING",
        "FAILING",
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
        time.sleep(1)
    if status != "COMPLETED_SUCCESS":
        raise RuntimeError(f"backfill {backfill_id} ended {status}")


@dataclass
class RunCost:
    """Where one run's time went, from its event log."""

    created: float
    enqueued: float  # after the run's planned events are written (one per asset and month on sqlite)
    starting: float  # the run coordinator launched the worker process
    started: float  # RUN_START: the worker has loaded the definitions
    ended: float
    steps: float = 0.0  # sum of step durations
    step_seconds: dict[str, float] = field(default_factory=dict)  # by step key
    events: int = 0
    what: str = ""  # datasets and partition range
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def startup(self) -> float:
        return self.started - self.starting


def run_costs(home: Path, backfill_id: str) -> list[RunCost]:
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.dagster_run import RunsFilter

    instance = local_instance(home)
    dataset_of = {key: name for name, keys in trip_keys() for key in keys}
    costs = []
    for record in instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id})):
        if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"run {record.dagster_run.run_id} ended {record.dagster_run.status}")
        logs = instance.all_logs(record.dagster_run.run_id)
        first = {}
        step_started: dict[str, float] = {}
        step_seconds: dict[str, float] = {}
        by_type: dict[str, int] = {}
        for entry in logs:
            kind = entry.dagster_event.event_type if entry.dagster_event else None
            name = kind.value if kind else "LOG_MESSAGE"
            by_type[name] = by_type.get(name, 0) + 1
            first.setdefault(kind, entry.timestamp)
            if kind == DagsterEventType.STEP_START:
                step_started[entry.step_key] = entry.timestamp
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                took = entry.timestamp - step_started.pop(entry.step_key, entry.timestamp)
                step_seconds[entry.step_key] = step_seconds.get(entry.step_key, 0.0) + took
        costs.append(
            RunCost(
                created=record.create_timestamp.timestamp(),
                enqueued=first.get(DagsterEventType.RUN_ENQUEUED, record.create_timestamp.timestamp()),
                starting=first.get(DagsterEventType.RUN_STARTING, record.start_time),
                started=first.get(DagsterEventType.RUN_START, record.start_time),
                ended=record.end_time,
                steps=sum(step_seconds.values()),
                step_seconds=step_seconds,
                events=len(logs),
                by_type=by_type,
                what="{} {}..{}".format(
                    "+".join(
                        sorted(
                            {dataset_of.get(k, k.to_user_string()) for k in record.dagster_run.asset_selection or ()}
                        )
                    ),
                    record.dagster_run.tags.get("dagster/asset_partition_range_start", "?")[:7],
                    record.dagster_run.tags.get("dagster/asset_partition_range_end", "?")[:7],
                ),
            )
        )
    return costs


def event_write_seconds(work: Path, n: int = 300) -> tuple[float, float]:
    """Wall and CPU seconds one event log write takes on a fresh local (sqlite) instance."""
    from dagster._core.events.log import EventLogEntry

    home = work / "event-bench"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(2))
    instance = local_instance(home)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        instance.store_event(
            EventLogEntry(
                error_info=None, level=20, user_message=f"event {i}", run_id="bench-events",
                timestamp=time.time(), step_key="lake", job_name="bench", dagster_event=None,
            )
        )  # fmt: skip
    return (time.perf_counter() - started) / n, (time.process_time() - cpu) / n


def _check_warehouse(env: dict[str, str], expected: dict[str, int]) -> None:
    import duckdb

    path = env["TAXI_WAREHOUSE_URI"].removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        for name, rows in expected.items():
            (count,) = con.execute(f"SELECT count(*) FROM {DATASETS[name].table}").fetchone()
            if count != rows:
                raise RuntimeError(f"{DATASETS[name].table} has {count:,} rows after the backfill, expected {rows:,}")


def whole_history(
    root: Path,
    rows: int,
    last: int,
    ui: bool,
    import_s: float,
    max_runs: int | None = None,
    datasets: tuple[str, ...] | None = None,
    title: str = "whole-history backfill",
    key: str = "backfill_dagster/python",
) -> tuple[list[str], dict[str, str]]:
    """The whole record's backfill (or the last `last` months of `datasets`) through Dagster vs
    the plain-Python baseline, then the UI; the ratio goes on the summary line under `key`."""
    from taxi_tools.bench.history import WORKERS, baseline, history_mirror, history_months, source_urls

    root = root.resolve()
    months = history_months(last, datasets)
    count = sum(len(m) for m in months.values())
    expected = {name: rows * len(m) for name, m in months.items()}
    mirror_root = history_mirror(root, rows, months)
    summary: dict[str, str] = {}
    lines = [
        f"{title}: {', '.join(f'{n} {len(m)}' for n, m in months.items())} months "
        f"({count} partitions x raw+lake+checks+warehouse, {rows:,} rows each), local defaults:"
    ]
    with MirrorServer(mirror_root) as server:
        with tempfile.TemporaryDirectory(dir=root, prefix="baseline-") as tmp:
            print(f"baseline: plain Python, {WORKERS} processes, {count} months ...", flush=True)
            base_wall, base_cpu, base_rows = baseline(Path(tmp), source_urls(server.url_template), months, mirror_root)
        if base_rows != sum(expected.values()):
            raise RuntimeError(f"the baseline loaded {base_rows:,} rows, expected {sum(expected.values()):,}")
        lines.append(
            f"  {f'plain Python, {WORKERS} worker processes, no Dagster, wall':<64} {base_wall:7.1f} s "
            f"({base_cpu:.1f} CPU-s)"
        )
        with tempfile.TemporaryDirectory(dir=root, prefix="backfill-") as tmp:
            work = Path(tmp)
            slots = max_runs or DEV_MAX_CONCURRENT_RUNS
            env = platform_env(work, source_urls(server.url_template), max_concurrent_runs=slots)
            env["TAXI_ZONE_SHAPES_URL"] = server.zone_shapes_url
            # The zone shapes, which the lake step of months with coordinates reads (set up before the clock).
            _timed(_materialize_cmd(",".join("/".join(shapes_key(layer).path) for layer in ("raw", "lake")), ""), env)
            with dagster_dev(env, work) as (url, session):
                print(f"backfill through {url}/graphql ...", flush=True)
                with SessionCpu(session) as dagster_cpu:
                    launched = time.time()
                    backfill_id = launch_history_backfill(f"{url}/graphql", months)
                    try:
                        wait_backfill(f"{url}/graphql", backfill_id)
                    except RuntimeError as exc:  # keep what tells why (the scratch folder goes)
                        kept = root / "last-failed-backfill.log"
                        shutil.copyfile(work / "dagster-dev.log", kept)
                        raise RuntimeError(f"{exc}; the log of dagster dev: {kept}") from None
                costs = run_costs(work / "dagster_home", backfill_id)
                finished = max(c.ended for c in costs)
                _check_warehouse(env, expected)
                if ui:
                    from taxi_tools.bench.ui_bench import ui_timings

                    location = _graphql(f"{url}/graphql", LOCATIONS, {})["workspaceOrError"]["locationEntries"][0][
                        "name"
                    ]
                    timings = ui_timings(url, work / "chromium", location, trip_keys(months), months)
            per_event, per_event_cpu = event_write_seconds(work)
    wall = finished - launched
    intervals = [(c.starting, c.ended) for c in costs]
    events = sum(c.events for c in costs)
    startup = sum(c.startup for c in costs)
    first = min(c.created for c in costs)
    by_type: dict[str, int] = {}
    for c in costs:
        for k, v in c.by_type.items():
            by_type[k] = by_type.get(k, 0) + v
    top = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])[:5])

    def row(label: str, value: str) -> str:
        return f"    {label:<62} {value}"

    lines += [
        f"  {'Dagster: one backfill over GraphQL (dagster dev), wall':<64} {wall:7.1f} s = {wall / base_wall:.2f}x the baseline",
        f"    {'CPU of dagster dev and its runs, launch to the backfill end':<62} {dagster_cpu.seconds:7.1f} CPU-s "
        f"= {dagster_cpu.seconds / base_cpu:.2f}x the baseline's",
        f"    {len(costs)} runs, at most {max_overlap(intervals)} at once (queue of {slots}); where the time goes:",
        row("launch -> first run created (backfill daemon, 30 s loop)", f"{first - launched:7.1f} s"),
        row("run created -> queued (its planned events written), sum", f"{sum(c.enqueued - c.created for c in costs):7.1f} s"),
        row("queued -> run worker launched (waiting for a slot), sum", f"{sum(c.starting - c.enqueued for c in costs):7.1f} s"),
        row(f"run start-up (process, definitions load {import_s:.2f} s), sum",
            f"{startup:7.1f} s ({startup / len(costs):.1f} s a run)"),
        row("steps (the work, checks, I/O manager, their events), sum", f"{sum(c.steps for c in costs):7.1f} s"),
        row(f"event writes: {events:,} x {per_event * 1000:.1f} ms ({per_event_cpu * 1000:.1f} ms CPU; sqlite, measured)",
            f"{events * per_event:7.1f} s ({top})"),
        row("idle run slots between launch and the last run's end", f"{idle_slot_seconds(intervals, launched, finished, slots):7.1f} slot-s"),
    ]  # fmt: skip
    for c in sorted(costs, key=lambda c: c.starting):
        lines.append(
            f"      run {c.what:<28} created +{c.created - launched:5.1f} s, queued +{c.enqueued - launched:5.1f} s, "
            f"started +{c.starting - launched:5.1f} s, "
            f"ended +{c.ended - launched:5.1f} s, {c.events:,} events"
        )
        # The steps by layer ("lake__yellow_lake" -> "lake"), to see which one a long run spends on.
        lines.append(
            "        steps: "
            + ", ".join(
                f"{k.split('__')[0]} {v:.1f} s" for k, v in sorted(c.step_seconds.items(), key=lambda kv: -kv[1])
            )
        )
    summary[key] = f"{wall / base_wall:.2f}"
    if ui:
        lines.append(
            "  UI with the history materialized (headless Chromium, s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        )
        summary["ui_max_s"] = f"{max(timings.values()):.2f}"
    return lines, summary


REALISTIC_TARGET = 1.2  # the realistic backfill through Dagster / the plain-Python baseline


def realistic_backfill(root: Path, rows: int, months: int, import_s: float) -> tuple[list[str], dict[str, str]]:
    """`months` yellow months of `rows` rows, two runs at a time, against the two-process baseline:
    at this size the conversions dominate, and what is left is what Dagster adds per month."""
    lines, summary = whole_history(
        root,
        rows,
        months,
        ui=False,
        import_s=import_s,
        max_runs=2,
        datasets=("yellow",),
        title="realistic backfill",
        key="realistic_backfill_dagster/python",
    )
    ratio = float(summary["realistic_backfill_dagster/python"])
    lines.append(
        f"target realistic backfill: dagster/python {ratio:.2f} (target <= {REALISTIC_TARGET}): "
        + ("met" if ratio <= REALISTIC_TARGET else "NOT met")
    )
    return lines, summary


def run_dagster_bench(
    root: Path,
    rows: int,
    month: str,
    backfill_rows: int,
    backfill_months: int = 0,
    repeats: int = 3,
    ui: bool = True,
    max_runs: int | None = None,
) -> dict[str, str]:
    cost = definitions_load(root, repeats=max(repeats, 3))
    import_s, import_cpu = cost.wall_s, cost.cpu_s
    if rows:  # 0: skip the one-partition comparison
        for line in partition_overhead(root, rows, month, repeats):
            print(line, flush=True)
    lines, summary = whole_history(root, backfill_rows, backfill_months, ui, import_s, max_runs)
    for line in lines:
        print(line, flush=True)
    return summary | {"defs_import_s": f"{import_s:.2f}", "defs_import_cpu_s": f"{import_cpu:.2f}"}
