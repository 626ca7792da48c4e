"""Write-audit-publish for the lake: every month of a run is staged (written), checked
(audited, defs/checks.py) and handed to the I/O manager (published) only when no check
fails with ERROR; otherwise the lake keeps each month's previous version.
"""

from collections.abc import Iterator

import dagster as dg

from taxi_assets.defs.assets.keys import lake_key
from taxi_assets.defs.checks import TargetMaterialization, blocks, month_evaluation, month_results
from taxi_assets.errors import CheckFailedError
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.staging import StagedFile
from taxi_assets.transform import quality


def publish_if_checks_pass(
    context: dg.AssetExecutionContext, spec: DatasetSpec, staged: dict[str, StagedFile], sources: dict[str, str]
) -> Iterator:
    """Check every staged month; publish them all (the output) only if none fails with ERROR.

    A range is all or nothing, as a conversion error already is: the run fails, names
    the months and checks, and the lake keeps every month's previous version.
    Each month's results are recorded as that month's evaluations (see month_evaluation).
    """
    try:
        results = {
            key: month_results(spec, quality.month_figures(spec, key, file.path)) for key, file in staged.items()
        }
    except BaseException:
        discard(staged)
        raise
    asset_key = lake_key(spec)
    selected = [k for k in context.selected_asset_check_keys if k.asset_key == asset_key]
    names = {k.name for k in selected}

    def evaluations(targets: dict[str, TargetMaterialization]) -> Iterator:
        for key, month in results.items():
            for result in month:
                if result.check_name in names:
                    yield month_evaluation(result, asset_key, key, targets.get(key))

    failed = {key: [r for r in month if blocks(r)] for key, month in results.items()}
    failed = {key: month for key, month in failed.items() if month}
    if failed:
        discard(staged)
        yield from evaluations({})
        detail = "; ".join(
            f"{', '.join(f'{r.description} [{r.check_name}]' for r in month)} (file {sources[key]})"
            for key, month in failed.items()
        )
        raise CheckFailedError(
            f"{spec.name} {', '.join(normalize_month(k) for k in failed)}: not published, the lake keeps the "
            f"previous version (if any) because a blocking check failed: {detail}"
        )
    yield dg.Output(staged)
    # After the output: each evaluation points at the month's new materialization,
    # so the UI shows it as the check of the current version.
    yield from evaluations(latest_materializations(context, asset_key, list(staged)))
    for check_key in selected:  # the check outputs the warehouse step waits for
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def latest_materializations(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, partition_keys: list[str]
) -> dict[str, TargetMaterialization]:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partition_keys), limit=len(partition_keys)
    ).records
    found: dict[str, TargetMaterialization] = {}
    for record in records:  # newest first
        if record.run_id == context.run.run_id and record.partition_key not in found:
            found[record.partition_key] = TargetMaterialization(
                run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp
            )
    return found


def discard(staged: dict[str, StagedFile]) -> None:
    for file in staged.values():
        file.discard()
