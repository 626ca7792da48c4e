"""The local Dagster instance's storage (`make dev`, `make demo`): Dagster's own SQLite
storage, but its event log keeps one SQLAlchemy engine per database file.

Dagster's SQLite event log builds a new engine for every write and drops it after
(`SqliteEventLogStorage._connect`): dialect set-up and first-connect queries on each of
the tens of thousands of writes a whole-history backfill makes (planned events, one
materialization per asset and month, one check result per check and month). Keeping
the engine makes each write much cheaper. Connections are still
opened per use and closed after (NullPool, as Dagster does): nothing is shared across
processes or forks, and the database files, their layout and their WAL mode are
Dagster's own, so the same DAGSTER_HOME works with or without this class.

Configured in DAGSTER_HOME/dagster.yaml (taxi_assets/dagster_local.yaml, which the Makefile
copies there), with `LocalRunLauncher`: Dagster's default launcher, which also tells run
monitoring whether a run's process is alive.

Imported by the webserver, the daemon and every run worker: it imports Dagster only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.events import DagsterEventType
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Engines kept per process: the index, and the run databases in use (a webserver may read
# the logs of many runs; the least recently used engine goes first).
MAX_ENGINES = 64


class EngineCachingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `_connect` reuses one engine per shard (database file)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # Before Dagster's __init__, which already connects (to create or migrate the index).
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            self._engines[shard] = engine  # most recently used last
            while len(self._engines) > MAX_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def has_table(self, table_name: str) -> bool:
        # Dagster's has_table, on the kept engine of the index (asked before many queries).
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's _connect, but for the engine: same lock, same lazy creation of the database.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn


class SqliteStorage(DagsterSqliteStorage):
    """Dagster's default local storage (same folders under base_dir), with the engine-keeping event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # As DagsterSqliteStorage.__init__, with our event log storage.
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = EngineCachingSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> SqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


# A process made this long after the run's worker reported its pid is another one (pid reuse).
PID_REUSE_SLACK_S = 1.0


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher (a run is a process of the code server, on this machine)
    that tells run monitoring whether that process is alive. Dagster's own cannot: a run
    whose process died with its code server (kill -9, `dagster dev` killed, the machine
    restarted) would stay STARTED, holding its queue slot. The run's process is the pid
    its first engine event records ("Started process for run (pid: N)")."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run's process has not reported its pid yet")
        pid, reported_at = worker
        if process_alive(pid, reported_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process (pid {pid}) is gone")


def run_worker(instance, run_id: str) -> tuple[int, float] | None:
    """(pid, when it was reported) of the run's process: its first engine event with a pid."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20).records:
        event = record.event_log_entry
        data = event.dagster_event.event_specific_data if event.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value), event.timestamp
    return None


def process_alive(pid: int, reported_at: float) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= reported_at + PID_REUSE_SLACK_S
    except psutil.NoSuchProcess:
        return False
