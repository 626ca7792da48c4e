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

It also keeps, per process, the last state of each asset check that it computed
(`get_asset_check_state`, read by the asset graph for every check's per-month statuses).
Dagster's own SQL storages start that computation from nothing on every page load: every
check result of every month, each validated against the partitions definition (with the whole
history, 9 checks x 213 yellow months took ~0.3 CPU-s of the webserver per load of the graph).
Dagster's `AssetCheckState` is built to be updated from a checkpoint (its cursor is the
latest storage id it has seen; `bulk_update_asset_check_state` reads only what is newer);
Dagster's storages just have no checkpoint (`get_checkpointed_asset_check_state` returns empty
states). Ours is the state the same process computed last, used only while nothing it was
computed from has been deleted (wipes, deleted runs: counted before each use) and while the
check's partitions definition is the same; the first load in a process still computes it all.

Imported by the webserver, the daemon and every run worker: it imports Dagster only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from dagster._core.asset_graph_view.serializable_entity_subset import SerializableEntitySubset
from dagster._core.definitions.asset_key import AssetCheckKey
from dagster._core.definitions.partitions.definition.partitions_definition import PartitionsDefinition
from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state
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
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Engines kept per process: the index, and the run databases in use (a webserver may read
# the logs of many runs; the least recently used engine goes first).
MAX_ENGINES = 64

# What a kept check state was computed from: for its check, the number of check executions
# up to the highest id then seen; for its asset, the number of materializations up to the
# highest event id then seen. Rows are only ever added above those ids, so a smaller count
# later means rows were deleted (wipe, deleted run) and the state must be computed afresh.
_CHECK_ROWS = text(
    "SELECT count(CASE WHEN id <= :upto THEN 1 END), count(*), coalesce(max(id), 0) FROM asset_check_executions "
    "WHERE asset_key = :asset_key AND check_name = :check_name"
)
_MATERIALIZATIONS = text(
    "SELECT count(CASE WHEN id <= :upto THEN 1 END), count(*), coalesce(max(id), 0) FROM event_logs "
    "WHERE asset_key = :asset_key AND dagster_event_type = 'ASSET_MATERIALIZATION'"
)
Fingerprint = tuple[int, int, int, int]  # check rows <= id, that id, materializations <= id, that id


class EngineCachingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `_connect` reuses one engine per shard (database file)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # Before Dagster's __init__, which already connects (to create or migrate the index).
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._check_states: dict[AssetCheckKey, tuple[AssetCheckState, Fingerprint]] = {}
        self._check_states_lock = threading.Lock()
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

    def _fingerprint(self, key: AssetCheckKey, upto: Fingerprint | None) -> tuple[Fingerprint, bool]:
        """(the check's fingerprint now, whether `upto`'s rows are all still there)."""
        asset_key = key.asset_key.to_string()
        with self.index_connection() as conn:
            checks, all_checks, check_max = conn.execute(
                _CHECK_ROWS, {"upto": upto[1] if upto else 0, "asset_key": asset_key, "check_name": key.name}
            ).one()
            mats, all_mats, mat_max = conn.execute(
                _MATERIALIZATIONS, {"upto": upto[3] if upto else 0, "asset_key": asset_key}
            ).one()
        intact = upto is not None and checks == upto[0] and mats == upto[2]
        return (all_checks, check_max, all_mats, mat_max), intact

    def get_asset_check_state(
        self, keys: Sequence[tuple[AssetCheckKey, PartitionsDefinition | None]]
    ) -> Mapping[AssetCheckKey, AssetCheckState]:
        initial: dict[AssetCheckKey, AssetCheckState] = {}
        fingerprints: dict[AssetCheckKey, Fingerprint] = {}
        for key, partitions_def in keys:
            with self._check_states_lock:
                kept = self._check_states.get(key)
            state, upto = kept if kept else (None, None)
            fingerprints[key], intact = self._fingerprint(key, upto)
            usable = state is not None and intact and state.compatible_with(partitions_def)
            initial[key] = state if usable else AssetCheckState.empty()
        initial = self._without_newer_partitions(keys, initial)
        states = bulk_update_asset_check_state(self._instance, keys, initial_states=initial)
        with self._check_states_lock:
            for key, state in states.items():
                self._check_states[key] = (state, fingerprints[key])
        return states

    def _without_newer_partitions(
        self,
        keys: Sequence[tuple[AssetCheckKey, PartitionsDefinition | None]],
        states: dict[AssetCheckKey, AssetCheckState],
    ) -> dict[AssetCheckKey, AssetCheckState]:
        """The kept states without the months that have newer records than their cursor.

        Dagster's update adds a month's newest result to its status without taking it out of
        the others (a month that failed, then passed in a rerun, would show as both), and
        moves a run's planned months to skipped when the run ends even if their results came
        meanwhile; from an empty state neither happens. So each month with newer records is
        taken out of every status and run first, and the update then sets it as a computation
        from scratch would.
        """
        kept = {key: state for key, state in states.items() if state.latest_storage_id}
        if not kept:
            return states
        cursor = min(state.latest_storage_id for state in kept.values())
        newer: dict[AssetCheckKey, set[str]] = {}
        for info in self.get_asset_check_partition_info(list(kept), after_storage_id=cursor):
            if info.partition_key is not None:
                newer.setdefault(info.check_key, set()).add(info.partition_key)
        partitions_defs = dict(keys)
        cleaned = dict(states)
        for key, months in newer.items():
            partitions_def, state = partitions_defs[key], kept[key]
            valid = [m for m in months if partitions_def is not None and partitions_def.has_partition_key(m)]
            if not valid:
                continue
            gone = SerializableEntitySubset.from_coercible_value(key, valid, partitions_def)
            cleaned[key] = AssetCheckState(
                latest_storage_id=state.latest_storage_id,
                subsets={status: subset.compute_difference(gone) for status, subset in state.subsets.items()},
                in_progress_runs={
                    run: subset.compute_difference(gone) for run, subset in state.in_progress_runs.items()
                },
            )
        return cleaned

    def _forget_check_states(self) -> None:
        with self._check_states_lock:
            self._check_states.clear()

    def wipe(self) -> None:
        self._forget_check_states()
        super().wipe()

    def wipe_asset(self, asset_key) -> None:
        self._forget_check_states()
        super().wipe_asset(asset_key)

    def delete_events(self, run_id: str) -> None:
        self._forget_check_states()
        super().delete_events(run_id)


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
