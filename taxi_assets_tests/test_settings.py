"""Settings reach a run whole: run config that sets one field of a resource (the launchpad)
keeps the environment's settings for its other fields."""

from __future__ import annotations

import dagster as dg
import pytest

from taxi_assets.datasets import DATASETS
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import build_resources
from taxi_assets.months import partition_key
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
