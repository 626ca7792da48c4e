"""Schedules, freshness and the automation wiring of the definitions `dagster dev` loads."""

import datetime as dt

import dagster as dg
import pytest

from taxi_assets.datasets import DATASETS
from taxi_assets.defs.assets.keys import lake_key, mart_key, raw_key, warehouse_key, zones_key
from taxi_assets.definitions import defs

UTC = dt.timezone.utc


def months_before(day: dt.datetime, n: int) -> str:
    index = day.year * 12 + day.month - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}-01"


@pytest.mark.parametrize(
    "when, expected",
    [
        # Published roughly two months after it ends: on 5 July, April is the latest month.
        (dt.datetime(2024, 7, 5, 6, tzinfo=UTC), "2024-04-01"),
        (dt.datetime(2025, 1, 5, 6, tzinfo=UTC), "2024-10-01"),
    ],
)
def test_monthly_schedule_requests_the_latest_month_that_should_be_published(when, expected):
    schedule = defs.resolve_schedule_def("yellow_monthly_schedule")
    assert schedule.cron_schedule == "0 6 5 * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "yellow_month_job"
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        ) as context,
    ):
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.partition_key == expected
        assert request.run_key == expected  # a tick evaluated twice launches one run
        assert request.tags["taxi/trigger"] == "schedule"

        # Once a sensor has loaded that month, the schedule's tick skips it.
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=warehouse_key(DATASETS["yellow"]), partition=expected)
        )
        tick = schedule.evaluate_tick(context)
        assert tick.run_requests == []
        assert tick.skip_message == f"yellow {expected[:7]} is already in the warehouse"


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_each_dataset_has_its_sensors_schedule_and_job(dataset):
    spec = DATASETS[dataset]
    job = defs.resolve_job_def(f"{dataset}_month_job")
    assert job.asset_layer.selected_asset_keys == {raw_key(spec), lake_key(spec), warehouse_key(spec)}
    # The lake checks run in the same job, so they can block its warehouse step.
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys if k.asset_key == lake_key(spec)} >= {
        "schema_matches_spec",
        "has_rows",
    }
    for name in (f"{dataset}_new_month_sensor", f"{dataset}_republished_month_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.job_name == f"{dataset}_month_job"
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert sensor.minimum_interval_seconds == 3600
    assert defs.resolve_schedule_def(f"{dataset}_monthly_schedule").job_name == f"{dataset}_month_job"


def test_every_monthly_asset_has_a_freshness_policy_and_a_partition_freshness_check():
    graph = defs.resolve_asset_graph()
    monthly = {k for spec in DATASETS.values() for k in (raw_key(spec), lake_key(spec), warehouse_key(spec))}
    dbt_monthly = {
        *(dg.AssetKey(["staging", f"stg_{feed}_trips"]) for feed in ("yellow", "green", "fhv", "fhvhv")),
        *(mart_key(name) for name in ("fact_trips", "trips_by_zone", "monthly_zone_revenue")),
    }
    monthly |= dbt_monthly
    zones = {zones_key(layer) for layer in ("raw", "lake", "warehouse")} | {mart_key("dim_zones")}
    assert graph.materializable_asset_keys == monthly | zones
    for key in monthly:
        policy = graph.get(key).freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy), key
        assert policy.fail_window.to_timedelta() == dt.timedelta(days=45)
        assert policy.warn_window.to_timedelta() == dt.timedelta(days=35)
    # The zone lookup is unpartitioned and refreshed by hand: no policy, no per-month check.
    assert all(graph.get(key).freshness_policy is None for key in zones)
    freshness_checks = {k.asset_key for k in graph.asset_check_keys if k.name == "freshness_check"}
    assert freshness_checks == monthly
    sensor = defs.resolve_sensor_def("freshness_checks_sensor")
    assert {k.asset_key for k in sensor.asset_selection.resolve_checks(graph)} == monthly


def test_partition_freshness_check_expects_the_latest_publishable_month():
    # The check's deadline is 12:00 UTC on the 15th; the month it expects is three months
    # before the deadline's month (the month before it, minus two months of publication lag).
    now = dt.datetime.now(UTC)
    deadline = now.replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    if deadline > now:
        deadline = (deadline.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
    expected = months_before(deadline, 3)

    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=raw_key(DATASETS["yellow"]), partition=expected))
    check_keys = [
        dg.AssetCheckKey(raw_key(DATASETS[name]), "freshness_check") for name in ("yellow", "green")
    ]
    job = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*check_keys))],
        resources=defs.resources,
    ).resolve_job_def("freshness")
    result = job.execute_in_process(instance=instance)
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert checks["yellow"].passed
    assert not checks["green"].passed
    assert checks["green"].severity == dg.AssetCheckSeverity.WARN
    assert expected in checks["green"].description
