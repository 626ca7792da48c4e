"""Backfills: three months through raw -> lake -> warehouse in one run.

The first test runs the exact `dagster asset materialize --partition-range` line of
the README as a subprocess against the real mirror, with its own DAGSTER_HOME, lake
and DuckDB file; the second runs a range in process to look at each month's files.
"""

import gzip
import os
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.assets.keys import lake_key, warehouse_key
from taxi_assets.defs.checks import lake_check_specs
from taxi_assets.defs.resources import warehouse_resource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.helpers import csv_data_rows
from taxi_tools.mirror import MirrorServer, generate
from taxi_tools.mirror.generator import relpath

REPO = Path(__file__).resolve().parents[2]
MONTHS = ["2021-01", "2021-02", "2021-03"]
CHECK_NAMES = [c.name for c in lake_check_specs(DATASETS["yellow"])]


def readme_backfill_command() -> list[str]:
    lines = [
        line.strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if "dagster asset materialize" in line and "--partition-range" in line
    ]
    assert len(lines) == 1, lines
    args = shlex.split(lines[0])
    assert args[0] == ".venv/bin/dagster"
    return [str(Path(sys.executable).parent / "dagster"), *args[1:]]


@pytest.fixture
def three_month_mirror(tmp_path):
    root = tmp_path / "mirror"
    generate(root, ["yellow"], MONTHS)
    with MirrorServer(root) as server:
        yield server


@pytest.mark.deploy  # the dagster CLI as a process
def test_readme_partition_range_loads_three_months_in_one_run(three_month_mirror, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    warehouse_uri = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TAXI_SOURCE_URL": three_month_mirror.url_template,
        "TAXI_LAKE_URI": str(tmp_path / "lake"),
        "TAXI_WAREHOUSE_URI": warehouse_uri,
        "TAXI_STAGING_DIR": str(tmp_path / "staging"),
    }
    command = readme_backfill_command()
    assert "2021-01-01...2021-03-01" in command
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    spec = DATASETS["yellow"]
    expected = {m: csv_data_rows(three_month_mirror.root / relpath("yellow", m)) for m in MONTHS}
    assert warehouse_resource(warehouse_uri).month_row_counts(spec) == expected
    for month in MONTHS:  # each file fetched once
        assert three_month_mirror.request_count(relpath("yellow", month), "GET") == 1
        assert (tmp_path / "lake" / "yellow" / f"month={month}" / "part-0.parquet").is_file()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_start"] == "2021-01-01"
        assert run.tags["dagster/asset_partition_range_end"] == "2021-03-01"
        loads = instance.fetch_materializations(warehouse_key(spec), limit=10).records
        assert sorted(r.partition_key for r in loads) == [f"{m}-01" for m in MONTHS]
        assert {r.run_id for r in loads} == {run.run_id}
        # Per-month metadata, not one month's figures copied onto the others.
        lake = instance.fetch_materializations(lake_key(spec), limit=10).records
        rows = {r.partition_key[:7]: r.asset_materialization.metadata["dagster/row_count"].value for r in lake}
        assert rows == expected
        platform = Platform(root=tmp_path, source_url=three_month_mirror.url_template)
        assert_each_month_has_its_own_figures_and_checks(instance, platform, three_month_mirror.root)


def test_a_range_run_keeps_each_months_metadata_and_quarantine_apart(three_month_mirror, tmp_path, monkeypatch):
    # 2021-02 gets one malformed row (a word where passenger_count's integer belongs).
    path = three_month_mirror.root / relpath("yellow", "2021-02")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    fields = lines[10].split(",")
    fields[3] = "two"
    lines[10] = ",".join(fields)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    platform = Platform(root=tmp_path, source_url=three_month_mirror.url_template)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        build_dataset_assets(DATASETS["yellow"], "duckdb"),
        resources=platform.resources(),
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2021-01-01", "dagster/asset_partition_range_end": "2021-03-01"},
    )
    assert result.success
    assert_each_month_has_its_own_figures_and_checks(
        instance, platform, three_month_mirror.root, quarantined={"2021-02": 1}
    )
    lake = {m.partition: m.metadata for m in (e.materialization for e in result.get_asset_materialization_events())
            if m.asset_key == lake_key(DATASETS["yellow"])}  # fmt: skip
    assert {k: v["quarantined_rows"].value for k, v in lake.items()} == {
        "2021-01-01": 0,
        "2021-02-01": 1,
        "2021-03-01": 0,
    }
    quarantine = platform.lake().root / "quarantine/yellow/month=2021-02/rows.csv"
    assert quarantine.is_file()
    # Each month's materialization lists its own files only.
    for key, metadata in lake.items():
        month = key[:7]
        assert metadata["uri"].value == str(platform.lake().root / f"yellow/month={month}/part-0.parquet")
        assert ("quarantine_uri" in metadata) == (month == "2021-02")
    assert lake["2021-02-01"]["quarantine_uri"].value == str(quarantine)
    assert not (platform.lake().root / "quarantine/yellow/month=2021-01").exists()
    expected = {m: csv_data_rows(three_month_mirror.root / relpath("yellow", m)) for m in MONTHS}
    expected["2021-02"] -= 1
    assert platform.warehouse().month_row_counts(DATASETS["yellow"]) == expected
    # Each month accounts for its own rows, counted from its own file: read = published + set aside.
    for key, metadata in lake.items():
        read = csv_data_rows(three_month_mirror.root / relpath("yellow", key[:7]))
        assert metadata["rows_read"].value == read
        assert metadata["dagster/row_count"].value + metadata["set_aside_rows"].value == read


def assert_each_month_has_its_own_figures_and_checks(instance, platform, mirror_root, quarantined=None):
    """What the UI reads after a range run: each month's row count in the warehouse's
    materialization, and each month's checks passed on its current lake version."""
    spec = DATASETS["yellow"]
    counts = platform.warehouse().month_row_counts(spec)
    expected = {m: csv_data_rows(mirror_root / relpath("yellow", m)) - (quarantined or {}).get(m, 0) for m in MONTHS}
    assert counts == expected
    loads = instance.fetch_materializations(warehouse_key(spec), limit=10).records
    assert {r.partition_key[:7]: r.asset_materialization.metadata["dagster/row_count"].value for r in loads} == expected
    assert len(set(expected.values())) == len(MONTHS)  # months of different sizes, or the test proves nothing

    check_keys = [dg.AssetCheckKey(lake_key(spec), name) for name in CHECK_NAMES]
    infos = instance.event_log_storage.get_asset_check_partition_info(check_keys)
    by_check: dict[str, dict[str, object]] = {}
    for info in infos:
        by_check.setdefault(info.check_key.name, {})[info.partition_key] = info
    assert set(by_check) == set(CHECK_NAMES)
    for name, months in by_check.items():
        assert sorted(months) == [f"{m}-01" for m in MONTHS], name
        for key, info in months.items():
            assert info.latest_execution_status.value == "SUCCEEDED", (name, key)
            # The result is of the month's current version, not of an older one.
            assert info.latest_target_materialization_storage_id == info.latest_materialization_storage_id
