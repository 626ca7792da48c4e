"""Lake layer: the month as typed Parquet in the dataset's canonical schema."""


import dagster as dg

from taxi_assets.datasets import DatasetSpec
from taxi_assets.defs.assets.keys import lake_key, raw_key
from taxi_assets.defs.assets.metadata import table_schema
from taxi_assets.defs.assets.staging import stage_each_partition
from taxi_assets.months import normalize_month
from taxi_assets.partitions import monthly_partitions
from taxi_assets.quarantine import QUARANTINE_FILE_NAME, convert_quarantining
from taxi_assets.storage.lake import LakeObject, StagedFile

LAKE_FILE_NAME = "part-0.parquet"


def build_lake_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=lake_key(spec),
        ins={"raw": dg.AssetIn(raw_key(spec))},
        partitions_def=monthly_partitions(spec),
        # A range of months is converted in one run, one month after the other.
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        group_name=spec.name,
        kinds={"parquet"},
        description=f"{spec.name} trips of one month as Parquet (zstd) with declared types.",
        metadata={"dataset": spec.name, "layer": "lake", "dagster/column_schema": table_schema(spec)},
    )
    def lake(context: dg.AssetExecutionContext, raw: dict[str, LakeObject]) -> dict[str, StagedFile]:
        def convert_month(key: str, staged: StagedFile) -> tuple[StagedFile, dict]:
            month = normalize_month(key)
            source = raw[key]
            with source.local_path() as path:
                result, quarantine = convert_quarantining(
                    spec, month, path, staged.path, staged.path.with_name(QUARANTINE_FILE_NAME)
                )
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
            context.log.info(f"{spec.name} {month}: {result.rows:,} rows in {result.seconds:.1f}s")
            return StagedFile(staged.path, quarantine=quarantine.path), {
                "dagster/row_count": result.rows,
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
                "source_file": source.uri,
                "seconds": round(result.seconds, 3),
            }

        return stage_each_partition(context, lambda key: LAKE_FILE_NAME, convert_month)

    return lake
