"""The trips-by-zone mart: every dataset's trips of a month joined with the zone lookup.

Built in the warehouse with one SQL statement per month, the same on DuckDB and
BigQuery. The few places where the two dialects differ (quoting and qualifying
table names, the time between two timestamps, the float type's name) are a
`SqlDialect`, chosen from the warehouse URI.

Semantics, per month (the trip files' `source_month`, the partition of every layer):
- one row per dataset, pickup borough and pickup zone (zones sharing a name in a
  borough are one row);
- trips whose pickup LocationID is missing or not in the lookup are kept, with NULL
  borough and zone, so the mart's trips add up to the warehouse tables' rows;
- revenue = sum of `total_amount`, avg_distance = mean `trip_distance` (miles):
  NULL for datasets without those columns (fhv);
- avg_duration_minutes = mean of dropoff - pickup. Rows are taken as loaded (no
  filtering of negative or zero durations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import pyarrow as pa

from taxi_assets.datasets import SOURCE_MONTH_COLUMN, DatasetSpec
from taxi_assets.errors import NotLoadedError
from taxi_assets.months import normalize_month
from taxi_assets.storage.warehouse import WarehouseBackend, warehouse_kind
from taxi_assets.zones import ZONES_TABLE

MART_TABLE = "trips_by_zone"
MART_SCHEMA = pa.schema(
    [
        pa.field(SOURCE_MONTH_COLUMN, pa.date32()),
        pa.field("dataset", pa.string()),
        pa.field("pickup_borough", pa.string()),
        pa.field("pickup_zone", pa.string()),
        pa.field("trips", pa.int64()),
        pa.field("revenue", pa.float64()),
        pa.field("avg_distance", pa.float64()),
        pa.field("avg_duration_minutes", pa.float64()),
    ]
)


@dataclass(frozen=True)
class SqlDialect:
    name: str
    quote_char: str
    float_type: str
    # SQL for the seconds (a float) from `start` to `end`, both timestamp expressions.
    seconds_between: Callable[[str, str], str]
    # Prepended to table names: BigQuery needs `project.dataset.` as no default dataset is set.
    table_prefix: str = ""

    def ident(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def table(self, name: str) -> str:
        return self.ident(self.table_prefix + name)


DUCKDB = SqlDialect(
    name="duckdb",
    quote_char='"',
    float_type="DOUBLE",
    seconds_between=lambda start, end: f"date_diff('microsecond', {start}, {end}) / 1e6",
)
# CAST AS TIMESTAMP accepts TIMESTAMP and DATETIME columns alike, so the SQL does not
# depend on which of the two the BigQuery load gave the naive trip timestamps.
BIGQUERY = SqlDialect(
    name="bigquery",
    quote_char="`",
    float_type="FLOAT64",
    seconds_between=lambda start, end: (
        f"TIMESTAMP_DIFF(CAST({end} AS TIMESTAMP), CAST({start} AS TIMESTAMP), MICROSECOND) / 1e6"
    ),
)


def dialect_for(uri: str) -> SqlDialect:
    """The SQL dialect of the warehouse at `uri` (see storage.warehouse)."""
    kind = warehouse_kind(uri)
    if kind == "duckdb":
        return DUCKDB
    if kind == "bigquery":
        # The URI is read by the backend's own parser, so the SQL names the tables it writes.
        from taxi_assets.storage.bigquery_warehouse import parse_bigquery_uri

        project, dataset = parse_bigquery_uri(uri)
        return replace(BIGQUERY, table_prefix=f"{project}.{dataset}.")
    raise ValueError(f"no SQL dialect for warehouse {uri!r}")


def date_literal(month: str) -> str:
    """The month's first day as a DATE literal (same spelling in both dialects)."""
    return f"DATE '{normalize_month(month)}-01'"


def _trips_of(spec: DatasetSpec, d: SqlDialect, month: str) -> str:
    """One dataset's trips of the month, as (dataset, location_id, amount, distance, seconds)."""
    null = f"CAST(NULL AS {d.float_type})"
    amount = d.ident(spec.amount_column) if spec.amount_column else null
    distance = d.ident(spec.distance_column) if spec.distance_column else null
    seconds = d.seconds_between(d.ident(spec.pickup_column), d.ident(spec.dropoff_column))
    return (
        f"SELECT '{spec.name}' AS dataset, {d.ident(spec.pickup_location_column)} AS location_id, "
        f"{amount} AS amount, {distance} AS distance, {seconds} AS seconds "
        f"FROM {d.table(spec.table)} WHERE {d.ident(SOURCE_MONTH_COLUMN)} = {date_literal(month)}"
    )


def trips_by_zone_sql(specs: Iterable[DatasetSpec], d: SqlDialect, month: str) -> str:
    """The mart's rows of one month (columns of MART_SCHEMA)."""
    trips = "\n  UNION ALL\n  ".join(_trips_of(spec, d, month) for spec in specs)
    borough, zone = f"z.{d.ident('Borough')}", f"z.{d.ident('Zone')}"
    return f"""SELECT
  {date_literal(month)} AS {d.ident(SOURCE_MONTH_COLUMN)},
  t.dataset AS dataset,
  {borough} AS pickup_borough,
  {zone} AS pickup_zone,
  COUNT(*) AS trips,
  SUM(t.amount) AS revenue,
  AVG(t.distance) AS avg_distance,
  AVG(t.seconds) / 60 AS avg_duration_minutes
FROM (
  {trips}
) AS t
LEFT JOIN {d.table(ZONES_TABLE)} AS z ON z.{d.ident('LocationID')} = t.location_id
GROUP BY t.dataset, {borough}, {zone}"""


def month_totals_sql(d: SqlDialect, month: str) -> str:
    """Per dataset: trips, revenue, zone rows and trips without a known pickup zone."""
    return f"""SELECT
  dataset,
  SUM(trips) AS trips,
  SUM(revenue) AS revenue,
  COUNT(*) AS zone_rows,
  SUM(CASE WHEN pickup_zone IS NULL THEN trips ELSE 0 END) AS unknown_zone_trips
FROM {d.table(MART_TABLE)}
WHERE {d.ident(SOURCE_MONTH_COLUMN)} = {date_literal(month)}
GROUP BY dataset"""


@dataclass
class MartMonth:
    month: str  # YYYY-MM
    rows: int
    # dataset -> {"trips", "revenue", "zone_rows", "unknown_zone_trips"}
    totals: dict[str, dict[str, float | int | None]]


def build_trips_by_zone_month(
    warehouse: WarehouseBackend, d: SqlDialect, specs: Iterable[DatasetSpec], month: str
) -> MartMonth:
    """Replace the mart's month from the warehouse tables; refuses to build a month that
    a dataset's table or the zone table does not have (it would be silently short)."""
    month = normalize_month(month)
    # A feed that had not started yet (fhvhv before 2019-02) is not missing: it is left out.
    specs = [spec for spec in specs if spec.first_month <= month]
    missing = [spec for spec in specs if not warehouse.month_row_counts(spec).get(month)]
    if missing:
        names = ", ".join(spec.table for spec in missing)
        raise NotLoadedError(
            f"{MART_TABLE} {month}: no trips of {month} in {names}: load that month into the warehouse first"
        )
    try:
        zones = warehouse.query(f"SELECT COUNT(*) AS n FROM {d.table(ZONES_TABLE)}").column("n")[0].as_py()
    except Exception as exc:  # the backends' "table not found" errors have no common type
        raise NotLoadedError(
            f"{MART_TABLE} {month}: cannot read the zone table {ZONES_TABLE}: load it first ({exc})"
        ) from exc
    if not zones:
        raise NotLoadedError(f"{MART_TABLE} {month}: the zone table {ZONES_TABLE} is empty")
    rows = warehouse.replace_month_from_query(MART_TABLE, month, trips_by_zone_sql(specs, d, month), MART_SCHEMA)
    totals = {r.pop("dataset"): r for r in warehouse.query(month_totals_sql(d, month)).to_pylist()}
    return MartMonth(month=month, rows=rows, totals=totals)
