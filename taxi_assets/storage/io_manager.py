"""The lake I/O manager: publishes staged files under the lake layout and hands
downstream assets the published objects, so assets never know where the lake is.

Layout (hive-style, readable by DuckDB/BigQuery/Spark as it is):
    raw/{dataset}/month=YYYY-MM/{file name as published}
    {dataset}/month=YYYY-MM/part-0.parquet
"""

from __future__ import annotations

import dagster as dg

from taxi_assets.months import normalize_month
from taxi_assets.storage.gcp import credentials_field
from taxi_assets.storage.lake import LakeObject, LakeStore, StagedFile, lake_store_from_uri


def partition_folder(asset_key: dg.AssetKey, partition_key: str) -> str:
    """The lake folder of one month of one asset: raw/{dataset}/... or {dataset}/..."""
    layer, name = asset_key.path[0], asset_key.path[-1]
    base = f"raw/{name}" if layer == "raw" else name
    return f"{base}/month={normalize_month(partition_key)}"


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores `StagedFile` outputs in the lake; loads inputs as {partition_key: LakeObject}."""

    lake_uri: str
    gcp_credentials_json: str | None = credentials_field()

    def store(self) -> LakeStore:
        return lake_store_from_uri(self.lake_uri, credentials_json=self.gcp_credentials_json)

    def handle_output(self, context: dg.OutputContext, obj: StagedFile) -> None:
        if obj is None:
            return
        store = self.store()
        folder = partition_folder(context.asset_key, context.asset_partition_key)
        relpath = f"{folder}/{obj.path.name}"
        try:
            store.publish(obj.path, relpath)
        finally:
            obj.discard()
        # A month has one file: drop an older one of another name (e.g. csv.gz -> parquet source).
        for other in store.list(folder):
            if other != relpath:
                store.delete(other)
        context.add_output_metadata({"uri": dg.MetadataValue.path(store.uri(relpath))})

    def load_input(self, context: dg.InputContext) -> dict[str, LakeObject]:
        store = self.store()
        upstream = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        objects: dict[str, LakeObject] = {}
        for key in context.asset_partition_keys:
            files = store.list(partition_folder(upstream, key))
            if not files:
                raise FileNotFoundError(
                    f"{upstream.to_user_string()} {normalize_month(key)} is not in the lake "
                    f"({store.uri(partition_folder(upstream, key))}): materialize it first"
                )
            objects[key] = LakeObject(store, files[0])
        return objects
