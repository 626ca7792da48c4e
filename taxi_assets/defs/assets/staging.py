"""One staged file per month of a run: a single-run backfill covers a range of months."""

import time
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.staging import StagedFile


def stage_each_partition(
    context: dg.AssetExecutionContext,
    lake: LakeIOManager,
    file_name: Callable[[str], str],
    fill: Callable[[str, StagedFile], tuple[StagedFile, Mapping[str, Any]]],
) -> dict[str, StagedFile]:
    """{partition key: staged file} for every partition of the run.

    `fill(key, staged)` writes the month's file (and maybe rows set aside beside it)
    and returns the staged file to publish with the month's metadata, which goes on
    that partition's materialization only. If any month fails, every file staged so
    far is discarded, so nothing of the run reaches the lake.
    """
    staged: dict[str, StagedFile] = {}
    started = time.monotonic()
    try:
        for key in context.partition_keys:
            staged[key] = lake.stage(file_name(key))
            staged[key], metadata = fill(key, staged[key])
            context.add_asset_metadata(metadata, partition_key=key)
    except BaseException:
        for file in staged.values():
            file.discard()
        raise
    if len(staged) > 1:
        context.log.info(
            f"{context.asset_key.to_user_string()}: {len(staged)} months in {time.monotonic() - started:.1f}s "
            "(each month's figures are in its materialization's metadata)"
        )
    return staged


def log_month(context: dg.AssetExecutionContext, message: str) -> None:
    """An info line about one month, in a one-month run only: a run over a range logs one
    summary line (stage_each_partition), as every log line is an event written to the
    instance's storage (a whole-history backfill would write over a thousand)."""
    if len(context.partition_keys) == 1:
        context.log.info(message)
