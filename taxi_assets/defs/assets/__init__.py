"""The assets. Each layer's module builds its asset for every dataset of the spec table and
contributes them (`@dg.definitions`): raw.py, lake.py, warehouse.py; the zone lookup's three
layers and the shapes in zones.py and zone_shapes.py, the dbt marts in marts.py (their maps
in mart_map.py). keys.py, metadata.py and staging.py are helpers (no definitions)."""

from __future__ import annotations

import dagster as dg

from taxi_assets.defs.assets.lake import build_lake_asset
from taxi_assets.defs.assets.raw import build_raw_asset
from taxi_assets.defs.assets.warehouse import build_warehouse_asset
from taxi_assets.defs.resources import load_settings
from taxi_assets.spec.datasets import DatasetSpec


def build_dataset_assets(spec: DatasetSpec, warehouse_kind: str) -> list[dg.AssetsDefinition]:
    """raw -> lake -> warehouse of one dataset, as the tests materialize them (the download
    pool from the environment, as the definitions take it)."""
    pool = load_settings().download_pool
    return [build_raw_asset(spec, pool), build_lake_asset(spec), build_warehouse_asset(spec, warehouse_kind)]
