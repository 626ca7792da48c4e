"""The dbt models build themselves when their month is complete: Dagster's own evaluation of
their AutomationConditions (what the sensor does each tick), on an instance where the
warehouse tables' months are reported materialized one feed at a time."""

from collections.abc import Callable

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.definitions import defs
from taxi_assets.defs.assets.keys import mart_key, warehouse_key, zones_key
from taxi_assets.defs.assets.marts import AUTOMATION_SENSOR_NAME, MART_GROUP
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse
from taxi_assets.storage.lake import LakeObject, LocalLakeStore
from taxi_assets.transform.zones import ZONES_SCHEMA, ZONES_TABLE
from taxi_assets_tests.analytics.test_marts import read_zones, taxi_trip, write_trips
from taxi_assets_tests.harness import TEST_DATA, Platform, all_assets

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
    """The automation sensor's ticks; each tick's requests are then run (by default reported
    materialized; `run` can run them for real)."""

    def __init__(self, instance: dg.DagsterInstance, run: Callable[[dict[dg.AssetKey, set]], None] | None = None):
        self.instance, self.cursor = instance, None
        self.fails = lambda key: False  # which assets' runs fail (nothing materialized)
        self.run = run
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
        if self.run is not None:
            self.run(requested)
            return requested
        for key, partitions in requested.items():
            for partition in () if self.fails(key) else partitions:
                land(self.instance, key, self.graph, partition)
        return requested

    def until_quiet(self) -> dict[dg.AssetKey, set]:
        """Ticks until one requests nothing: everything requested on the way."""
        everything: dict[dg.AssetKey, set] = {}
        while requested := self.tick():
            for key, partitions in requested.items():
                everything.setdefault(key, set()).update(partitions)
        return everything


def feeds_of(graph, month: str) -> list[dg.AssetKey]:
    """The feed tables that have `month` (a feed starts at its own first month)."""
    return [t for t in feed_tables(graph) if graph.get(t).partitions_def.has_partition_key(month)]


def staging_of(graph, table: dg.AssetKey) -> dg.AssetKey:
    return next(k for k in graph.get_all_asset_keys() if k.path[0] == "staging" and table in graph.get(k).parent_keys)


# A 2009 month (yellow only), 2014-08 (yellow, green), 2019-02 (every feed), as `make demo` loads them.
USER_MONTHS = ["2009-03-01", "2014-08-01", "2019-02-01"]


def expected_builds(graph, months: list[str]) -> dict[dg.AssetKey, set]:
    """dim_zones, and each month's marts and the staging views of the feeds that have it."""
    expected: dict[dg.AssetKey, set] = {mart_key("dim_zones"): {None}}
    for month in months:
        for key in [*MARTS, *(staging_of(graph, t) for t in feeds_of(graph, month))]:
            expected.setdefault(key, set()).add(month)
    return expected


@pytest.mark.slow
def test_data_loaded_before_the_sensor_is_switched_on_is_built():
    """The README's order: load the zones and the months, then turn the sensor on."""
    with dg.instance_for_test() as instance:
        graph = defs.resolve_asset_graph()
        land(instance, zones_key("warehouse"), graph)
        for month in USER_MONTHS:
            for table in feeds_of(graph, month):
                land(instance, table, graph, month)
        # Only some feeds of 2021-01: not complete, its marts wait.
        *first, last = feeds_of(graph, MONTH)
        for table in first:
            land(instance, table, graph, MONTH)

        sensor = Sensor(instance)  # switched on now
        built = sensor.until_quiet()
        expected = expected_builds(graph, USER_MONTHS)
        for table in first:
            expected.setdefault(staging_of(graph, table), set()).add(MONTH)
        assert built == expected

        land(instance, last, graph, MONTH)
        built = sensor.until_quiet()
        for key in MARTS:
            assert built[key] == {MONTH}, key
        assert built[staging_of(graph, last)] == {MONTH}


@pytest.mark.slow
def test_data_loaded_after_the_sensor_is_switched_on_is_built():
    """The other order: the sensor on first, then the zones, then the months feed by feed."""
    with dg.instance_for_test() as instance:
        sensor = Sensor(instance)
        graph = sensor.graph
        assert sensor.until_quiet() == {}  # nothing loaded: nothing to build

        # The feeds first, the zones last: no month is built before dim_zones can be.
        built: dict[dg.AssetKey, set] = {}
        for month in USER_MONTHS:
            for table in feeds_of(graph, month):
                land(instance, table, graph, month)
                for key, partitions in sensor.until_quiet().items():
                    built.setdefault(key, set()).update(partitions)
        assert not set(MARTS) & set(built), built
        land(instance, zones_key("warehouse"), graph)
        for key, partitions in sensor.until_quiet().items():
            built.setdefault(key, set()).update(partitions)
        assert built == expected_builds(graph, USER_MONTHS)


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_failed_month_is_not_requested_again_until_a_feed_of_it_is_loaded_again():
    with dg.instance_for_test() as instance:
        graph = defs.resolve_asset_graph()
        land(instance, zones_key("warehouse"), graph)
        land(instance, mart_key("dim_zones"), graph)
        sensor = Sensor(instance)
        sensor.fails = lambda key: key.path[0] == "mart"  # the views build, fact_trips fails
        for table in feeds_of(graph, MONTH):
            land(instance, table, graph, MONTH)
        assert MONTH in sensor.tick()[mart_key("fact_trips")]
        assert sensor.tick() == {} and sensor.tick() == {}
        land(instance, feeds_of(graph, MONTH)[0], graph, MONTH)
        assert MONTH in sensor.tick()[mart_key("fact_trips")]


@pytest.mark.integration
@pytest.mark.slow  # dbt builds the marts
def test_the_sensors_runs_build_a_month_loaded_before_it_was_on_without_failing(tmp_path):
    """Real dbt runs of what the sensor requests, in the user's order: the zone lookup and
    yellow 2010-05 (the other feeds have not started: their tables do not exist) loaded, then
    the sensor on. The month's run goes before dim_zones' (as the daemon may launch them): the
    staging view's zone tests, documented as warnings, warn and do not fail it."""
    month = "2010-05"
    platform = Platform(root=tmp_path, source_url="http://127.0.0.1:9/{dataset}_tripdata_{month}.csv.gz")
    lake = tmp_path / "lake"
    warehouse = DuckDBWarehouse.at(tmp_path / "warehouse.duckdb")
    lake.mkdir()
    zones = read_zones(TEST_DATA / "taxi_zone_lookup.csv")
    pq.write_table(pa.Table.from_pandas(zones, schema=ZONES_SCHEMA, preserve_index=False), lake / "zones.parquet")
    warehouse.replace_table(ZONES_TABLE, LakeObject(LocalLakeStore(lake), "zones.parquet"), ZONES_SCHEMA)
    yellow = write_trips(lake, "yellow", month, [taxi_trip("tpep", 1, "08:00:00", "08:10:00", 7, 10.0, 1.0)])
    warehouse.replace_months(DATASETS["yellow"], {partition_key(month): yellow})
    assets, results = all_assets(), []

    def run(requested: dict[dg.AssetKey, set]) -> None:
        by_partition: dict[str | None, list[dg.AssetKey]] = {}
        for key, partitions in requested.items():
            for partition in partitions:
                by_partition.setdefault(partition, []).append(key)
        for partition in sorted(by_partition, key=lambda p: p is None):  # the month's run first
            result = dg.materialize(
                assets,
                selection=dg.AssetSelection.assets(*by_partition[partition]),
                partition_key=partition,
                instance=instance,
                resources=platform.resources(),
                raise_on_error=False,
            )
            results.append((partition, sorted(k.to_user_string() for k in by_partition[partition]), result))

    with dg.instance_for_test() as instance:
        graph = defs.resolve_asset_graph()
        land(instance, zones_key("warehouse"), graph)
        land(instance, warehouse_key(DATASETS["yellow"]), graph, partition_key(month))
        built = Sensor(instance, run).until_quiet()

    failed = [(p, keys) for p, keys, result in results if not result.success]
    assert not failed, failed
    assert built == expected_builds(graph, [partition_key(month)])
    rows = warehouse.query("SELECT dataset, trips FROM trips_by_zone").to_pylist()
    assert rows == [{"dataset": "yellow", "trips": 1}]


def test_the_automation_sensor_is_off_by_default_and_targets_the_dbt_models():
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)
    assert {mart_key("trips_by_zone"), mart_key("monthly_zone_revenue"), mart_key("dim_zones"), STAGING} <= targeted
    assert all(graph.get(k).automation_condition is not None for k in targeted)
