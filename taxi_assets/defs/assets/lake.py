"""Lake layer: the month as typed Parquet in the dataset's canonical schema.

The lake checks run here, on each month's staged file, before the I/O manager
publishes it: a month that fails a blocking (ERROR) check never replaces the
lake's previous version, so neither this run's warehouse step nor a later
warehouse-only reload can load it.
"""

from collections.abc import Iterator

import dagster as dg

from taxi_assets.defs.assets.keys import lake_key, raw_key, shapes_key
from taxi_assets.defs.assets.metadata import table_schema
from taxi_assets.defs.assets.staging import log_month, stage_each_partition
from taxi_assets.defs.checks import TargetMaterialization, blocks, lake_check_specs, month_evaluation, month_results
from taxi_assets.errors import CheckFailedError, ConversionError, StagingError
from taxi_assets.geo.fill import ZoneFill, has_coordinates
from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, built_index, read_index, shapes_version
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets.storage.io_manager import LakeIOManager, published
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.staging import StagedFile
from taxi_assets.transform import quality
from taxi_assets.transform.quarantine import QUARANTINE_FILE_NAME, convert_quarantining, set_aside_count

LAKE_FILE_NAME = "part-0.parquet"


def zone_fill(spec: DatasetSpec, lake_io_manager: LakeIOManager, log) -> ZoneFill | None:
    """Fills location IDs from coordinates (months whose files have them), loading the
    zone index stored beside the lake's zone shapes at the first such month of the run
    (geo/stored.py); None for datasets without coordinates."""
    if not has_coordinates(spec):
        return None

    def load() -> ZoneIndex:
        store = lake_io_manager.store()
        try:
            shapes = published(store, shapes_key("lake"), None)
        except FileNotFoundError as exc:
            raise ConversionError(
                f"{spec.name}: this month has coordinates, which become location IDs through the zone shapes: "
                f"materialize {shapes_key('lake').to_user_string()} (group zones) first. {exc}"
            ) from None
        with shapes.local_path() as path:
            version = shapes_version(path)
            try:
                stored = published(store, shapes_key("lake"), None, sidecar=INDEX_FILE_NAME)
            except FileNotFoundError:
                index, why = None, "the lake holds no zone index beside the shapes"
            else:
                with stored.local_path() as index_path:
                    index, why = read_index(index_path, version)
            if index is not None:
                log.info(f"{spec.name}: zone index {stored.uri} (of shapes {version[:12]})")
                return index
            log.warning(
                f"{spec.name}: {why}: building it from {shapes.uri} in this step (about 50 s of CPU and a few hundred "
                f"MiB more; a load if {CACHE_ENV} holds it). Materialize {shapes_key('lake').to_user_string()} to "
                "store it once for every month."
            )
            return built_index(path, version)

    return ZoneFill(load)


def build_lake_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=lake_key(spec),
        ins={"raw": dg.AssetIn(raw_key(spec))},
        # Months with coordinates get their location IDs from the zone shapes.
        deps=[shapes_key("lake")] if has_coordinates(spec) else [],
        partitions_def=monthly_partitions(spec),
        # A range of months is converted in one run, one month after the other.
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        check_specs=lake_check_specs(spec),
        group_name=spec.name,
        kinds={"parquet"},
        description=f"{spec.name} trips of one month as Parquet (zstd) with declared types.",
        metadata={"dataset": spec.name, "layer": "lake", "dagster/column_schema": table_schema(spec)},
    )
    def lake(
        context: dg.AssetExecutionContext, raw: dict[str, LakeObject], lake_io_manager: dg.ResourceParam[LakeIOManager]
    ):
        zones = zone_fill(spec, lake_io_manager, context.log)

        def convert_month(key: str, staged: StagedFile) -> tuple[StagedFile, dict]:
            month = normalize_month(key)
            source = raw[key]
            with source.local_path() as path:
                try:
                    result, quarantine = convert_quarantining(
                        spec, month, path, staged.path, staged.path.with_name(QUARANTINE_FILE_NAME), zones
                    )
                except StagingError as exc:
                    raise StagingError(f"{exc} (TAXI_STAGING_DIR)") from None
            if quarantine.rows:
                context.log.warning(
                    f"{spec.name} {month}: set aside {quarantine.rows:,} malformed of {quarantine.records:,} rows "
                    f"({quarantine.share:.3%}) in the lake's quarantine; e.g. {' | '.join(quarantine.examples)}"
                )
            if result.unknown_codes:
                context.log.warning(f"{spec.name} {month}: unknown text codes stored as null: {result.unknown_codes}")
            if result.extra_columns:
                context.log.warning(
                    f"{spec.name} {month}: dropped columns not in the spec: {', '.join(result.extra_columns)}"
                )
            if result.non_finite_nulled:
                counts = ", ".join(f"{n:,} in {c}" for c, n in result.non_finite_nulled.items())
                context.log.warning(f"{spec.name} {month}: NaN/infinite values stored as null: {counts}")
            if result.zones:
                log_month(context, f"{spec.name} {month}: location IDs from coordinates: {result.zones}")
            aside = set_aside_count(result, quarantine)
            log_month(
                context,
                f"{spec.name} {month}: {result.rows:,} rows in {result.seconds:.1f}s "
                f"({result.rows_read:,} read = {result.rows:,} published + {aside:,} set aside)",
            )
            return StagedFile(staged.path, quarantine=quarantine.path), {
                "dagster/row_count": result.rows,
                # Checked for every month (quarantine.check_accounted): rows_read = row_count + set_aside_rows.
                "rows_read": result.rows_read,
                "set_aside_rows": aside,
                "quarantined_rows": quarantine.rows,
                "quarantined_share": round(quarantine.share, 6),
                "dagster/column_schema": table_schema(spec),
                "outside_month_rows": result.outside_month_rows,
                "outside_month_share": round(result.outside_month_rows / max(result.rows, 1), 6),
                "renamed_columns": result.renamed,
                "dropped_columns": result.extra_columns,
                "filled_null_columns": result.filled_columns,
                "era": result.era or "undeclared",
                # Text codes no data dictionary knows: stored as null, counted here.
                "unknown_codes": result.unknown_codes,
                "unknown_code_rows": sum(sum(c.values()) for c in result.unknown_codes.values()),
                "non_finite_nulled": result.non_finite_nulled,
                **result.zones,
                "source_file": source.uri,
                "seconds": round(result.seconds, 3),
            }

        staged = stage_each_partition(context, lambda key: LAKE_FILE_NAME, convert_month)
        yield from publish_if_checks_pass(context, spec, staged, {key: obj.uri for key, obj in raw.items()})

    return lake


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


@dg.definitions
def lake_layer() -> dg.Definitions:
    return dg.Definitions(assets=([build_lake_asset(spec) for spec in DATASETS.values()]))
