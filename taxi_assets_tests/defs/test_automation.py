"""Schedules, freshness and the automation wiring of the definitions `dagster dev` loads."""

import datetime as dt

import dagster as dg
import pytest
from dagster._core.definitions.freshness import CronFreshnessPolicy

from taxi_assets.definitions import defs
from taxi_assets.defs.assets.keys import lake_key, mart_key, raw_key, shapes_key, warehouse_key, zones_key
from taxi_assets.spec.datasets import DATASETS

UTC = dt.UTC


@pytest.mark.first_case_in_check
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


def test_freshness_is_one_rule_the_cron_policy_of_every_monthly_asset():
    graph = defs.resolve_asset_graph()
    monthly = {k for spec in DATASETS.values() for k in (raw_key(spec), lake_key(spec), warehouse_key(spec))}
    dbt_monthly = {
        *(dg.AssetKey(["staging", f"stg_{feed}_trips"]) for feed in ("yellow", "green", "fhv", "fhvhv")),
        *(mart_key(name) for name in ("fact_trips", "trips_by_zone", "monthly_zone_revenue")),
    }
    monthly |= dbt_monthly
    zones = {zones_key(layer) for layer in ("raw", "lake", "warehouse")} | {mart_key("dim_zones")}
    zones |= {shapes_key(layer) for layer in ("raw", "lake")}
    assert graph.materializable_asset_keys == monthly | zones
    for key in monthly:
        node = graph.get(key)
        policy = node.freshness_policy
        assert isinstance(policy, CronFreshnessPolicy), key
        assert (policy.deadline_cron, policy.timezone) == ("0 12 15 * *", "UTC")
        # The window opens on the 1st at 00:00, when the newest publishable month becomes a partition.
        deadline = dt.datetime(2026, 11, 15, 12, tzinfo=UTC)
        assert deadline - policy.lower_bound_delta == dt.datetime(2026, 11, 1, tzinfo=UTC)
        assert "between the 1st and the 15th of each month (12:00 UTC)" in node.description, key
    # The zone lookup and shapes are unpartitioned and refreshed by hand: no policy.
    assert all(graph.get(key).freshness_policy is None for key in zones)
    # No second mechanism that could disagree with the policy on the same page.
    assert not [k for k in graph.asset_check_keys if "freshness" in k.name]
    assert not [s.name for s in defs.sensors if "freshness" in s.name]


def test_freshness_and_automation_are_applied_once_where_the_definitions_are_assembled():
    # The layers build their assets bare; definitions.py applies defs/policies.py to all of them.
    from taxi_assets.defs.assets import lake, marts, raw, warehouse

    for layer in (raw.raw_layer, lake.lake_layer, warehouse.warehouse_layer, marts.dbt_models):
        specs = [spec for assets_def in layer().assets for spec in assets_def.specs]
        assert specs, layer
        applied = [s.key for s in specs if s.freshness_policy is not None or s.automation_condition is not None]
        assert applied == [], layer
    graph = defs.resolve_asset_graph()
    labels = {key: graph.get(key).automation_condition for key in graph.materializable_asset_keys}
    marts_keys = {key for key in labels if graph.get(key).group_name == marts.MART_GROUP}
    assert {labels[key].get_label() for key in marts_keys} == {"month_complete", "zones_loaded"}
    assert labels[mart_key("dim_zones")].get_label() == "zones_loaded"
    assert all(labels[key] is None for key in labels.keys() - marts_keys)
