"""Raw layer: a month's file exactly as published, streamed from the source into the lake."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
from pydantic import Field

from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.assets.metadata import download_metadata
from taxi_assets.defs.assets.staging import log_month, stage_each_partition
from taxi_assets.defs.resources import load_settings
from taxi_assets.source import drop_zone
from taxi_assets.source.http import GZIP_MAGIC, PARQUET_MAGIC, Download
from taxi_assets.source.resource import NOT_AT, TaxiSource, url_templates
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.staging import StagedFile
from taxi_assets.transform.convert import check_schema


def download_staged(
    lake: LakeIOManager, file_name: str, fetch: Callable[[Path], Download]
) -> tuple[StagedFile, Download]:
    """fetch(dest) into a new staged file; nothing is left behind when it fails."""
    staged = lake.stage(file_name)
    try:
        return staged, fetch(staged.path)
    except BaseException:
        staged.discard()
        raise


class RawConfig(dg.Config):
    source_uri: str | None = Field(
        default=None,
        description="Take the month's file from this gs:// URI (the GCS drop zone) instead of the source URL.",
    )


def build_raw_asset(spec: DatasetSpec, pool: str | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_key(spec),
        partitions_def=monthly_partitions(spec),
        # A range of months is fetched in one run (one file after the other), so
        # `dagster asset materialize --partition-range` works on the whole chain.
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        group_name=spec.name,
        kinds={"csv", "parquet"},
        pool=pool,
        description=f"{spec.name} trip records of one month: the source file as published, unchanged.",
        metadata={"dataset": spec.name, "layer": "raw"},
    )
    def raw(
        context: dg.AssetExecutionContext,
        config: RawConfig,
        source: TaxiSource,
        lake_io_manager: dg.ResourceParam[LakeIOManager],
    ) -> dict[str, StagedFile]:
        if config.source_uri:
            check_dropped_file(spec, context.partition_keys, config.source_uri)

        def file_name(key: str) -> str:
            if config.source_uri:
                return config.source_uri.rsplit("/", 1)[-1]
            return source.file_name(spec, key)

        def fetch(key: str, staged: StagedFile) -> tuple[StagedFile, dict]:
            month = normalize_month(key)
            if config.source_uri:
                got = source.download_dropped(config.source_uri, staged.path, f"{spec.name} {month}")
                log_month(context, f"{spec.name} {month}: {got.bytes:,} bytes in {got.seconds:.1f}s from {got.url}")
                return staged, download_metadata(got)
            # The sources in order; the file keeps the name the winning source gives it.
            chosen: list[StagedFile] = []

            def new_dest(name: str) -> Path:
                for old in chosen:
                    old.discard()
                chosen[:] = [staged if name == staged.path.name else lake_io_manager.stage(name)]
                return chosen[0].path

            def readable(path: Path) -> None:  # a file the lake step would refuse: try the next source
                check_schema(spec, month, path)

            try:
                got, passed = source.download_first(spec, month, new_dest, context.log, readable)
            except BaseException:
                for old in chosen:
                    old.discard()
                raise
            if chosen[0] is not staged:
                staged.discard()
            chosen[0] = named_by_content(chosen[0], spec, month)
            log_month(context, f"{spec.name} {month}: {got.bytes:,} bytes in {got.seconds:.1f}s from {got.url}")
            metadata = download_metadata(got)
            metadata["source_url_template"] = url_templates(source.url_template)[len(passed)]
            missing = [url for url, why in passed if why == NOT_AT]
            if missing:
                metadata["not_at"] = ", ".join(missing)
            skipped = {url: why for url, why in passed if why != NOT_AT}
            if skipped:  # sources whose file the lake step would refuse
                metadata["skipped_sources"] = skipped
            return chosen[0], metadata

        return stage_each_partition(context, lake_io_manager, file_name, fetch)

    return raw


def named_by_content(staged: StagedFile, spec: DatasetSpec, month: str) -> StagedFile:
    """The month's file under a name whose extension says its format, which the lake step
    reads it by: a URL that names no data file (`/download/1234`) gets the month's name, and
    a `.csv` whose bytes are gzip (a server's Content-Encoding) or Parquet gets theirs."""
    name = staged.path.name
    if name.lower().endswith((".csv.gz", ".gz", ".parquet", ".zip")):
        return staged  # the download checked the bytes are what the name says
    with open(staged.path, "rb") as f:
        head = f.read(4)
    ext = ".parquet" if head == PARQUET_MAGIC else ".csv.gz" if head.startswith(GZIP_MAGIC) else ".csv"
    if name.lower().endswith(".csv"):
        if ext == ".csv":
            return staged
        name = name[: -len(".csv")] + ext
    else:
        name = f"{spec.name}_tripdata_{month}{ext}"
    path = staged.path.with_name(name)
    staged.path.rename(path)
    return StagedFile(path)


def check_dropped_file(spec: DatasetSpec, partition_keys: list[str], uri: str) -> None:
    """A dropped file names its dataset and month: it must be the one this run loads."""
    found = drop_zone.dataset_month(uri)
    months = [normalize_month(k) for k in partition_keys]
    if found is None or found != (spec.name, months[0]) or len(months) != 1:
        raise ValueError(
            f"{uri} cannot be {raw_key(spec).to_user_string()} for {', '.join(months)}: the file name must be "
            f"{spec.name}_tripdata_YYYY-MM.csv.gz (or .csv, .parquet) and the run one month"
        )


@dg.definitions
def raw_layer() -> dg.Definitions:
    pool = load_settings().download_pool
    return dg.Definitions(assets=([build_raw_asset(spec, pool) for spec in DATASETS.values()]))
