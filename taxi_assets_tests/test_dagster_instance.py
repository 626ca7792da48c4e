"""The local instance `make dev` writes: Dagster's SQLite storage with an event log that
keeps one engine per database file (taxi_assets/dagster_instance.py)."""

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.storage.event_log.sqlite import sqlite_event_log

from taxi_assets import dagster_instance
from taxi_assets.bench.dagster_bench import instance_yaml
from taxi_assets.defs.checks import TargetMaterialization

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


CHECKED = dg.AssetKey("checked")


def _check_months(instance: dg.DagsterInstance, months: dict[str, bool | None]) -> None:
    """Each month materialized, then its own check result (as the lake step records them:
    defs/checks.py, month_evaluation): passed, failed, or None: no result."""
    for month, passed in months.items():
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CHECKED, partition=month))
        if passed is None:
            continue
        record = instance.fetch_materializations(CHECKED, limit=1).records[0]
        target = TargetMaterialization(run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp)
        instance.report_runless_asset_event(
            AssetCheckEvaluation(
                check_name="rows_ok",
                asset_key=CHECKED,
                passed=passed,
                partition=month,
                target_materialization_data=target,
            )
        )


@dg.asset(
    key=CHECKED,
    partitions_def=MONTHS,
    check_specs=[dg.AssetCheckSpec("rows_ok", asset=CHECKED, partitions_def=MONTHS)],
)
def checked() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="rows_ok", passed=True)])


def test_check_states_are_kept_and_stay_true(home, monkeypatch):
    """The per-month check statuses the asset graph reads: updated from the state the process
    computed last, and always what Dagster's own storage computes from scratch, also after a
    wipe made by another process."""
    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    key = dg.AssetCheckKey(CHECKED, "rows_ok")
    cursors: list[int] = []  # the checkpoint each computation starts from
    real = dagster_instance.bulk_update_asset_check_state

    def spying(instance, keys, initial_states):
        cursors.append(initial_states[key].latest_storage_id)
        return real(instance, keys, initial_states)

    monkeypatch.setattr(dagster_instance, "bulk_update_asset_check_state", spying)

    def statuses(get_state=storage.get_asset_check_state) -> dict:
        state = get_state([(key, MONTHS)])[key]
        return {status.value: sorted(s.subset_value.get_partition_keys()) for status, s in state.subsets.items()}

    def from_scratch() -> dict:  # Dagster's own computation, from no checkpoint
        return statuses(lambda keys: sqlite_event_log.SqliteEventLogStorage.get_asset_check_state(storage, keys))

    _check_months(instance, {"2021-01-01": True, "2021-02-01": False, "2021-03-01": True})
    first = statuses()
    assert first["SUCCEEDED"] == ["2021-01-01", "2021-03-01"] and first["FAILED"] == ["2021-02-01"]
    assert first == from_scratch()

    # March materialized again (its result is no longer current), April new and failing.
    _check_months(instance, {"2021-03-01": None, "2021-04-01": False})
    second = statuses()
    assert second["SUCCEEDED"] == ["2021-01-01"] and second["FAILED"] == ["2021-02-01", "2021-04-01"]
    assert second == from_scratch()
    assert cursors[0] == 0 and cursors[1] > 0  # the second started from the first's state

    # April rerun by a run, and passing now: only passed (Dagster's update alone from a kept
    # state would leave it failed too).
    assert dg.materialize([checked], instance=instance, partition_key="2021-04-01").success
    third = statuses()
    assert third["SUCCEEDED"] == ["2021-01-01", "2021-04-01"] and third["FAILED"] == ["2021-02-01"]
    assert third == from_scratch() and cursors[-1] > 0

    # Another process wipes the asset: its check results go, and ours sees it.
    sqlite_event_log.SqliteEventLogStorage(str(home / "history" / "runs")).wipe_asset(CHECKED)
    wiped = statuses()
    assert cursors[-1] == 0  # computed afresh
    assert wiped == from_scratch() and wiped["SUCCEEDED"] == [] and wiped["FAILED"] == []
