"""The dbt models build themselves when their month is complete: Dagster's own evaluation of
their AutomationConditions (what the sensor does each tick), on an instance where the
warehouse tables' months are reported materialized one feed at a time."""

import dagster as dg

from taxi_assets.definitions import defs
from taxi_assets.defs.assets.keys import mart_key, zones_key
from taxi_assets.defs.assets.marts import AUTOMATION_SENSOR_NAME, MART_GROUP

MONTH, NEXT = "2021-01-01", "2021-02-01"
STAGING = dg.AssetKey(["staging", "stg_yellow_trips"])
MARTS = [mart_key("fact_trips"), mart_key("trips_by_zone"), mart_key("monthly_zone_revenue")]


def feed_tables(graph) -> list[dg.AssetKey]:
    """The warehouse tables the staging views read (one per feed)."""
    return sorted(
        {p for k in graph.get_all_asset_keys() if k.path[0] == "staging" for p in graph.get(k).parent_keys},
        key=lambda k: k.to_user_string(),
    )


def land(instance: dg.DagsterInstance, key: dg.AssetKey, graph, partition: str | None = None) -> None:
    partitioned = graph.get(key).partitions_def is not None
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition if partitioned else None))


class Sensor:
    """The automation sensor's ticks; each tick's requests are then run (reported materialized)."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None
        self.graph = defs.resolve_asset_graph()
        self.keys = dg.AssetSelection.groups(MART_GROUP).resolve(self.graph)

    def tick(self) -> dict[dg.AssetKey, set]:
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(*self.keys),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        requested = {k: set(result.get_requested_partitions(k)) for k in self.keys}
        requested = {k: v for k, v in requested.items() if v}
        for key, partitions in requested.items():
            for partition in partitions:
                land(self.instance, key, self.graph, partition)
        return requested

    def until_quiet(self) -> dict[dg.AssetKey, set]:
        """Ticks until one requests nothing: everything requested on the way."""
        everything: dict[dg.AssetKey, set] = {}
        while requested := self.tick():
            for key, partitions in requested.items():
                everything.setdefault(key, set()).update(partitions)
        return everything


def test_a_month_builds_once_every_feed_of_it_is_in_and_not_before():
    with dg.instance_for_test() as instance:
        sensor = Sensor(instance)
        assert sensor.until_quiet() == {}  # nothing loaded: nothing to build

        land(instance, zones_key("warehouse"), sensor.graph)
        assert sensor.until_quiet() == {mart_key("dim_zones"): {None}}

        *first, last = feed_tables(sensor.graph)
        for table in first:
            land(instance, table, sensor.graph, MONTH)
        requested = sensor.until_quiet()
        # The loaded feeds' views may be refreshed, but the month is not complete: no marts.
        assert not set(MARTS) & set(requested), requested

        land(instance, last, sensor.graph, MONTH)
        requested = sensor.until_quiet()
        for key in MARTS:
            assert requested[key] == {MONTH}, key

        # A feed of the month loaded again rebuilds that month only; nothing of the next month.
        land(instance, first[0], sensor.graph, MONTH)
        requested = sensor.until_quiet()
        assert requested[mart_key("trips_by_zone")] == {MONTH}
        assert all(NEXT not in partitions for partitions in requested.values())


def test_the_automation_sensor_is_off_by_default_and_targets_the_dbt_models():
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)
    assert {mart_key("trips_by_zone"), mart_key("monthly_zone_revenue"), mart_key("dim_zones"), STAGING} <= targeted
    assert all(graph.get(k).automation_condition is not None for k in targeted)
