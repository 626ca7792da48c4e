"""The dataset spec table: the one place that says what each TLC dataset looks like.

Everything else (assets, partitions, conversion, warehouse tables, checks, the
mirror generator) is derived from these specs, so adding a dataset is one entry.
Types are declared, never inferred: TLC files flip integer columns to float from
month to month when a reader infers them (see TLC.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SOURCE_MONTH_COLUMN = "source_month"

INT = pa.int32()
BIGINT = pa.int64()
FLOAT = pa.float64()
TS = pa.timestamp("us")
STR = pa.string()


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    # Optional columns exist only in some years; when absent they are filled with nulls.
    required: bool = True
    # Other spellings seen in the wild (matching is also case-insensitive).
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckThresholds:
    """Data-quality limits for the lake layer's checks (shares are fractions of rows)."""

    outside_month_warn: float = 0.01
    outside_month_error: float = 0.20
    negative_amount_error: float = 0.05
    negative_distance_error: float = 0.05
    dropoff_before_pickup_error: float = 0.05
    bad_location_error: float = 0.05
    malformed_rows_error: float = 0.01
    # Months with coordinates: rows left without a pickup/dropoff zone (0,0, water, outside
    # the city). Real 2009-2015 months have about 1-3% of them, mostly 0,0; above 5% the
    # coordinates or the zone shapes are likely wrong (WARN: the rows are kept either way).
    unlocated_warn: float = 0.05
    # TLC taxi zones are numbered 1..265 (264 and 265 are the "unknown" zones).
    location_id_range: tuple[int, int] = (1, 265)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    columns: tuple[Column, ...]
    pickup_column: str
    dropoff_column: str
    first_month: str  # YYYY-MM
    # The pickup zone (a LocationID of the zone lookup), joined with the zones by the mart.
    pickup_location_column: str = "PULocationID"
    # Columns the money/distance/location checks look at (None when the dataset has none).
    amount_column: str | None = "total_amount"
    distance_column: str | None = "trip_distance"
    location_columns: tuple[str, ...] = ("PULocationID", "DOLocationID")
    thresholds: CheckThresholds = field(default_factory=CheckThresholds)
    # The source publishes a month roughly this many months after it ends (TLC.md):
    # the latest partition is the latest month that should be published by now.
    publication_lag_months: int = 2

    @property
    def table(self) -> str:
        return f"{self.name}_trips"

    @property
    def first_partition(self) -> str:
        return f"{self.first_month}-01"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The lake schema: declared columns plus the source-month column."""
        fields = [pa.field(c.name, c.type) for c in self.columns]
        fields.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32()))
        return pa.schema(fields)


YELLOW = DatasetSpec(
    name="yellow",
    first_month="2019-01",
    pickup_column="tpep_pickup_datetime",
    dropoff_column="tpep_dropoff_datetime",
    columns=(
        Column("VendorID", INT),
        Column("tpep_pickup_datetime", TS),
        Column("tpep_dropoff_datetime", TS),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        Column("RatecodeID", INT),
        Column("store_and_fwd_flag", STR),
        Column("PULocationID", INT),
        Column("DOLocationID", INT),
        Column("payment_type", INT),
        Column("fare_amount", FLOAT),
        Column("extra", FLOAT),
        Column("mta_tax", FLOAT),
        Column("tip_amount", FLOAT),
        Column("tolls_amount", FLOAT),
        Column("improvement_surcharge", FLOAT),
        Column("total_amount", FLOAT),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("airport_fee", FLOAT, required=False),
        Column("cbd_congestion_fee", FLOAT, required=False),
    ),
)

GREEN = DatasetSpec(
    name="green",
    first_month="2019-01",
    pickup_column="lpep_pickup_datetime",
    dropoff_column="lpep_dropoff_datetime",
    columns=(
        Column("VendorID", INT),
        Column("lpep_pickup_datetime", TS),
        Column("lpep_dropoff_datetime", TS),
        Column("store_and_fwd_flag", STR),
        Column("RatecodeID", INT),
        Column("PULocationID", INT),
        Column("DOLocationID", INT),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        Column("fare_amount", FLOAT),
        Column("extra", FLOAT),
        Column("mta_tax", FLOAT),
        Column("tip_amount", FLOAT),
        Column("tolls_amount", FLOAT),
        Column("ehail_fee", FLOAT),
        Column("improvement_surcharge", FLOAT),
        Column("total_amount", FLOAT),
        Column("payment_type", INT),
        Column("trip_type", INT),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("cbd_congestion_fee", FLOAT, required=False),
    ),
)

FHV = DatasetSpec(
    name="fhv",
    first_month="2019-01",
    pickup_column="pickup_datetime",
    dropoff_column="dropoff_datetime",
    amount_column=None,
    distance_column=None,
    columns=(
        Column("dispatching_base_num", STR),
        Column("pickup_datetime", TS),
        Column("dropoff_datetime", TS, aliases=("dropOff_datetime",)),
        Column("PULocationID", INT, aliases=("PUlocationID",)),
        Column("DOLocationID", INT, aliases=("DOlocationID",)),
        Column("SR_Flag", INT),
        Column("Affiliated_base_number", STR),
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (YELLOW, GREEN, FHV)}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
