"""The local instance `make dev` writes: Dagster's SQLite storage with an event log that
keeps one engine per database file (taxi_assets/storage/instance.py)."""

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log.sqlite import sqlite_event_log

from taxi_assets.storage import instance as dagster_instance
from taxi_tools.bench.dagster_bench import instance_yaml

MONTHS = dg.MonthlyPartitionsDefinition(start_date="2021-01-01", end_date="2021-07-01")
BROKEN = "2021-05-01"


@dg.asset(partitions_def=MONTHS, backfill_policy=dg.BackfillPolicy.single_run())
def months(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    if BROKEN in context.partition_keys:
        raise ValueError(f"{BROKEN} is broken")
    for key in context.partition_keys:
        context.add_asset_metadata({"dagster/row_count": int(key[5:7])}, partition_key=key)
    return dg.MaterializeResult()


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text(instance_yaml())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def engines_created(monkeypatch) -> list[str]:
    """Every SQLAlchemy engine created, by Dagster's SQLite event log or ours."""
    created: list[str] = []

    def counting(url, *args, **kwargs):
        created.append(str(url))
        return sqlalchemy.create_engine(url, *args, **kwargs)

    monkeypatch.setattr(sqlite_event_log, "create_engine", counting)
    monkeypatch.setattr(dagster_instance, "create_engine", counting)
    return created


def _materialize(instance: dg.DagsterInstance, start: str, end: str) -> bool:
    return dg.materialize(
        [months],
        instance=instance,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        raise_on_error=False,
    ).success


def test_the_event_log_keeps_one_engine_per_database(home, engines_created):
    instance = dg.DagsterInstance.get()
    assert type(instance.event_log_storage) is dagster_instance.EngineCachingSqliteEventLogStorage
    assert _materialize(instance, "2021-01-01", "2021-02-01")
    before = len(engines_created)  # the index's (creation, migrations) and the first run's
    assert _materialize(instance, "2021-01-01", "2021-04-01")
    run_id = instance.get_runs(limit=1)[0].run_id
    writes = len(instance.get_records_for_run(run_id).records)
    assert writes >= 15  # run, step, planned and materialization events: each a write
    # One new engine, the new run's database; Dagster's own storage makes one per write.
    assert [url.rsplit("/", 1)[-1] for url in engines_created[before:]] == [f"{run_id}.db"]


@pytest.mark.slow
def test_what_the_ui_reads_after_a_range_is_the_same_as_with_dagsters_own_storage(home):
    """Months, row counts and failed months as the UI gets them; then the same DAGSTER_HOME
    opened with Dagster's default storage (no storage block) reads the same: no migration."""
    instance = dg.DagsterInstance.get()
    assert _materialize(instance, "2021-01-01", "2021-04-01")
    assert not _materialize(instance, "2021-05-01", "2021-06-01")  # the broken month fails its range

    def seen(instance: dg.DagsterInstance) -> tuple:
        key = months.key
        records = instance.fetch_materializations(key, limit=100).records
        rows = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value for r in records}
        failed = instance.get_status_by_partition(key, MONTHS.get_partition_keys(), MONTHS)
        return instance.get_materialized_partitions(key), rows, failed

    materialized, rows, statuses = seen(instance)
    assert materialized == {"2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01"}
    assert rows == {"2021-01-01": 1, "2021-02-01": 2, "2021-03-01": 3, "2021-04-01": 4}
    # Both months of the failed range show as failed, as with Dagster's storage.
    assert {k for k, s in statuses.items() if s.value == "FAILED"} == {"2021-05-01", "2021-06-01"}, statuses

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    default = dg.DagsterInstance.get()
    assert type(default.event_log_storage) is sqlite_event_log.SqliteEventLogStorage
    assert seen(default) == (materialized, rows, statuses)
