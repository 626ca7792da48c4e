"""The dataset spec table: the one place that says what each TLC dataset looks like.

Everything else (assets, partitions, conversion, warehouse tables, checks, the
mirror generator) is derived from these specs, so adding a dataset is one entry.
Types are declared, never inferred: TLC files flip integer columns to float from
month to month when a reader infers them (docs/data.md, "Facts about the source").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from taxi_assets.spec.dictionary import describe
from taxi_assets.spec.eras import Era

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
    # A required column must be in every file of an era that publishes it (eras say which
    # columns a month has); optional ones come and go within eras. Absent: filled with nulls.
    required: bool = True
    # Other spellings seen in the wild (matching is also case-insensitive, after trimming).
    aliases: tuple[str, ...] = ()
    # Text codes of older eras map onto the current numbers (eras.CODE_MAPS: vendor,
    # payment) or Y/N (flag: also 1/0).
    codes: str | None = None
    # Longitude/latitude: 0 means unknown and is stored as null.
    coordinate: bool = False
    # 0 means unknown (no zone is numbered 0): stored as null, as in the feeds whose
    # location IDs come from coordinates.
    zero_is_null: bool = False
    # What the column means (the UI shows it in every layer's column schema); by default
    # the TLC data dictionary's text for the name (dictionary.py).
    description: str = ""

    def __post_init__(self) -> None:
        if not self.description:
            object.__setattr__(self, "description", describe(self.name))


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
    # Published columns that may be empty in a whole month: the lake check that every trip
    # column holds values (quality.valued_columns) leaves them out.
    sparse_columns: tuple[str, ...] = ()
    thresholds: CheckThresholds = field(default_factory=CheckThresholds)
    # The source publishes a month roughly this many months after it ends (docs/data.md):
    # the latest partition is the latest month that should be published by now.
    publication_lag_months: int = 2
    # How each span of months was published (eras.Era), CSV and Parquet.
    eras: tuple[Era, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.name}_trips"

    @property
    def first_partition(self) -> str:
        return f"{self.first_month}-01"

    def era(self, month: str, fmt: str) -> Era | None:
        """The era of `month` in format `fmt` ("csv" or "parquet"), None when none is declared;
        of several shapes published for the month, the first declared."""
        return next(iter(self.eras_of(month, fmt)), None)

    def eras_of(self, month: str, fmt: str) -> list[Era]:
        """Every shape in which `month` was published in format `fmt` (one file matches one)."""
        return [e for e in self.eras if e.format == fmt and e.covers(month)]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The lake schema: declared columns plus the source-month column."""
        fields = [pa.field(c.name, c.type) for c in self.columns]
        fields.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32()))
        return pa.schema(fields)

    def descriptions(self) -> dict[str, str]:
        """Column name -> what it means, for every column of the lake schema."""
        return {**{c.name: c.description for c in self.columns}, SOURCE_MONTH_COLUMN: describe(SOURCE_MONTH_COLUMN)}


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


CRLF = "\r\n"
# TLC's original CSVs of 2009-2014 and 2016-2018: the header ends in LF, then a blank line and
# the rows end in CRLF (docs/data.md, "Shapes checked on real files").
LF_HEADER_CRLF_ROWS = {"header_end": "\n", "after_header": CRLF, "line_end": CRLF}


# Coordinates of yellow and green before 2016-07 (and yellow Parquet of 2009-2010):
# kept as published; location IDs stay null in those months (zone shapes fill them).
COORDINATES = tuple(
    Column(name, FLOAT, coordinate=True, aliases=aliases)
    for name, aliases in (
        ("pickup_longitude", ("Start_Lon",)),
        ("pickup_latitude", ("Start_Lat",)),
        ("dropoff_longitude", ("End_Lon",)),
        ("dropoff_latitude", ("End_Lat",)),
    )
)

YELLOW_2009 = _names(
    "vendor_name,Trip_Pickup_DateTime,Trip_Dropoff_DateTime,Passenger_Count,Trip_Distance,Start_Lon,Start_Lat,"
    "Rate_Code,store_and_forward,End_Lon,End_Lat,Payment_Type,Fare_Amt,surcharge,mta_tax,Tip_Amt,Tolls_Amt,Total_Amt"
)
YELLOW_2010 = _names(
    "vendor_id, pickup_datetime, dropoff_datetime, passenger_count, trip_distance, pickup_longitude, "
    "pickup_latitude, rate_code, store_and_fwd_flag, dropoff_longitude, dropoff_latitude, payment_type, "
    "fare_amount, surcharge, mta_tax, tip_amount, tolls_amount, total_amount"
)
YELLOW_2015 = _names(
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,"
    "pickup_latitude,RatecodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,"
    "extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount"
)
YELLOW_2016 = _names(
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
    "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "improvement_surcharge,total_amount"
)
YELLOW_2019 = YELLOW_2016 + ("congestion_surcharge",)
FLOAT_INTS = (("passenger_count", "double"), ("RatecodeID", "double"))

YELLOW = DatasetSpec(
    name="yellow",
    first_month="2009-01",
    pickup_column="tpep_pickup_datetime",
    dropoff_column="tpep_dropoff_datetime",
    columns=(
        Column("VendorID", INT, codes="vendor", aliases=("vendor_name", "vendor_id")),
        Column("tpep_pickup_datetime", TS, aliases=("Trip_Pickup_DateTime", "pickup_datetime")),
        Column("tpep_dropoff_datetime", TS, aliases=("Trip_Dropoff_DateTime", "dropoff_datetime")),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        Column("RatecodeID", INT, aliases=("Rate_Code",)),
        Column("store_and_fwd_flag", STR, codes="flag", aliases=("store_and_forward",)),
        Column("PULocationID", INT),
        Column("DOLocationID", INT),
        Column("payment_type", INT, codes="payment"),
        Column("fare_amount", FLOAT, aliases=("Fare_Amt",)),
        Column("extra", FLOAT, aliases=("surcharge",)),
        Column("mta_tax", FLOAT),
        Column("tip_amount", FLOAT, aliases=("Tip_Amt",)),
        Column("tolls_amount", FLOAT, aliases=("Tolls_Amt",)),
        Column("improvement_surcharge", FLOAT, required=False),
        Column("total_amount", FLOAT, aliases=("Total_Amt",)),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("airport_fee", FLOAT, required=False),
        Column("cbd_congestion_fee", FLOAT, required=False),
        *COORDINATES,
    ),
    eras=(
        Era(
            "2009-01",
            "2009-12",
            "csv",
            YELLOW_2009,
            text_codes=("VendorID", "payment_type"),
            **LF_HEADER_CRLF_ROWS,
            note="vendor VTS/CMT/DDS, payment CASH/Credit/No Charge/Dispute",
        ),
        Era(
            "2010-01",
            "2013-12",
            "csv",
            tuple(n.strip() for n in YELLOW_2010),
            text_codes=("VendorID", "payment_type"),
            **LF_HEADER_CRLF_ROWS,
            flags="10",
            note="vendor CMT/VTS, payment CAS/CRE/NA (2010-01..07) then CSH/CRD/NOC/DIS; flags 1/0",
        ),
        Era(
            "2014-01",
            "2014-12",
            "csv",
            YELLOW_2010,
            text_codes=("VendorID", "payment_type"),
            **LF_HEADER_CRLF_ROWS,
            note="leading spaces in the header; payment CSH/CRD/NOC/DIS/UNK",
        ),
        Era("2015-01", "2016-06", "csv", YELLOW_2015, line_end=CRLF),
        Era(
            "2016-07",
            "2016-12",
            "csv",
            YELLOW_2016,
            line_end=CRLF,
            trailing_empty_fields=2,
            note="rows end with two empty fields",
        ),
        Era("2017-01", "2018-12", "csv", YELLOW_2016, **LF_HEADER_CRLF_ROWS),
        Era("2019-01", None, "csv", YELLOW_2019, note="the course mirror (2019-01 .. 2021-07)"),
        Era(
            "2009-01",
            "2009-12",
            "parquet",
            YELLOW_2009,
            text_codes=("VendorID", "payment_type"),
            timestamps="string",
            note="coordinates; names as the 2009 CSV (unconfirmed: both spellings read)",
        ),
        Era(
            "2010-01",
            "2010-12",
            "parquet",
            tuple(n.strip() for n in YELLOW_2010),
            text_codes=("VendorID", "payment_type"),
            timestamps="ns",
            index_column=True,
            note="coordinates; names as the 2010 CSV (unconfirmed: both spellings read)",
        ),
        Era(
            "2011-01",
            "2014-12",
            "parquet",
            YELLOW_2019 + ("airport_fee",),
            timestamps="ns",
            index_column=True,
            parquet_types=FLOAT_INTS
            + (("improvement_surcharge", "null"), ("congestion_surcharge", "null"), ("airport_fee", "null")),
        ),
        Era(
            "2015-01",
            "2018-12",
            "parquet",
            YELLOW_2019 + ("airport_fee",),
            timestamps="ns",
            parquet_types=FLOAT_INTS + (("congestion_surcharge", "null"), ("airport_fee", "null")),
        ),
        Era("2019-01", "2022-12", "parquet", YELLOW_2019 + ("airport_fee",), timestamps="ns", parquet_types=FLOAT_INTS),
        Era("2023-01", "2024-12", "parquet", YELLOW_2019 + ("Airport_fee",), note="`Airport_fee` capitalised"),
        Era("2025-01", None, "parquet", YELLOW_2019 + ("Airport_fee", "cbd_congestion_fee")),
    ),
)

GREEN_PROVIDERS = (
    "The technology provider that sent the record: 1 Creative Mobile Technologies, "
    "2 Curb Mobility (formerly VeriFone), 6 Myle Technologies."
)
GREEN_2013 = _names(
    "VendorID,lpep_pickup_datetime,Lpep_dropoff_datetime,Store_and_fwd_flag,RateCodeID,Pickup_longitude,"
    "Pickup_latitude,Dropoff_longitude,Dropoff_latitude,Passenger_count,Trip_distance,Fare_amount,Extra,MTA_tax,"
    "Tip_amount,Tolls_amount,Ehail_fee,Total_amount,Payment_type,Trip_type "  # sic: a trailing space
)
GREEN_2015 = GREEN_2013[:17] + ("improvement_surcharge",) + GREEN_2013[17:]
GREEN_2016 = _names(
    "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,PULocationID,DOLocationID,"
    "passenger_count,trip_distance,fare_amount,extra,mta_tax,tip_amount,tolls_amount,ehail_fee,"
    "improvement_surcharge,total_amount,payment_type,trip_type"
)
GREEN_2019 = GREEN_2016 + ("congestion_surcharge",)
GREEN_FLOAT_INTS = FLOAT_INTS + (("payment_type", "double"), ("trip_type", "double"))

GREEN = DatasetSpec(
    name="green",
    first_month="2013-08",
    pickup_column="lpep_pickup_datetime",
    dropoff_column="lpep_dropoff_datetime",
    columns=(
        Column("VendorID", INT, codes="vendor", description=GREEN_PROVIDERS),
        Column("lpep_pickup_datetime", TS),
        Column("lpep_dropoff_datetime", TS),
        Column("store_and_fwd_flag", STR, codes="flag"),
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
        Column("improvement_surcharge", FLOAT, required=False),
        Column("total_amount", FLOAT),
        Column("payment_type", INT, codes="payment"),
        Column("trip_type", INT),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("cbd_congestion_fee", FLOAT, required=False),
        *COORDINATES,
    ),
    eras=(
        Era("2013-08", "2013-12", "csv", GREEN_2013, **LF_HEADER_CRLF_ROWS, trailing_empty_fields=2),
        Era(
            "2014-01",
            "2014-12",
            "csv",
            GREEN_2013,
            **{**LF_HEADER_CRLF_ROWS, "after_header": "\n" + CRLF},
            trailing_empty_fields=2,
            note="two blank lines after the header (LF, CRLF)",
        ),
        Era("2015-01", "2015-06", "csv", GREEN_2015, line_end=CRLF, trailing_empty_fields=2),
        Era("2015-07", "2015-12", "csv", GREEN_2015, line_end=CRLF),
        Era("2016-01", "2016-06", "csv", GREEN_2015, **LF_HEADER_CRLF_ROWS),
        Era("2016-07", "2016-12", "csv", GREEN_2016, **LF_HEADER_CRLF_ROWS, trailing_empty_fields=2),
        Era("2017-01", "2018-12", "csv", GREEN_2016, **LF_HEADER_CRLF_ROWS),
        Era("2019-01", None, "csv", GREEN_2019, note="the course mirror (2019-01 .. 2021-07)"),
        Era(
            "2013-08",
            "2018-12",
            "parquet",
            GREEN_2019,
            timestamps="ns",
            parquet_types=GREEN_FLOAT_INTS
            + (("ehail_fee", "null"), ("improvement_surcharge", "null"), ("congestion_surcharge", "null")),
        ),
        Era(
            "2019-01",
            "2022-12",
            "parquet",
            GREEN_2019,
            timestamps="ns",
            parquet_types=GREEN_FLOAT_INTS + (("ehail_fee", "null"),),
        ),
        Era("2023-01", "2024-12", "parquet", GREEN_2019, note="as the real green 2023-12 file"),
        Era("2025-01", None, "parquet", GREEN_2019 + ("cbd_congestion_fee",)),
    ),
)

FHV_2019 = _names(
    "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,SR_Flag,Affiliated_base_number"
)
FHV_2020 = _names(
    "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag,Affiliated_base_number"
)

FHV = DatasetSpec(
    name="fhv",
    first_month="2015-01",
    pickup_column="pickup_datetime",
    dropoff_column="dropoff_datetime",
    amount_column=None,
    distance_column=None,
    # Many bases reported no pickup or dropoff zone for most of their trips, and no dropoff
    # time at all in real months of 2017 (fhv 2017-01).
    sparse_columns=("dropoff_datetime", "PULocationID", "DOLocationID"),
    columns=(
        Column("dispatching_base_num", STR, aliases=("Dispatching_base_number",)),
        Column("pickup_datetime", TS, aliases=("Pickup_date",)),
        Column("dropoff_datetime", TS, aliases=("dropOff_datetime",)),
        Column("PULocationID", INT, aliases=("PUlocationID", "locationID"), zero_is_null=True),
        Column("DOLocationID", INT, aliases=("DOlocationID",), zero_is_null=True),
        # SR_Flag is 1 or empty (a shared ride), not Y/N: it stays the integer it always was.
        Column("SR_Flag", INT),
        Column("Affiliated_base_number", STR),
    ),
    eras=(
        Era(
            "2015-01",
            "2016-12",
            "csv",
            _names("Dispatching_base_num,Pickup_date,locationID"),
            line_end=CRLF,
            note="pickup zone only",
        ),
        Era(
            "2017-01",
            "2017-06",
            "csv",
            _names("Dispatching_base_num,Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID"),
            line_end=CRLF,
            note="DOlocationID 0 (unknown) in places",
        ),
        Era(
            "2017-07",
            "2017-12",
            "csv",
            _names("Dispatching_base_num,Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID,SR_Flag"),
            line_end=CRLF,
            quoted=True,
        ),
        Era(
            "2018-01",
            "2018-12",
            "csv",
            _names(
                "Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID,SR_Flag,Dispatching_base_number,"
                "Dispatching_base_num"
            ),
            line_end=CRLF,
            quoted=True,
            note="reordered; the base in Dispatching_base_number, Dispatching_base_num empty",
        ),
        Era("2019-01", "2019-12", "csv", FHV_2019, note="the course mirror"),
        Era("2020-01", None, "csv", FHV_2020, note="the course mirror"),
        Era(
            "2019-01",
            "2020-06",
            "csv",
            FHV_2020[:6],
            line_end=CRLF,
            note="TLC's original CSV: no Affiliated_base_number",
        ),
        Era(
            "2015-01",
            "2019-04",
            "parquet",
            FHV_2019,
            timestamps="ns",
            parquet_types=(("PULocationID", "double"), ("DOLocationID", "double"), ("SR_Flag", "null")),
            note="location IDs as floats; SR_Flag typed null",
        ),
        Era(
            "2019-05",
            None,
            "parquet",
            FHV_2019,
            parquet_types=(("PULocationID", "int64"), ("DOLocationID", "int64"), ("SR_Flag", "int64")),
        ),
    ),
)

FHVHV_COLUMNS = _names(
    "hvfhs_license_num,dispatching_base_num,originating_base_num,request_datetime,on_scene_datetime,"
    "pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,trip_miles,trip_time,base_passenger_fare,tolls,bcf,"
    "sales_tax,congestion_surcharge,airport_fee,tips,driver_pay,shared_request_flag,shared_match_flag,"
    "access_a_ride_flag,wav_request_flag,wav_match_flag"
)
# The CSVs of 2019-2021 carry fhv's columns: SR_Flag (1 or empty: part of a shared ride)
# and Affiliated_base_number are not fhvhv columns, so they are dropped (and reported).
FHVHV_ORIGINAL = _names(
    "hvfhs_license_num,dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag"
)
FHVHV_COURSE = FHV_2020
FHVHV_TYPES = {
    "request_datetime": TS, "on_scene_datetime": TS, "pickup_datetime": TS, "dropoff_datetime": TS,
    "PULocationID": INT, "DOLocationID": INT, "trip_miles": FLOAT, "trip_time": BIGINT,
}  # fmt: skip

FHVHV = DatasetSpec(
    name="fhvhv",
    first_month="2019-02",
    pickup_column="pickup_datetime",
    dropoff_column="dropoff_datetime",
    amount_column="base_passenger_fare",
    distance_column="trip_miles",
    columns=tuple(
        Column(name, STR, codes="flag")
        if name.endswith("_flag")
        else Column(
            name, FHVHV_TYPES.get(name, STR if name.endswith("_num") else FLOAT), required=name != "airport_fee"
        )
        for name in FHVHV_COLUMNS
    )
    + (Column("cbd_congestion_fee", FLOAT, required=False),),
    eras=(
        Era("2019-02", None, "csv", FHVHV_COLUMNS, note="the Parquet's columns as CSV"),
        Era(
            "2019-02",
            "2020-06",
            "csv",
            FHVHV_ORIGINAL,
            line_end=CRLF,
            note="TLC's original CSV; SR_Flag dropped (the shared_* flags hold what is known of sharing)",
        ),
        Era(
            "2019-02",
            "2021-07",
            "csv",
            FHVHV_COURSE,
            note="the course mirror; SR_Flag and Affiliated_base_number dropped",
        ),
        Era(
            "2019-02",
            "2024-12",
            "parquet",
            FHVHV_COLUMNS,
            timestamps="ns",
            parquet_types=(
                ("PULocationID", "int64"),
                ("DOLocationID", "int64"),
                ("airport_fee", "null"),
                ("wav_match_flag", "null"),
            ),
            note="airport_fee and wav_match_flag typed null in some files",
        ),
        Era(
            "2025-01",
            None,
            "parquet",
            FHVHV_COLUMNS + ("cbd_congestion_fee",),
            parquet_types=(("PULocationID", "int64"), ("DOLocationID", "int64")),
        ),
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (YELLOW, GREEN, FHV, FHVHV)}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
