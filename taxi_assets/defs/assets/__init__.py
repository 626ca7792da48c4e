"""The asset factory: three layers per dataset, all derived from the spec table, plus the
zone lookup's three layers and the dbt models (staging, dim_zones, fact_trips, marts) on them."""

from __future__ import annotations

import dagster as dg

from taxi_assets.datasets import DATASETS, DatasetSpec
from taxi_assets.defs.assets.lake import build_lake_asset
from taxi_assets.defs.assets.marts import build_dbt_assets
from taxi_assets.defs.assets.raw import build_raw_asset
from taxi_assets.defs.assets.warehouse import build_warehouse_asset
from taxi_assets.defs.assets.zone_shapes import build_zone_shape_assets
from taxi_assets.defs.assets.zones import build_zone_assets
from taxi_assets.defs.freshness import with_freshness_policy


def build_dataset_assets(spec: DatasetSpec, warehouse_kind: str) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(spec), build_lake_asset(spec), build_warehouse_asset(spec, warehouse_kind)]


def build_all_assets(warehouse_kind: str) -> list[dg.AssetsDefinition]:
    return with_freshness_policy(
        [
            *(a for spec in DATASETS.values() for a in build_dataset_assets(spec, warehouse_kind)),
            *build_zone_assets(warehouse_kind),
            *build_zone_shape_assets(),
            *build_dbt_assets(warehouse_kind),
        ]
    )
