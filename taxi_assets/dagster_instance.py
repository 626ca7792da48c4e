"""The local Dagster instance's storage (`make dev`, `make demo`): Dagster's own SQLite
storage, but its event log keeps one SQLAlchemy engine per database file.

Dagster's SQLite event log builds a new engine for every write and drops it after
(`SqliteEventLogStorage._connect`): dialect set-up and first-connect queries on each of
the tens of thousands of writes a whole-history backfill makes (planned events, one
materialization per asset and month, one check result per check and month). Keeping
the engine halves the CPU of a write (README, Performance). Connections are still
opened per use and closed after (NullPool, as Dagster does): nothing is shared across
processes or forks, and the database files, their layout and their WAL mode are
Dagster's own, so the same DAGSTER_HOME works with or without this class.

Configured in DAGSTER_HOME/dagster.yaml (see the Makefile):

    storage:
      custom:
        module: taxi_assets.dagster_instance
        class: SqliteStorage
        config:
          base_dir: {env: DAGSTER_HOME}

Imported by the webserver, the daemon and every run worker: it imports Dagster only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

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
