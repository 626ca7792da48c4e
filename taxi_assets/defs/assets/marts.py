"""The analytics layer as assets: the dbt project's models (taxi_assets/analytics/dbt_project),
downstream of the warehouse tables (the dbt sources), with the dbt tests as asset checks.

- staging/stg_{feed}_trips (views), mart/fact_trips (a view), mart/trips_by_zone and
  mart/monthly_zone_revenue (incremental, one month per run): monthly partitions, from the
  earliest first month of any dataset; a run builds one month (`--vars {month: ...}`).
- mart/dim_zones: a table, unpartitioned, rebuilt when the zone lookup is.
- Automation (off until its sensor is turned on): a month's models build once every feed
  that has the month is in the warehouse; dim_zones after the zone lookup (the conditions are
  applied with the freshness policy where the definitions are assembled: defs/policies.py).

The dbt plumbing is taxi_assets/analytics/: the specs come from the prepared manifest
(manifest.py, dagster-dbt's translator without importing dbt-core at load), the `dbt`
resource runs dbt in the step (runner.py), a month's figures and map are month_metadata.py.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from taxi_assets.analytics.manifest import EXCLUDE_TAG, SELECT_TAG, ManifestTranslator, read_manifest
from taxi_assets.analytics.month_metadata import PickupMaps, month_figures
from taxi_assets.analytics.project import MANIFEST_PATH, dbt_vars, prepare_manifest
from taxi_assets.analytics.runner import DbtCli, dbt_resource
from taxi_assets.defs.assets.keys import mart_key, shapes_key, warehouse_key, zones_key
from taxi_assets.defs.policies import MART_GROUP
from taxi_assets.defs.resources import load_settings
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import any_monthly_partitions
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.warehouse import Warehouse
from taxi_assets.transform.zones import ZONES_TABLE

MONTHLY_TAG = "monthly"
MONTHLY_SELECT = f"tag:{MONTHLY_TAG}"
AUTOMATION_SENSOR_NAME = "marts_automation_sensor"
TRIPS_BY_ZONE = mart_key("trips_by_zone")


class TaxiDbtTranslator(ManifestTranslator):
    """dbt sources are the warehouse assets; staging models get staging/, the others mart/."""

    def __init__(self, manifest: Mapping[str, Any], warehouse_kind: str):
        super().__init__(manifest)
        self.warehouse_kind = warehouse_kind

    def get_asset_spec(self, unique_id: str) -> dg.AssetSpec:
        spec = super().get_asset_spec(unique_id)
        # The manifest is parsed for DuckDB (analytics.prepare_manifest): the kind is the warehouse's.
        spec = spec.replace_attributes(kinds={"dbt", self.warehouse_kind})
        if spec.key == TRIPS_BY_ZONE:  # each month's pickup map is drawn from the lake's zone shapes
            spec = spec.merge_attributes(deps=[shapes_key("lake")])
        return spec

    def get_asset_key(self, props: Mapping[str, Any]) -> dg.AssetKey:
        if props["resource_type"] == "source":
            name = props["name"]
            if name == ZONES_TABLE:
                return zones_key("warehouse")
            spec = next((s for s in DATASETS.values() if s.table == name), None)
            # A feed the spec table does not have yet keeps its meta.dagster.asset_key.
            return warehouse_key(spec) if spec else super().get_asset_key(props)
        layer = "staging" if props["fqn"][1] == "staging" else None
        return dg.AssetKey([layer, props["name"]]) if layer else mart_key(props["name"])

    def get_group_name(self, props: Mapping[str, Any]) -> str:
        return MART_GROUP

    def get_metadata(self, props: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**super().get_metadata(props), "dagster/table_name": props.get("alias") or props["name"]}

    def get_partition_mapping(self, props: Mapping[str, Any], parent: Mapping[str, Any]) -> dg.PartitionMapping | None:
        if parent["resource_type"] == "source" and any(s.table == parent["name"] for s in DATASETS.values()):
            # A feed's table starts at its own first month: earlier months have no partition of it.
            return dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
        return None


def build_dbt_assets(warehouse_kind: str) -> list[dg.AssetsDefinition]:
    # Built by `make install`; rebuilt here only when a project file is newer (a stat per file).
    prepare_manifest()
    translator = TaxiDbtTranslator(read_manifest(MANIFEST_PATH), warehouse_kind)
    monthly_specs, monthly_checks = translator.build_specs(lambda props: MONTHLY_TAG in props.get("tags", []))
    zone_specs, zone_checks = translator.build_specs(lambda props: MONTHLY_TAG not in props.get("tags", []))

    @dg.multi_asset(
        name="dbt_monthly_models",
        specs=monthly_specs,
        check_specs=monthly_checks,
        can_subset=True,
        op_tags={SELECT_TAG: MONTHLY_SELECT},
        partitions_def=any_monthly_partitions(DATASETS.values()),
        # One month per run: each month's build, tests and figures are that partition's.
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    )
    def dbt_monthly_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCli,
        warehouse: Warehouse,
        lake_io_manager: dg.ResourceParam[LakeIOManager],
    ):
        month = normalize_month(context.partition_key)
        events, failure = dbt.run(context, warehouse, translator, ["build", "--vars", dbt_vars(month)])
        for event in events:
            if isinstance(event, dg.MaterializeResult) and (
                figures := month_figures(warehouse, month, event.asset_key.path[-1])
            ):
                if event.asset_key == TRIPS_BY_ZONE:
                    maps = PickupMaps(lake_io_manager, shapes_key("lake"), context.log)
                    figures.update(maps.metadata(warehouse, warehouse.table_ref("trips_by_zone"), month))
                event = dg.MaterializeResult(asset_key=event.asset_key, metadata={**(event.metadata or {}), **figures})
            yield event
        if failure is not None:
            raise failure

    @dg.multi_asset(
        name="dbt_zone_models",
        specs=zone_specs,
        check_specs=zone_checks,
        can_subset=True,
        op_tags={SELECT_TAG: "fqn:*", EXCLUDE_TAG: MONTHLY_SELECT},
    )
    def dbt_zone_models(context: dg.AssetExecutionContext, dbt: DbtCli, warehouse: Warehouse):
        events, failure = dbt.run(context, warehouse, translator, ["build"])
        yield from events
        if failure is not None:
            raise failure

    return [dbt_monthly_models, dbt_zone_models]


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=dg.AssetSelection.groups(MART_GROUP),
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Builds a month's dbt models once every feed of that month is in the warehouse.",
    )


@dg.definitions
def dbt_models() -> dg.Definitions:
    """The dbt models as assets, and the sensor that builds a month's once its feeds are in."""
    assets = build_dbt_assets(load_settings().warehouse_kind)
    return dg.Definitions(
        assets=assets,
        sensors=[build_automation_sensor()],
        # The dbt project's models run against `warehouse` (DbtCli.run points dbt at it).
        resources={"dbt": dbt_resource()},
    )
