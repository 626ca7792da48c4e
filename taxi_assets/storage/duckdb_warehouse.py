"""The embedded warehouse: a DuckDB file.

DuckDB allows one writing process at a time, and Dagster runs partitions in
parallel processes, so writes are serialised with a file lock beside the database
(the approach of Dagster's own ETL tutorial) rather than left to fail with
"Could not set lock". A process that is not a run (the DuckDB CLI, a notebook) can
still hold the file: then a run logs that it waits, retries for LOCKED_WAIT_S and
fails naming the file and the process DuckDB reports.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import tenacity
from dagster import get_dagster_logger
from filelock import FileLock, Timeout

from taxi_assets.errors import WarehouseLockedError
from taxi_assets.spec.datasets import SOURCE_MONTH_COLUMN, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.warehouse import LoadResult, Warehouse, duckdb_path

if TYPE_CHECKING:
    import duckdb

LOCK_TIMEOUT_S = 600  # another run of ours writing (its lock file)
LOCKED_WAIT_S = 30.0  # another process holding the DuckDB file itself
SETTING = "TAXI_WAREHOUSE_URI"


def _held_elsewhere(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(path: str, label: str) -> duckdb.DuckDBPyConnection:
    """A connection to the file, waiting (and saying so) while another process holds it."""
    # Imported here, where a step opens the warehouse: loading the definitions (the resource
    # is made there) would otherwise pay DuckDB's import in every process.
    import duckdb

    log = get_dagster_logger()

    def say_waiting(state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            log.warning(
                f"{label}: waiting up to {LOCKED_WAIT_S:g} s for the warehouse file {path} ({SETTING}), "
                f"which another process holds: {state.outcome.exception()}"
            )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(LOCKED_WAIT_S),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        retry=tenacity.retry_if_exception(_held_elsewhere),
        before_sleep=say_waiting,
        reraise=True,
    )
    try:
        return retrying(duckdb.connect, path, config={"custom_user_agent": "taxi-assets"})
    except duckdb.IOException as exc:
        if not _held_elsewhere(exc):
            raise
        raise WarehouseLockedError(
            f"{label}: the warehouse file {path} ({SETTING}) is held by another process; gave up after "
            f"{LOCKED_WAIT_S:g} s. Close that process or point {SETTING} at another file. DuckDB said: {exc}"
        ) from None


def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    raise TypeError(f"no DuckDB type for {t}")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_names(schema: pa.Schema) -> str:
    return ", ".join(quote(f.name) for f in schema)


def column_definitions(schema: pa.Schema) -> str:
    return ", ".join(f"{quote(f.name)} {duckdb_type(f.type)}{'' if f.nullable else ' NOT NULL'}" for f in schema)


@contextmanager
def transaction(conn):
    """All statements inside commit together or not at all."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def writer_lock(path: str, label: str = "warehouse"):
    """The warehouse's one-writer lock: held by every load and by every dbt run on the file."""
    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        # Say why the run stands still (another run's long load, or a stuck one).
        get_dagster_logger().info(f"{label}: waiting for the warehouse lock {lock.lock_file}: another run is writing")
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise WarehouseLockedError(
                f"{label}: another run has held the warehouse lock {lock.lock_file} for "
                f"{LOCK_TIMEOUT_S} s ({SETTING}); is a run stuck?"
            ) from None
    try:
        yield
    finally:
        lock.release()


class DuckDBWarehouse(Warehouse):
    """The warehouse in one DuckDB file (`uri` duckdb:///path)."""

    @classmethod
    def at(cls, path: str | Path) -> DuckDBWarehouse:
        return cls(uri=f"duckdb:///{path}")

    @property
    def path(self) -> str:
        return duckdb_path(self.uri)

    @contextmanager
    def _writing(self, label: str = "warehouse"):
        """A connection for `label` (what is being written, e.g. 'yellow 2021-01'), ours alone."""
        Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            stack.enter_context(writer_lock(self.path, label))
            conn = connect(self.path, label)
            stack.callback(conn.close)
            yield conn

    def create_table(self, conn, spec: DatasetSpec) -> list[str]:
        """The dataset's table, created if missing; a table made by an earlier version gains
        the columns added since (ALTER TABLE ADD COLUMN: in place, every row kept, the new
        columns null). Returns the columns added."""
        schema = spec.arrow_schema()
        conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(spec.table)} ({column_definitions(schema)})")
        have = {
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [spec.table]
            ).fetchall()
        }
        added = [f for f in schema if f.name not in have]
        for f in added:
            conn.execute(f"ALTER TABLE {quote(spec.table)} ADD COLUMN {quote(f.name)} {duckdb_type(f.type)}")
        if added:
            get_dagster_logger().info(f"{spec.table}: added columns {', '.join(f.name for f in added)}")
        return [f.name for f in added]

    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        started = time.monotonic()
        names = column_names(spec.arrow_schema())
        table = quote(spec.table)
        with ExitStack() as files:
            local = {m: str(files.enter_context(o.local_path())) for m, o in objects.items()}
            label = f"{spec.name} {', '.join(normalize_month(m) for m in objects)}"
            with self._writing(label) as conn:
                added = self.create_table(conn, spec)
                # One transaction for all months: a failure leaves every month as it was.
                month_metadata = {}
                with transaction(conn):
                    for month, path in local.items():
                        month_started = time.monotonic()
                        first_day = f"{normalize_month(month)}-01"
                        conn.execute(f"DELETE FROM {table} WHERE {SOURCE_MONTH_COLUMN} = ?::DATE", [first_day])
                        conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM read_parquet(?)", [path])
                        month_metadata[normalize_month(month)] = {"seconds": round(time.monotonic() - month_started, 3)}
                counts = self._counts(conn, spec, [normalize_month(m) for m in objects])
        metadata = {"seconds": round(time.monotonic() - started, 3), "database": self.path}
        if added:
            metadata["migrated_columns"] = ", ".join(added)
        return LoadResult(counts, metadata, month_metadata)

    def _counts(self, conn, spec: DatasetSpec, months: list[str] | None = None) -> dict[str, int]:
        rows = conn.execute(
            f"SELECT strftime({SOURCE_MONTH_COLUMN}, '%Y-%m') AS m, count(*) FROM {quote(spec.table)} GROUP BY m"
        ).fetchall()
        counts = {m: n for m, n in rows}
        if months is not None:
            return {m: counts.get(m, 0) for m in months}
        return counts

    def month_row_counts(self, spec: DatasetSpec) -> dict[str, int]:
        with self._writing(spec.name) as conn:
            self.create_table(conn, spec)
            return self._counts(conn, spec)

    def replace_table(self, name: str, obj: LakeObject, schema: pa.Schema) -> int:
        names = column_names(schema)
        with obj.local_path() as path, self._writing(name) as conn:
            # DuckDB DDL is transactional: readers see the old table or the new one.
            with transaction(conn):
                conn.execute(f"CREATE OR REPLACE TABLE {quote(name)} ({column_definitions(schema)})")
                conn.execute(f"INSERT INTO {quote(name)} ({names}) SELECT {names} FROM read_parquet(?)", [str(path)])
            return conn.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def table_ref(self, name: str) -> str:
        return quote(name)

    def query(self, sql: str) -> pa.Table:
        with self._writing() as conn:
            # A relation's Arrow result, not the DB-API cursor's (which copies the rows once more).
            return conn.sql(sql).to_arrow_table()
