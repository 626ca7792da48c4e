"""Settings that cannot work fail at once (definitions load or run start) with a message
naming the setting, and leave the lake and the warehouse as they were."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

import taxi_assets.storage.duckdb_warehouse as duckdb_warehouse
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import warehouse_resource
from taxi_assets.errors import ConfigError
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse
from taxi_assets_tests.reliability import State, failure, logged, materialize

SPEC = DATASETS["yellow"]
MONTH = "2021-01"


def load_definitions(**env: str) -> subprocess.CompletedProcess:
    """Load the code location as `dagster dev` would, in a fresh process with env set."""
    return subprocess.run(
        [sys.executable, "-c", "import taxi_assets.definitions"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


BAD_WAREHOUSE_URIS = {
    "duckdb:///": "names no database file",
    "duckdb://": "names no database file",
    "duckdb:///data/": "names no database file",
    "./warehouse.duckdb": "is not a URI \\(no '://'\\)",
    "postgres://host/db": "unknown warehouse kind 'postgres'",
    "bigquery://project-only": "not a BigQuery warehouse URI",
}

BAD_SOURCE_URLS = {
    "http://h/{dataset}_{month.csv.gz": "is not a URL template",
    "http://h/{dataset}_{month}}.csv.gz": "is not a URL template",
    "http://h/{dataset}_{year}.csv.gz": "unknown field\\(s\\) \\{year\\}",
    "http://h/{dataset}_2021-01.csv.gz": "has no \\{month\\}: every month would load the same file",
    "http://h/{month:%Y}.csv.gz": "cannot be filled in",
    "h/{dataset}_{month}.csv.gz": "is not an http\\(s\\) URL",
}


@pytest.mark.parametrize("uri", list(BAD_WAREHOUSE_URIS))
def test_a_warehouse_uri_that_cannot_work_fails_the_definitions_load(uri):
    with pytest.raises(ConfigError, match=f"^TAXI_WAREHOUSE_URI.*{BAD_WAREHOUSE_URIS[uri]}"):
        warehouse_resource(uri)


@pytest.mark.slow
def test_the_code_location_refuses_to_load_naming_the_setting():
    proc = load_definitions(TAXI_WAREHOUSE_URI="duckdb:///")
    assert proc.returncode != 0
    assert "ConfigError: TAXI_WAREHOUSE_URI='duckdb:///' names no database file" in proc.stderr
    proc = load_definitions(TAXI_SOURCE_URL="http://h/{dataset}.csv.gz")
    assert proc.returncode != 0
    assert "ConfigError: TAXI_SOURCE_URL='http://h/{dataset}.csv.gz' has no {month}" in proc.stderr


def test_each_of_several_source_templates_is_checked_naming_the_bad_one():
    from taxi_assets.source.resource import DEFAULT_SOURCE_URL, check_url_template

    assert check_url_template(DEFAULT_SOURCE_URL) == DEFAULT_SOURCE_URL  # two templates, both good
    good_one, bad_one = "http://a/{dataset}_{month}.csv.gz", "http://b/{dataset}.parquet"
    with pytest.raises(ConfigError, match=re.escape(f"source 2 of 2 {bad_one!r}, has no {{month}}")):
        check_url_template(f"{good_one} {bad_one}")
    with pytest.raises(ConfigError, match="names no URL template"):
        check_url_template("  ")


def materialize_month_with(platform, **replaced):
    """The month's three layers, with some of the platform's resources replaced."""
    return dg.materialize(
        build_dataset_assets(SPEC, "duckdb"),
        partition_key=f"{MONTH}-01",
        resources={**platform.resources(), **replaced},
        raise_on_error=False,
    )


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("template", list(BAD_SOURCE_URLS))
def test_a_source_template_that_cannot_work_fails_before_any_download(platform, source, template):
    result = materialize_month_with(platform, source=TaxiSource(url_template=template))
    step, cls, message = failure(result)
    assert (step, cls) == (None, "ConfigError")  # at run start: no step ran
    assert message.startswith(f"TAXI_SOURCE_URL={template!r}")
    assert re.search(BAD_SOURCE_URLS[template], message)
    assert source.requests == []
    assert not (platform.root / "lake").exists()


# An unknown kind (postgres://) never gets this far: choosing the backend refuses it at load
# (test_a_warehouse_uri_that_cannot_work_fails_the_definitions_load).
@pytest.mark.parametrize("uri", ["duckdb:///", "duckdb:///some/folder/"])
def test_a_bad_warehouse_uri_fails_the_run_before_raw_and_lake(platform, good, source, uri):
    result = materialize_month_with(platform, warehouse=DuckDBWarehouse(uri=uri))
    step, cls, message = failure(result)
    assert (step, cls) == (None, "ConfigError") and message.startswith(f"TAXI_WAREHOUSE_URI={uri!r}")
    assert not result.get_asset_materialization_events()  # raw and lake did not run either
    good.assert_same(State.of(platform, SPEC))


def test_a_duckdb_file_held_by_another_process_is_waited_for_then_named(platform, good, source, monkeypatch):
    monkeypatch.setattr(duckdb_warehouse, "LOCKED_WAIT_S", 2.0)
    path = platform.warehouse_uri.removeprefix("duckdb:///")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({path!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        instance = dg.DagsterInstance.ephemeral()
        started = time.monotonic()
        result = materialize(platform, SPEC, MONTH, instance=instance)
        took = time.monotonic() - started
        step, cls, message = failure(result)
    finally:
        holder.kill()
        holder.wait()
    assert (step, cls) == ("warehouse__yellow_trips", "WarehouseLockedError")
    assert message.startswith(
        f"yellow {MONTH}: the warehouse file {path} (TAXI_WAREHOUSE_URI) is held by another process"
    )
    assert f"PID {holder.pid}" in message
    assert any(
        f"yellow {MONTH}: waiting up to 2 s for the warehouse file {path}" in m for m in logged(instance, result.run_id)
    )
    assert took < 60  # failed on its own, not when the holder went away
    good.assert_same(State.of(platform, SPEC))


@pytest.mark.deploy  # the dagster CLI as a process
def test_a_partition_key_that_is_not_a_month_is_refused_before_anything_runs(tmp_path):
    """Dagster's CLI checks the key against the asset's months (keys are YYYY-MM-01)."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "TAXI_LAKE_URI": str(tmp_path / "lake"),
        "TAXI_WAREHOUSE_URI": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        "TAXI_STAGING_DIR": str(tmp_path / "staging"),
    }
    (tmp_path / "dagster.yaml").write_text("")
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "taxi_assets.definitions",
            "--select",
            "raw/yellow_raw",
            "--partition",
            "2021-01",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "containing the passed partition key `2021-01`" in proc.stderr
    assert not (tmp_path / "lake").exists() and not (tmp_path / "warehouse.duckdb").exists()
