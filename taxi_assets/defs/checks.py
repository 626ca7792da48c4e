"""Data-quality checks on the lake layer, with the thresholds of the dataset spec.

The checks read the lake files handed over by the lake I/O manager and compute
their figures with DuckDB (`taxi_assets.quality`). They are blocking: a check
failing with ERROR severity stops the warehouse load of the same run, so a bad
month never replaces a good one in the warehouse. WARN results do not block.
"""

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from taxi_assets import quality
from taxi_assets.datasets import DATASETS, DatasetSpec
from taxi_assets.defs.assets.keys import lake_key
from taxi_assets.partitions import monthly_partitions
from taxi_assets.storage.lake import LakeObject

SCHEMA_CHECK = "schema_matches_spec"
ROWS_CHECK = "has_rows"


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


def _label(spec: DatasetSpec, figures: list[quality.MonthFigures]) -> str:
    return f"{spec.name} {', '.join(f.month for f in figures)}"


def schema_result(spec: DatasetSpec, figures: list[quality.MonthFigures]) -> dg.AssetCheckResult:
    differing = {f.month: f.schema_differences for f in figures if f.schema_differences}
    if differing:
        detail = "; ".join(f"{m}: {', '.join(d)}" for m, d in differing.items())
        description = f"{spec.name} lake file differs from the spec: {detail}"
    else:
        description = f"{_label(spec, figures)}: the {len(spec.arrow_schema())} columns and types match the spec"
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not differing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"differences": differing},
    )


def rows_result(spec: DatasetSpec, figures: list[quality.MonthFigures]) -> dg.AssetCheckResult:
    empty = [f.month for f in figures if f.rows == 0]
    metadata: dict = {"rows": sum(f.rows for f in figures)}
    if len(figures) > 1:
        metadata["rows_by_month"] = {f.month: f.rows for f in figures}
    return dg.AssetCheckResult(
        check_name=ROWS_CHECK,
        passed=not empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{spec.name} {', '.join(empty)}: the lake file has no rows"
            if empty
            else f"{_label(spec, figures)}: {metadata['rows']:,} rows"
        ),
        metadata=metadata,
    )


def share_result(spec: DatasetSpec, rule: ShareRule, figures: list[quality.MonthFigures]) -> dg.AssetCheckResult:
    """Fails with ERROR when a month is above the error share (or cannot be counted), WARN above the warn share."""
    notes, worst = [], None
    for f in figures:
        share = f.share(rule.rule)
        if share is None:
            notes.append(f"{f.month}: a column the rule needs is missing")
            worst = dg.AssetCheckSeverity.ERROR
            continue
        count = f.counts[rule.rule]
        notes.append(f"{f.month}: {count:,} of {f.rows:,} rows ({share:.2%}) {rule.what}")
        if rule.error_above is not None and share > rule.error_above:
            worst = dg.AssetCheckSeverity.ERROR
        elif rule.warn_above is not None and share > rule.warn_above and worst is None:
            worst = dg.AssetCheckSeverity.WARN
    rows = sum(f.rows for f in figures)
    failing = sum(f.counts[rule.rule] or 0 for f in figures)
    metadata: dict = {
        "rows": rows,
        f"{rule.rule}_rows": failing,
        f"{rule.rule}_share": round(failing / rows, 6) if rows else 0.0,
    }
    if rule.error_above is not None:
        metadata["error_above"] = rule.error_above
    if rule.warn_above is not None:
        metadata["warn_above"] = rule.warn_above
    if len(figures) > 1:
        metadata[f"{rule.rule}_rows_by_month"] = {f.month: f.counts[rule.rule] for f in figures}
    return dg.AssetCheckResult(
        check_name=rule.check,
        passed=worst is None,
        severity=worst or dg.AssetCheckSeverity.ERROR,
        description=f"{spec.name} {'; '.join(notes)} ({rule.limits()})",
        metadata=metadata,
    )


def build_lake_checks(spec: DatasetSpec) -> dg.AssetChecksDefinition:
    rules = share_rules(spec)
    descriptions = {
        SCHEMA_CHECK: "The lake file's columns and types are exactly the spec's (ERROR otherwise).",
        ROWS_CHECK: "The month has at least one row (ERROR otherwise).",
        **{r.check: f"Share of rows that {r.what}: {r.limits()}." for r in rules},
    }
    # Partitioned check specs (a Dagster preview feature) give every month its own
    # check status in the UI and make the check read only the run's months.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [
            dg.AssetCheckSpec(
                name,
                asset=lake_key(spec),
                blocking=True,
                partitions_def=monthly_partitions(spec),
                description=description,
            )
            for name, description in descriptions.items()
        ]

    @dg.multi_asset_check(
        name=f"{spec.name}_lake_checks",
        specs=specs,
        ins={"lake": dg.AssetIn(lake_key(spec))},
        description=f"Data-quality checks of lake/{spec.name}, one DuckDB pass over each month's file.",
    )
    def lake_checks(
        context: dg.AssetCheckExecutionContext, lake: dict[str, LakeObject]
    ) -> Iterable[dg.AssetCheckResult]:
        figures = []
        for key, obj in sorted(lake.items()):
            with obj.local_path() as path:
                figures.append(quality.month_figures(spec, key, path))
        yield schema_result(spec, figures)
        yield rows_result(spec, figures)
        for rule in rules:
            yield share_result(spec, rule, figures)

    return lake_checks


def build_all_lake_checks() -> list[dg.AssetChecksDefinition]:
    return [build_lake_checks(spec) for spec in DATASETS.values()]
