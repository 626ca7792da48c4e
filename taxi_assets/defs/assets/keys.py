"""Asset keys per layer. The UI labels a node with a key's last part, so that part names
the layer too: raw/{dataset}_raw, lake/{dataset}_lake, warehouse/{dataset}_trips; the zone
lookup's raw/taxi_zone_lookup_raw, lake/taxi_zone_lookup_lake, warehouse/taxi_zone_lookup;
the marts' mart/{table}.

Keys before this naming were raw/{dataset} and lake/{dataset} (and the zone lookup's
without suffix); LEGACY_KEYS maps them for the migration. Lake folders on disk keep their
names (storage/io_manager.py strips the suffix).
"""

import dagster as dg

from taxi_assets.geo.shapes import SHAPES_TABLE
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.transform.zones import ZONES_TABLE


def raw_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["raw", f"{spec.name}_raw"])


def lake_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["lake", f"{spec.name}_lake"])


def warehouse_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", spec.table])


def zones_key(layer: str) -> dg.AssetKey:
    """raw/taxi_zone_lookup_raw, lake/taxi_zone_lookup_lake or warehouse/taxi_zone_lookup."""
    return dg.AssetKey([layer, ZONES_TABLE if layer == "warehouse" else f"{ZONES_TABLE}_{layer}"])


def shapes_key(layer: str) -> dg.AssetKey:
    """raw/taxi_zone_shapes_raw or lake/taxi_zone_shapes_lake (the lead's naming: the last
    part names the layer; the lake folders are taxi_zone_shapes, see storage/io_manager.py)."""
    return dg.AssetKey([layer, f"{SHAPES_TABLE}_{layer}"])


def mart_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["mart", table])
