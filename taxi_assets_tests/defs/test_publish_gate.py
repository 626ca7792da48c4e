"""Blocking checks gate publishing: a new version of a month that fails one never
replaces the lake's good version, and a warehouse-only reload still loads the good one.

The session mirror serves a good yellow 2021-01 (with one malformed row, so the good
version has a quarantine file too); then the same URL serves a bad version.
"""

import dagster as dg
import pytest

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.helpers import csv_data_rows, mirror_file
from taxi_assets_tests.reliability import State, edited_source, failure, materialize, set_field
from taxi_tools.mirror import Fault
from taxi_tools.mirror.generator import relpath

YELLOW = DATASETS["yellow"]
FILE = relpath("yellow", "2021-01")


def bad_version(kind: str, mirror_root) -> bytes:
    if kind == "empty":  # the header only
        return edited_source(mirror_root, "yellow", "2021-01", lambda lines: lines.__delitem__(slice(1, None)))
    if kind == "no_pickup_times":  # an empty pickup field in every row

        def blank(lines):
            for i in range(1, len(lines)):
                set_field(lines, i, "tpep_pickup_datetime", "")

        return edited_source(mirror_root, "yellow", "2021-01", blank)
    # wrong month: February's trips served as January's
    return mirror_file(mirror_root, "yellow", "2021-02").read_bytes()


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "kind, check",
    [("empty", "has_rows"), ("wrong_month", "pickups_in_month"), ("no_pickup_times", "columns_have_values")],
)
def test_a_version_failing_a_blocking_check_replaces_nothing(platform, mirror, mirror_root, kind, check):
    good_source = edited_source(
        mirror_root, "yellow", "2021-01", lambda lines: set_field(lines, 7, "passenger_count", "two")
    )
    mirror.set_fault(FILE, Fault("body", body=good_source))
    try:
        assert materialize(platform, YELLOW, "2021-01").success
        good = State.of(platform, YELLOW)
        assert any(path.startswith("quarantine/yellow/month=2021-01/") for path in good.lake)
        good_rows = csv_data_rows(mirror_file(mirror_root, "yellow", "2021-01")) - 1
        assert platform.warehouse().month_row_counts(YELLOW) == {"2021-01": good_rows}

        mirror.set_fault(FILE, Fault("body", body=bad_version(kind, mirror_root)))
        with dg.DagsterInstance.ephemeral() as instance:
            result = materialize(platform, YELLOW, "2021-01", instance=instance)
            step, error, message = failure(result)
            assert (step, error) == ("lake__yellow_lake", "CheckFailedError")
            assert message.startswith("yellow 2021-01: not published")
            assert f"[{check}]" in message and "raw/yellow/month=2021-01/yellow_tripdata_2021-01.csv.gz" in message
            (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
            assert not evaluation.passed and evaluation.partition == "2021-01-01"
            assert evaluation.severity == dg.AssetCheckSeverity.ERROR
            assert not result.asset_materializations_for_node("lake__yellow_lake")
    finally:
        mirror.clear_faults()

    after = State.of(platform, YELLOW)
    # The lake's month (Parquet and quarantine file) is byte for byte the good one; the raw
    # layer holds the file as the source served it, which is what raw means.
    lake_only = lambda state: {p: h for p, h in state.lake.items() if not p.startswith("raw/")}  # noqa: E731
    assert lake_only(after) == lake_only(good)
    assert after.warehouse.equals(good.warehouse)

    # A warehouse-only reload (the README's recovery) loads the good version again.
    reload = dg.materialize(
        build_dataset_assets(YELLOW, "duckdb"),
        selection="key:warehouse/yellow_trips",
        partition_key="2021-01-01",
        resources=platform.resources(),
    )
    assert reload.success
    assert platform.warehouse().month_row_counts(YELLOW) == {"2021-01": good_rows}
    assert State.of(platform, YELLOW).warehouse.equals(good.warehouse)
