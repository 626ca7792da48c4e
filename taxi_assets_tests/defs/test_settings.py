"""Settings reach a run whole: run config that sets one field of a resource (the launchpad)
keeps the environment's settings for its other fields."""

from __future__ import annotations

import dagster as dg
import pytest
from filelock import FileLock, Timeout

from taxi_assets.analytics.project import dbt_env, writer_lock
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import build_resources, warehouse_resource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse

SPEC = DATASETS["yellow"]
MONTH = "2021-01"


@pytest.fixture
def environment(platform, monkeypatch, tmp_path):
    """The product's settings from the environment, in a working folder of its own (where
    the embedded defaults, ./data/..., would land)."""
    monkeypatch.setenv("TAXI_SOURCE_URL", platform.source_url)
    monkeypatch.setenv("TAXI_ZONES_URL", platform.zones_url)
    monkeypatch.setenv("TAXI_LAKE_URI", platform.lake_uri)
    monkeypatch.setenv("TAXI_WAREHOUSE_URI", platform.warehouse_uri)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "resource_config",
    [
        {"source": {"config": {"timeout_s": 30}}},
        {"warehouse": {"config": {}}},
        {"lake_io_manager": {"config": {}}},
        {"source": {"config": {"retries": 2}}, "warehouse": {"config": {}}},
    ],
    ids=["source-timeout", "warehouse-empty", "lake-empty", "both"],
)
def test_run_config_for_one_field_keeps_the_environments_other_settings(platform, environment, resource_config):
    result = dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        partition_key=partition_key(MONTH),
        resources=build_resources(),
        run_config={"resources": resource_config},
        raise_on_error=False,
    )
    assert result.success
    # From TAXI_SOURCE_URL (the mirror), into TAXI_LAKE_URI and TAXI_WAREHOUSE_URI: nothing under ./data.
    assert list(platform.warehouse().month_row_counts(SPEC)) == [MONTH]
    assert platform.lake().list(f"{SPEC.name}/month={MONTH}")
    assert not (environment / "data").exists()


def test_run_config_for_a_field_wins_over_the_environment(platform, environment, tmp_path):
    elsewhere = tmp_path / "elsewhere.duckdb"
    result = dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        partition_key=partition_key(MONTH),
        resources=build_resources(),
        run_config={"resources": {"warehouse": {"config": {"uri": f"duckdb:///{elsewhere}"}}}},
    )
    assert result.success
    assert list(DuckDBWarehouse.at(elsewhere).month_row_counts(SPEC)) == [MONTH]
    assert platform.warehouse().month_row_counts(SPEC) == {}


def test_a_warehouse_under_home_is_one_file_and_one_lock_for_loads_and_dbt(platform, monkeypatch, tmp_path):
    """duckdb:///~/x.duckdb: the load writes $HOME/x.duckdb and locks $HOME/x.duckdb.lock,
    the lock dbt takes (analytics.writer_lock), so the two never write at once."""
    home, workdir = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    workdir.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(workdir)
    uri = "duckdb:///~/x.duckdb"
    result = dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        partition_key=partition_key(MONTH),
        resources={**platform.resources(), "warehouse": warehouse_resource(uri)},
    )
    assert result.success
    assert list(DuckDBWarehouse.at(home / "x.duckdb").month_row_counts(SPEC)) == [MONTH]
    assert dbt_env(uri)["TAXI_DBT_DUCKDB_PATH"] == str(home / "x.duckdb")
    with writer_lock(uri):  # as a dbt run holds it
        with pytest.raises(Timeout):
            FileLock(f"{warehouse_resource(uri).path}.lock").acquire(timeout=0)
    assert sorted(p.name for p in home.iterdir()) == ["x.duckdb", "x.duckdb.lock"]
    assert list(workdir.iterdir()) == []  # no literal ./~ folder


def test_a_run_stages_in_its_lake_io_managers_staging_folder(platform, environment, monkeypatch, tmp_path):
    """The staging folder is a field of the lake I/O manager (TAXI_STAGING_DIR its default where
    the definitions are built), not read by the code that stages: run config for the field moves
    a run's files, even away from an unusable folder in the environment."""
    unusable = tmp_path / "a-file"
    unusable.write_text("")
    monkeypatch.setenv("TAXI_STAGING_DIR", str(unusable / "staging"))
    chosen = tmp_path / "staging-of-the-run"
    result = dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        partition_key=partition_key(MONTH),
        resources=build_resources(),
        run_config={"resources": {"lake_io_manager": {"config": {"staging_dir": str(chosen)}}}},
    )
    assert result.success and chosen.is_dir()
    assert list(platform.warehouse().month_row_counts(SPEC)) == [MONTH]
    assert not (environment / "data").exists()
