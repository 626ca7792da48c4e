"""Data-quality checks on the lake layer, with the thresholds of the dataset spec.

The lake asset runs them on each month's staged file, before the I/O manager
publishes anything (lake.py), with figures computed by DuckDB (`taxi_assets.transform.quality`).
A month failing a check with ERROR severity is not published: the lake keeps the
previous good version, so no layer (and no later warehouse-only reload) can see
the bad one. WARN results do not block.
"""

import warnings
from dataclasses import dataclass

import dagster as dg
from dagster import AssetCheckEvaluation
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from taxi_assets.defs.assets.keys import lake_key
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets.transform import quality

SCHEMA_CHECK = "schema_matches_spec"
ROWS_CHECK = "has_rows"
VALUES_CHECK = "columns_have_values"


@dataclass(frozen=True)
class ShareRule:
    """A check on the share of a month's rows that break a rule."""

    check: str
    rule: str
    what: str  # "have total_amount < 0"
    error_above: float | None  # None: WARN only
    warn_above: float | None = None

    def limits(self) -> str:
        parts = [f"WARN above {self.warn_above:.2%}"] if self.warn_above is not None else []
        parts += [f"ERROR above {self.error_above:.2%}"] if self.error_above is not None else []
        return ", ".join(parts)


WARN_ONLY_CHECKS = frozenset({"pickups_located", "dropoffs_located"})


def share_rules(spec: DatasetSpec) -> list[ShareRule]:
    t = spec.thresholds
    low, high = t.location_id_range
    candidates = [
        ShareRule("pickups_in_month", quality.OUTSIDE_MONTH, f"have {spec.pickup_column} outside the month",
                  t.outside_month_error, t.outside_month_warn),
        ShareRule("no_negative_amounts", quality.NEGATIVE_AMOUNT, f"have {spec.amount_column} < 0",
                  t.negative_amount_error),
        ShareRule("no_negative_distances", quality.NEGATIVE_DISTANCE, f"have {spec.distance_column} < 0",
                  t.negative_distance_error),
        ShareRule("dropoff_after_pickup", quality.DROPOFF_BEFORE_PICKUP,
                  f"have {spec.dropoff_column} before {spec.pickup_column}", t.dropoff_before_pickup_error),
        ShareRule("location_ids_in_range", quality.BAD_LOCATION,
                  f"have a location ID outside {low}..{high}", t.bad_location_error),
        # WARN only: a month with many unplaceable coordinates is still the month as published.
        ShareRule("pickups_located", quality.UNLOCATED_PICKUP,
                  "have coordinates in no taxi zone (or none) and so no PULocationID", None, t.unlocated_warn),
        ShareRule("dropoffs_located", quality.UNLOCATED_DROPOFF,
                  "have coordinates in no taxi zone (or none) and so no DOLocationID", None, t.unlocated_warn),
    ]  # fmt: skip
    applicable = quality.rules(spec)
    return [r for r in candidates if r.rule in applicable]


def schema_result(spec: DatasetSpec, f: quality.MonthFigures) -> dg.AssetCheckResult:
    differing = f.schema_differences
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not differing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{spec.name} {f.month}: the file differs from the spec: {', '.join(differing)}"
            if differing
            else f"{spec.name} {f.month}: the {len(spec.arrow_schema())} columns and types match the spec"
        ),
        metadata={"differences": differing},
    )


def rows_result(spec: DatasetSpec, f: quality.MonthFigures) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=ROWS_CHECK,
        passed=f.rows > 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{spec.name} {f.month}: " + (f"{f.rows:,} rows" if f.rows else "the file has no rows"),
        metadata={"rows": f.rows},
    )


def values_result(spec: DatasetSpec, f: quality.MonthFigures) -> dg.AssetCheckResult:
    """ERROR when a column every trip has (quality.valued_columns) is null in every row."""
    empty = f.empty_columns
    checked = ", ".join(f.values)
    return dg.AssetCheckResult(
        check_name=VALUES_CHECK,
        passed=not empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{spec.name} {f.month}: "
        + (
            f"{', '.join(empty)} null in every one of the {f.rows:,} rows (a column every trip has)"
            if empty
            else f"{checked} hold values"
            if f.rows
            else "no rows to look at"
        ),
        metadata={"empty_columns": empty, "checked_columns": list(f.values), "rows": f.rows},
    )


def share_result(spec: DatasetSpec, rule: ShareRule, f: quality.MonthFigures) -> dg.AssetCheckResult:
    """Fails with ERROR above the error share (or when it cannot be counted), WARN above the warn share."""
    share = f.share(rule.rule)
    metadata: dict = {"rows": f.rows}
    if rule.error_above is not None:
        metadata["error_above"] = rule.error_above
    if rule.warn_above is not None:
        metadata["warn_above"] = rule.warn_above
    if share is None:
        return dg.AssetCheckResult(
            check_name=rule.check,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{spec.name} {f.month}: a column the rule needs is missing ({rule.limits()})",
            metadata=metadata,
        )
    count = f.counts[rule.rule]
    metadata[f"{rule.rule}_rows"] = count
    metadata[f"{rule.rule}_share"] = round(share, 6)
    severity = None
    if rule.error_above is not None and share > rule.error_above:
        severity = dg.AssetCheckSeverity.ERROR
    elif rule.warn_above is not None and share > rule.warn_above:
        severity = dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        check_name=rule.check,
        passed=severity is None,
        severity=severity or dg.AssetCheckSeverity.ERROR,
        description=f"{spec.name} {f.month}: {count:,} of {f.rows:,} rows ({share:.2%}) {rule.what} ({rule.limits()})",
        metadata=metadata,
    )


def month_results(spec: DatasetSpec, figures: quality.MonthFigures) -> list[dg.AssetCheckResult]:
    """Every lake check's result for one month's file."""
    return [
        schema_result(spec, figures),
        rows_result(spec, figures),
        values_result(spec, figures),
        *(share_result(spec, rule, figures) for rule in share_rules(spec)),
    ]


def warn_only(check_name: str) -> bool:
    """A check that never fails with ERROR (pickups_located, dropoffs_located) blocks nothing:
    the UI must not call it blocking."""
    return check_name in WARN_ONLY_CHECKS


def blocks(result: dg.AssetCheckResult) -> bool:
    """A failed ERROR result keeps the month's new version out of the lake."""
    return not result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def lake_check_specs(spec: DatasetSpec) -> list[dg.AssetCheckSpec]:
    """The lake asset's checks. They run inside the lake step on the staged file, before
    anything is published (see lake.py); blocking (except the WARN-only ones), so a failure
    also stops the warehouse."""
    descriptions = {
        SCHEMA_CHECK: "The month's file has exactly the spec's columns and types (ERROR otherwise).",
        ROWS_CHECK: "The month has at least one row (ERROR otherwise).",
        VALUES_CHECK: (
            "No column that every trip has is null in every row of the month (ERROR otherwise): the pickup time, "
            "and the dropoff time, amount, distance and location IDs where the month's eras publish them."
        ),
        **{r.check: f"Share of the month's rows that {r.what}: {r.limits()}." for r in share_rules(spec)},
    }
    suffix = " Evaluated on the new version before it is published: an ERROR keeps the previous version."
    # Partitioned check specs (a Dagster preview feature) give every month its own check status.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=lake_key(spec),
                blocking=not warn_only(name),
                partitions_def=monthly_partitions(spec),
                description=description + suffix,
            )
            for name, description in descriptions.items()
        ]


def month_evaluation(
    result: dg.AssetCheckResult,
    asset_key: dg.AssetKey,
    partition_key: str,
    target: TargetMaterialization | None = None,
) -> AssetCheckEvaluation:
    """One month's check result as an evaluation of that partition.

    `AssetCheckResult` takes its partition from the step, which has none in a run over
    a range of months (each month's planned check would end as Skipped); an
    evaluation names its partition, so each month of a range gets its own result.
    """
    return AssetCheckEvaluation(
        check_name=result.check_name,
        asset_key=asset_key,
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata=result.metadata,
        blocking=not warn_only(result.check_name),
        partition=partition_key,
        target_materialization_data=target,
    )
