"""Asset keys per layer: raw/{dataset}, lake/{dataset}, warehouse/{dataset}_trips;
the zone lookup's {layer}/taxi_zone_lookup and the marts' mart/{table}."""

import dagster as dg

from taxi_assets.datasets import DatasetSpec
from taxi_assets.geo.shapes import SHAPES_TABLE
from taxi_assets.zones import ZONES_TABLE


def raw_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["raw", spec.name])


def lake_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["lake", spec.name])


def warehouse_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", spec.table])


def zones_key(layer: str) -> dg.AssetKey:
    """raw/, lake/ or warehouse/taxi_zone_lookup."""
    return dg.AssetKey([layer, ZONES_TABLE])


def shapes_key(layer: str) -> dg.AssetKey:
    """raw/taxi_zone_shapes_raw or lake/taxi_zone_shapes_lake (the lead's naming: the last
    part names the layer; the lake folders are taxi_zone_shapes, see storage/io_manager.py)."""
    return dg.AssetKey([layer, f"{SHAPES_TABLE}_{layer}"])


def mart_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["mart", table])
