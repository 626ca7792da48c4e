"""Raw layer: a month's file exactly as published, streamed from the source into the lake."""


import dagster as dg

from taxi_assets.datasets import DatasetSpec
from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.resources import source_url
from taxi_assets.months import normalize_month
from taxi_assets.partitions import monthly_partitions
from taxi_assets.source.resource import TaxiSource, download_pool
from taxi_assets.storage.lake import StagedFile


def build_raw_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_key(spec),
        partitions_def=monthly_partitions(spec),
        io_manager_key="lake_io_manager",
        group_name=spec.name,
        kinds={"csv"},
        pool=download_pool(source_url()),
        description=f"{spec.name} trip records of one month: the source file as published, unchanged.",
        metadata={"dataset": spec.name, "layer": "raw"},
    )
    def raw(context: dg.AssetExecutionContext, source: TaxiSource) -> dg.Output[StagedFile]:
        month = normalize_month(context.partition_key)
        staged = StagedFile.new(source.file_name(spec, month))
        try:
            got = source.download(spec, month, staged.path, context.log)
        except BaseException:
            staged.discard()
            raise
        context.log.info(f"{spec.name} {month}: {got.bytes:,} bytes in {got.seconds:.1f}s from {got.url}")
        metadata = {
            "url": dg.MetadataValue.url(got.url),
            "bytes": got.bytes,
            "sha256": got.sha256,
            "seconds": round(got.seconds, 3),
        }
        if got.etag:
            metadata["etag"] = got.etag
        if got.last_modified:
            metadata["last_modified"] = got.last_modified
        return dg.Output(staged, metadata=metadata)

    return raw
