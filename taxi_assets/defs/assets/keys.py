"""Asset keys per layer: raw/{dataset}, lake/{dataset}, warehouse/{dataset}_trips."""

import dagster as dg

from taxi_assets.datasets import DatasetSpec


def raw_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["raw", spec.name])


def lake_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["lake", spec.name])


def warehouse_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", spec.table])
