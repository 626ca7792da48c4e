"""The lake I/O manager: publishes staged files under the lake layout and hands
downstream assets the published objects, so assets never know where the lake is.

Layout (hive-style, readable by DuckDB/BigQuery/Spark as it is):
    raw/{dataset}/month=YYYY-MM/{file name as published}
    {dataset}/month=YYYY-MM/part-0.parquet
    quarantine/{dataset}/month=YYYY-MM/rows.csv   malformed rows set aside (only if any)
Unpartitioned assets (the zone lookup) have no month folder:
    raw/{name}/{file name as published}
    {name}/part-0.parquet

Quarantine files live under their own prefix so that readers of a dataset's
folders only ever see its Parquet files. An asset may publish files derived from its
file beside it (`StagedFile.sidecars`, names starting with "_": the zone shapes' index,
taxi_zone_shapes/_zone_index.npz); `published` hands out the data file, or a sidecar by name.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.gcp import credentials_field
from taxi_assets.storage.lake import LakeObject, LakeStore, lake_store_from_uri
from taxi_assets.storage.staging import DEFAULT_STAGING_DIR, StagedFile


def partition_folder(asset_key: dg.AssetKey, partition_key: str | None) -> str:
    """The lake folder of one month of one asset (raw/{dataset}/... or {dataset}/...),
    or of an unpartitioned asset when partition_key is None."""
    layer = asset_key.path[0]
    # Keys end in their layer (lake/yellow_lake) but the folders kept their names (yellow).
    name = asset_key.path[-1].removesuffix(f"_{layer}")
    base = f"raw/{name}" if layer == "raw" else name
    if partition_key is None:
        return base
    return f"{base}/month={normalize_month(partition_key)}"


def path_metadata(uris: dict[str, str]) -> dict[str, dg.MetadataValue]:
    return {name: dg.MetadataValue.path(uri) for name, uri in uris.items()}


def quarantine_folder(asset_key: dg.AssetKey, partition_key: str | None) -> str:
    return f"quarantine/{partition_folder(asset_key, partition_key)}"


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores `StagedFile` outputs in the lake, one per month of the run ({partition key:
    StagedFile} for a range); loads inputs
    as {partition_key: LakeObject}, or one LakeObject from an unpartitioned asset."""

    lake_uri: str
    gcp_credentials_json: str | None = credentials_field()
    staging_dir: str = Field(
        default=DEFAULT_STAGING_DIR,
        description="Scratch folder (TAXI_STAGING_DIR) where files are built before they are published.",
    )

    def store(self) -> LakeStore:
        return lake_store_from_uri(self.lake_uri, credentials_json=self.gcp_credentials_json, scratch=self.staging_dir)

    def stage(self, name: str) -> StagedFile:
        """A new staged file `name`, in a folder of its own under the staging folder."""
        return StagedFile.new(name, self.staging_dir)

    def handle_output(self, context: dg.OutputContext, obj: StagedFile | dict[str, StagedFile]) -> None:
        """Publish one staged file, or {partition key: staged file} from a run over a range of months."""
        if isinstance(obj, dict):
            files: dict[str | None, StagedFile] = dict(obj)
        else:
            files = {context.asset_partition_key if context.has_asset_partitions else None: obj}
        store = self.store()
        published: dict[str | None, dict[str, str]] = {}
        try:
            missing = set(context.asset_partition_keys if context.has_asset_partitions else [None]) - set(files)
            if missing:
                raise ValueError(f"{context.asset_key.to_user_string()}: no file for {sorted(missing)}")
            for key, staged in files.items():
                published[key] = self._publish(store, context.asset_key, key, staged)
        finally:
            for staged in files.values():
                staged.discard()
        if len(published) == 1:
            (uris,) = published.values()
            context.add_output_metadata(path_metadata(uris))
        else:  # a range: each month's materialization lists its own files only
            for key, uris in published.items():
                context.step_context.add_asset_metadata(
                    path_metadata(uris), asset_key=context.asset_key, partition_key=key
                )

    def _publish(
        self, store: LakeStore, asset_key: dg.AssetKey, partition: str | None, obj: StagedFile
    ) -> dict[str, str]:
        folder = partition_folder(asset_key, partition)
        relpath = f"{folder}/{obj.path.name}"
        quarantine = quarantine_folder(asset_key, partition)
        quarantined = f"{quarantine}/{obj.quarantine.name}" if obj.quarantine else None
        # Set-aside rows first: once the new version is visible, its rows are all somewhere.
        if obj.quarantine is not None:
            store.publish(obj.quarantine, quarantined)
        # Sidecars before the file they derive from; a reader checks that they match it
        # (a run that dies between the two leaves a sidecar of the newer version).
        sidecars = []
        for sidecar in obj.sidecars:
            if not sidecar.name.startswith("_"):
                raise ValueError(f"{asset_key.to_user_string()}: a sidecar's name starts with '_': {sidecar.name}")
            sidecars.append(f"{folder}/{sidecar.name}")
            store.publish(sidecar, sidecars[-1])
        store.publish(obj.path, relpath)
        # A month (or an unpartitioned asset) has one file: drop an older one of another name
        # (e.g. csv.gz -> parquet source), sidecars of an older version, and set-aside rows.
        for other in store.list(folder) + store.list(quarantine):
            if other not in (relpath, quarantined, *sidecars):
                store.delete(other)
        uris = {"uri": store.uri(relpath)}
        if quarantined:
            uris["quarantine_uri"] = store.uri(quarantined)
        return uris

    def load_input(self, context: dg.InputContext) -> dict[str, LakeObject] | LakeObject:
        store = self.store()
        upstream = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        if not context.has_asset_partitions:
            return published(store, upstream, None)
        return {key: published(store, upstream, key) for key in context.asset_partition_keys}


def published(
    store: LakeStore, asset_key: dg.AssetKey, partition_key: str | None, sidecar: str | None = None
) -> LakeObject:
    """The lake file of one month of an asset (or of an unpartitioned asset), or its
    sidecar of that name (FileNotFoundError when there is none)."""
    folder = partition_folder(asset_key, partition_key)
    listed = store.list(folder)
    if sidecar is not None:
        if f"{folder}/{sidecar}" not in listed:
            raise FileNotFoundError(f"{asset_key.to_user_string()}: no {sidecar} in the lake ({store.uri(folder)})")
        return LakeObject(store, f"{folder}/{sidecar}")
    files = [f for f in listed if not f.rsplit("/", 1)[-1].startswith("_")]
    if not files:
        month = f" {normalize_month(partition_key)}" if partition_key is not None else ""
        raise FileNotFoundError(
            f"{asset_key.to_user_string()}{month} is not in the lake ({store.uri(folder)}): materialize it first"
        )
    return LakeObject(store, files[0])
