"""Raw layer: a month's file exactly as published, streamed from the source into the lake."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from taxi_assets.datasets import DatasetSpec
from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.assets.metadata import download_metadata
from taxi_assets.defs.resources import source_url
from taxi_assets.months import normalize_month
from taxi_assets.partitions import monthly_partitions
from taxi_assets.source.http import Download
from taxi_assets.source.resource import TaxiSource, download_pool
from taxi_assets.storage.lake import StagedFile


def download_staged(file_name: str, fetch: Callable[[Path], Download]) -> tuple[StagedFile, Download]:
    """fetch(dest) into a new staged file; nothing is left behind when it fails."""
    staged = StagedFile.new(file_name)
    try:
        return staged, fetch(staged.path)
    except BaseException:
        staged.discard()
        raise


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
        staged, got = download_staged(
            source.file_name(spec, month), lambda dest: source.download(spec, month, dest, context.log)
        )
        context.log.info(f"{spec.name} {month}: {got.bytes:,} bytes in {got.seconds:.1f}s from {got.url}")
        return dg.Output(staged, metadata=download_metadata(got))

    return raw
