"""Helpers of the reliability tests: run with source options, read a run's failure,
and take the whole state of a platform (every lake file, the warehouse table) to
compare before and after."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import partition_key
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.helpers import mirror_file


def materialize(
    platform: Platform, spec: DatasetSpec, month: str, instance: dg.DagsterInstance | None = None, **source_options
) -> dg.ExecuteInProcessResult:
    """All three layers of one month, never raising; source_options configure TaxiSource."""
    resources = platform.resources()
    resources["source"] = TaxiSource(
        url_template=platform.source_url, zones_url=platform.zones_url, **{"backoff_s": 0.01, **source_options}
    )
    return dg.materialize(
        build_dataset_assets(spec, "duckdb"),
        partition_key=partition_key(month),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def logged(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The messages assets logged (context.log) in a run."""
    return [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None]


def failure(result: dg.ExecuteInProcessResult) -> tuple[str, str, str]:
    """(step, error class, message) of the run's one failed step, as its event log holds it;
    step is None when a resource failed to start (the run stopped before any step)."""
    assert not result.success
    (event,) = [e for e in result.all_events if e.event_type_value in ("STEP_FAILURE", "RESOURCE_INIT_FAILURE")]
    error = event.event_specific_data.error
    cause = error.cause or error
    # The stored message reads "package.module.Class: text".
    return event.step_key, cause.cls_name, cause.message.strip().split(": ", 1)[1]


def lake_files(platform: Platform) -> dict[str, str]:
    """Every file under the lake root, dot-files included, with its sha256."""
    root = platform.lake().root
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def warehouse_rows(platform: Platform, spec: DatasetSpec) -> pa.Table:
    warehouse = platform.warehouse()
    warehouse.month_row_counts(spec)  # creates the (empty) table on a fresh platform
    return warehouse.query(f"SELECT * FROM {spec.table} ORDER BY ALL")


@dataclass
class State:
    lake: dict[str, str]
    warehouse: pa.Table

    @classmethod
    def of(cls, platform: Platform, spec: DatasetSpec) -> State:
        return cls(lake_files(platform), warehouse_rows(platform, spec))

    def assert_same(self, other: State) -> None:
        assert other.lake == self.lake
        assert other.warehouse.equals(self.warehouse)


def lake_table(platform: Platform, dataset: str, month: str) -> pa.Table:
    return pq.read_table(platform.lake().root / dataset / f"month={month}" / "part-0.parquet")


def edited_source(mirror_root: Path, dataset: str, month: str, edit: Callable[[list[str]], None]) -> bytes:
    """The mirror's gzip CSV of the month with its lines (header first) edited in place."""
    lines = gzip.decompress(mirror_file(mirror_root, dataset, month).read_bytes()).decode().splitlines()
    edit(lines)
    return gzip.compress(("\n".join(lines) + "\n").encode())


def set_field(lines: list[str], line: int, column: str, value: str) -> None:
    """Put value into one field of one line (0 is the header), by column name."""
    header = lines[0].split(",")
    fields = lines[line].split(",")
    fields[header.index(column)] = value
    lines[line] = ",".join(fields)


@pytest.fixture(scope="session")
def clean_platform(mirror, tmp_path_factory) -> Platform:
    """yellow 2021-01 after one clean run on a fresh platform: what every rerun must equal."""
    root = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TAXI_STAGING_DIR", str(root / "staging"))
        platform = Platform(root, mirror.url_template)
        assert materialize(platform, DATASETS["yellow"], "2021-01").success
    return platform


@pytest.fixture(scope="session")
def clean_state(clean_platform) -> State:
    return State.of(clean_platform, DATASETS["yellow"])


@pytest.fixture
def source(mirror):
    """The session mirror with no faults and fresh request counts, and none left behind."""
    mirror.clear_faults()
    mirror.reset_counts()
    yield mirror
    mirror.clear_faults()


@pytest.fixture
def good(platform, source, clean_platform) -> State:
    """A previous good version of yellow 2021-01, in the lake and the warehouse: a copy of
    the session's clean run (clean_platform), the very files the same run writes again."""
    shutil.copytree(clean_platform.lake().root, platform.lake().root)
    for file in clean_platform.root.glob("warehouse.duckdb*"):  # the database and any WAL
        shutil.copy2(file, platform.root / file.name)
    return State.of(platform, DATASETS["yellow"])
