"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server."""

from __future__ import annotations

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from taxi_assets.defs.assets.keys import lake_key, raw_key, warehouse_key
from taxi_assets.source.resource import download_pool
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.deploy.harness import install_instance
from taxi_assets_tests.helpers import csv_data_rows, mirror_file


def test_a_month_materialized_on_the_production_instance_is_read_back_from_postgres(
    platform, mirror, mirror_root, pg_database, tmp_path, monkeypatch
):
    for name, value in pg_database.dagster_env().items():
        monkeypatch.setenv(name, value)
    # The raw asset's download pool is named after the host it downloads from.
    monkeypatch.setenv("TAXI_SOURCE_URL", mirror.url_template)
    home = install_instance(tmp_path / "dagster_home")
    spec = DATASETS["yellow"]
    keys = [raw_key(spec), lake_key(spec), warehouse_key(spec)]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        result = platform.materialize(spec, "2021-01", instance=instance)
        assert result.success

    expected_rows = csv_data_rows(mirror_file(mirror_root, "yellow", "2021-01"))
    # A new instance, new connections: everything comes back from the database.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for key in keys:
            event = instance.get_latest_materialization_event(key)
            assert event is not None, key
            assert event.run_id == result.run_id
            assert event.asset_materialization.partition == "2021-01-01"
            assert instance.get_materialized_partitions(key) == {"2021-01-01"}
        warehouse_event = instance.get_latest_materialization_event(warehouse_key(spec))
        assert warehouse_event.asset_materialization.metadata["dagster/row_count"].value == expected_rows
        # The download took a slot of its host's pool (set up on first use with the
        # yaml's default limit) and gave it back when the step ended.
        pool = download_pool(mirror.url_template)
        assert pool == "source_host:127.0.0.1"
        info = instance.event_log_storage.get_concurrency_info(pool)
        assert (info.slot_count, info.active_slot_count) == (2, 0)

    # In PostgreSQL's own tables, seen without Dagster.
    rows = pg_database.query(
        "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = %s AND run_id = %s",
        ("ASSET_MATERIALIZATION", result.run_id),
    )
    assert sorted(rows) == sorted((key.to_string(), "2021-01-01") for key in keys)
    assert pg_database.query('SELECT concurrency_key, "limit" FROM concurrency_limits') == [(pool, 2)]
    assert not list(home.rglob("*.db")), "nothing may fall back to SQLite under DAGSTER_HOME"
