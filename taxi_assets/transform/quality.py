"""Data-quality figures of one lake file, computed by DuckDB over the Parquet file.

Pure functions (no Dagster): `defs/checks.py` turns the figures into asset checks
with the thresholds of the dataset spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.months import month_bounds, normalize_month
from taxi_assets.storage.duckdb_warehouse import quote
from taxi_assets.transform.reader import era_columns

# Rules counted per month: name -> the rule's column(s), from the spec (absent when the dataset has none).
OUTSIDE_MONTH = "outside_month"
NEGATIVE_AMOUNT = "negative_amount"
NEGATIVE_DISTANCE = "negative_distance"
DROPOFF_BEFORE_PICKUP = "dropoff_before_pickup"
BAD_LOCATION = "bad_location"
# Rows of a month with coordinates left without a pickup/dropoff zone (taxi_assets.geo.fill).
UNLOCATED_PICKUP = "unlocated_pickup"
UNLOCATED_DROPOFF = "unlocated_dropoff"
# rule -> (location column, longitude column): counted only in months whose file has coordinates.
UNLOCATED = {
    UNLOCATED_PICKUP: ("PULocationID", "pickup_longitude"),
    UNLOCATED_DROPOFF: ("DOLocationID", "dropoff_longitude"),
}


@dataclass
class MonthFigures:
    month: str
    rows: int
    schema_differences: list[str]
    # Rows breaking each rule; None when a column the rule needs is missing from the file.
    counts: dict[str, int | None] = field(default_factory=dict)
    # Rows with a value, per column that must have some (valued_columns) and is in the file.
    values: dict[str, int] = field(default_factory=dict)

    @property
    def empty_columns(self) -> list[str]:
        """Columns that must hold values but are null in every row (none in a month without rows)."""
        return [c for c, n in self.values.items() if n == 0] if self.rows else []

    def share(self, rule: str) -> float | None:
        count = self.counts.get(rule)
        if count is None:
            return None
        return count / self.rows if self.rows else 0.0


def rules(spec: DatasetSpec) -> dict[str, tuple[str, ...]]:
    """The rules that apply to the dataset, each with the columns it reads."""
    found = {
        OUTSIDE_MONTH: (spec.pickup_column,),
        DROPOFF_BEFORE_PICKUP: (spec.pickup_column, spec.dropoff_column),
    }
    if spec.amount_column:
        found[NEGATIVE_AMOUNT] = (spec.amount_column,)
    if spec.distance_column:
        found[NEGATIVE_DISTANCE] = (spec.distance_column,)
    if spec.location_columns:
        found[BAD_LOCATION] = tuple(spec.location_columns)
    names = {c.name for c in spec.columns}
    for rule, columns in UNLOCATED.items():
        if names.issuperset(columns):
            found[rule] = columns
    return found


def valued_columns(spec: DatasetSpec, month: str) -> tuple[str, ...]:
    """The columns of `month` that every trip has, so that a month null in every row of one
    is broken: the pickup time, and the dropoff time, amount, distance and location IDs
    where each era of the month (CSV and Parquet) publishes them. A column an era does not
    publish is null by design; the spec's sparse columns may be empty in a real month."""
    month = normalize_month(month)
    found = [*spec.eras_of(month, "csv"), *spec.eras_of(month, "parquet")]
    published = set.intersection(*(set(era_columns(spec, e)) for e in found)) if found else set()
    others = (spec.dropoff_column, spec.amount_column, spec.distance_column, *spec.location_columns)
    return (
        spec.pickup_column,
        *(c for c in others if c and c in published and c not in spec.sparse_columns and c != spec.pickup_column),
    )


def schema_differences(spec: DatasetSpec, schema: pa.Schema) -> list[str]:
    """How the file's columns differ from the spec's lake schema (empty when equal)."""
    expected = spec.arrow_schema()
    differences = []
    for f in expected:
        if f.name not in schema.names:
            differences.append(f"missing column {f.name} ({f.type})")
        elif not schema.field(f.name).type.equals(f.type):
            differences.append(f"{f.name} is {schema.field(f.name).type}, spec says {f.type}")
    differences += [f"unexpected column {n}" for n in schema.names if n not in expected.names]
    if not differences and schema.names != expected.names:
        differences.append(f"column order {schema.names} differs from the spec's {expected.names}")
    return differences


def _rule_sql(spec: DatasetSpec, rule: str) -> str:
    pickup, dropoff = quote(spec.pickup_column), quote(spec.dropoff_column)
    if rule == OUTSIDE_MONTH:
        return f"{pickup} < $start OR {pickup} >= $end"
    if rule == DROPOFF_BEFORE_PICKUP:
        return f"{dropoff} < {pickup}"
    if rule == NEGATIVE_AMOUNT:
        return f"{quote(spec.amount_column)} < 0"
    if rule == NEGATIVE_DISTANCE:
        return f"{quote(spec.distance_column)} < 0"
    if rule == BAD_LOCATION:
        low, high = spec.thresholds.location_id_range
        return " OR ".join(f"{quote(c)} NOT BETWEEN {low} AND {high}" for c in spec.location_columns)
    if rule in UNLOCATED:
        return f"{quote(UNLOCATED[rule][0])} IS NULL"
    raise ValueError(f"unknown rule {rule!r}")


def month_figures(spec: DatasetSpec, month: str, path: Path) -> MonthFigures:
    """Row count, schema differences and rule-breaking row counts of one lake file."""
    month = normalize_month(month)
    schema = pq.read_schema(path)
    present = set(schema.names)
    countable = {r: cols for r, cols in rules(spec).items() if present.issuperset(cols)}
    selects = ["count(*)"] + [f"count(*) FILTER (WHERE {_rule_sql(spec, r)})" for r in countable]
    # A month without any coordinate (its era has location IDs) has nothing to locate.
    gates = [r for r in countable if r in UNLOCATED]
    selects += [f"count({quote(UNLOCATED[r][1])})" for r in gates]
    valued = [c for c in valued_columns(spec, month) if c in present]
    selects += [f"count({quote(c)})" for c in valued]
    params: dict[str, object] = {"path": str(path)}
    if OUTSIDE_MONTH in countable:
        params["start"], params["end"] = month_bounds(month)
    import duckdb  # in the step only: see storage/duckdb_warehouse.connect

    with duckdb.connect() as conn:
        # hive_partitioning=false: the path's month=YYYY-MM folder is not a column.
        row = conn.execute(
            f"SELECT {', '.join(selects)} FROM read_parquet($path, hive_partitioning = false)", params
        ).fetchone()
    counts: dict[str, int | None] = {r: None for r in rules(spec)}
    counts.update(zip(countable, row[1 : 1 + len(countable)]))
    after_rules = 1 + len(countable)
    for rule, coordinates in zip(gates, row[after_rules : after_rules + len(gates)]):
        if not coordinates:
            counts[rule] = 0
    return MonthFigures(
        month=month,
        rows=row[0],
        schema_differences=schema_differences(spec, schema),
        counts=counts,
        values=dict(zip(valued, row[after_rules + len(gates) :])),
    )
