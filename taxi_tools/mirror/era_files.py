"""A month of any feed in its era's shape (datasets.py eras): CSV or Parquet, header, types, quirks.

Values are drawn in canonical form (the lake's types), then published the way the era
published them: its names and order, text codes for vendor and payment, `1`/`0` or
`Y`/`N` flags, coordinates instead of location IDs, and in Parquet the era's types
(columns typed null, doubles where integers belong, timestamps as text or ns, a stray
pandas index). Tests read these files back and compare every value with the warehouse.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.eras import Era
from taxi_assets.transform.reader import column_lookup
from taxi_tools.mirror.coordinates import trip_points

# How each era spells codes: the first spellings are the usual ones; UNKNOWN_CODE is one
# no data dictionary knows (it must become null and be counted).
UNKNOWN_CODE = "ZZZ"
VENDOR_TEXT = {1: ["CMT"], 2: ["VTS"]}
PAYMENT_TEXT_2009 = {1: ["Credit", "CREDIT"], 2: ["CASH", "Cash"], 3: ["No Charge"], 4: ["Dispute"]}
PAYMENT_TEXT_2010 = {1: ["CRD", "CRE", "Cre"], 2: ["CSH", "CAS", "Cas"], 3: ["NOC"], 4: ["DIS"], 5: ["UNK", "NA "]}
# Rows generated at a time, and the Parquet row group: TLC's own files use row groups of
# about a million rows, so a reader that held a row group whole would show it.
CHUNK_ROWS = 1 << 20
BASES = [f"B{b:05d}" for b in range(2, 3500, 37)]
HV_LICENSES = ["HV0002", "HV0003", "HV0004", "HV0005"]


def _pick(rng: np.random.Generator, values, n: int) -> np.ndarray:
    return np.asarray(values)[rng.integers(0, len(values), n)]


def _nullable(values: np.ndarray, type_: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, type_, mask=null)


def canonical_columns(spec: DatasetSpec, rng: np.random.Generator, month: str, n: int) -> dict[str, pa.Array]:
    """n trips of `month` in the lake's types (absent: columns the generator leaves null)."""
    start = np.datetime64(month, "M").astype("datetime64[s]").astype(np.int64)
    end = (np.datetime64(month, "M") + 1).astype("datetime64[s]").astype(np.int64)
    pickup = np.sort(rng.integers(start, end, n))
    seconds = rng.integers(60, 3600, n)
    dropoff = pickup + seconds
    ts = lambda v: pa.array(v, pa.int64()).cast(pa.timestamp("s")).cast(pa.timestamp("us"))  # noqa: E731
    money = lambda lo, hi: np.round(rng.uniform(lo, hi, n) * 2) / 2  # noqa: E731
    cents = lambda lo, hi: np.round(rng.uniform(lo, hi, n), 2)  # noqa: E731
    some_null = rng.random(n) < 0.03
    cols: dict[str, pa.Array] = {}
    if spec.name in ("yellow", "green"):
        fare = money(2.5, 60)
        tip = cents(0, 12)
        cols.update(
            {
                "VendorID": pa.array(_pick(rng, [1, 2], n), pa.int32()),
                spec.pickup_column: ts(pickup),
                spec.dropoff_column: ts(dropoff),
                "passenger_count": _nullable(rng.integers(0, 7, n), pa.int32(), some_null),
                "trip_distance": pa.array(cents(0, 25)),
                "RatecodeID": _nullable(_pick(rng, [1, 1, 1, 2, 5], n), pa.int32(), some_null),
                "store_and_fwd_flag": pa.array(np.where(rng.random(n) < 0.05, "Y", "N")),
                "PULocationID": pa.array(rng.integers(1, 266, n), pa.int32()),
                "DOLocationID": pa.array(rng.integers(1, 266, n), pa.int32()),
                "payment_type": pa.array(_pick(rng, [1, 1, 2, 2, 3, 4], n), pa.int32()),
                "fare_amount": pa.array(fare),
                "extra": pa.array(_pick(rng, [0.0, 0.5, 1.0], n)),
                "mta_tax": pa.array(np.full(n, 0.5)),
                "tip_amount": pa.array(tip),
                "tolls_amount": pa.array(_pick(rng, [0.0, 0.0, 6.12], n)),
                "improvement_surcharge": pa.array(np.full(n, 0.3)),
                "total_amount": pa.array(np.round(fare + tip + 1.3, 2)),
                "congestion_surcharge": pa.array(_pick(rng, [0.0, 2.5], n)),
                "airport_fee": pa.array(_pick(rng, [0.0, 1.25], n)),
                "cbd_congestion_fee": pa.array(_pick(rng, [0.0, 0.75], n)),
                "ehail_fee": pa.nulls(n, pa.float64()),
                "trip_type": pa.array(_pick(rng, [1, 1, 2], n), pa.int32()),
            }
        )
        # Inside the real zones, as real trips are (mirror/coordinates.py).
        for end in ("pickup", "dropoff"):
            lon, lat = trip_points(rng, n)
            cols[f"{end}_longitude"], cols[f"{end}_latitude"] = pa.array(lon), pa.array(lat)
    elif spec.name == "fhv":
        cols.update(
            {
                "dispatching_base_num": pa.array(_pick(rng, BASES, n)),
                "pickup_datetime": ts(pickup),
                "dropoff_datetime": ts(dropoff),
                "PULocationID": _nullable(rng.integers(1, 266, n), pa.int32(), some_null),
                # 0 (unknown) as in fhv 2017's files; the lake stores it as null.
                "DOLocationID": _nullable(
                    np.where(rng.random(n) < 0.03, 0, rng.integers(1, 266, n)), pa.int32(), some_null
                ),
                "SR_Flag": _nullable(np.ones(n, np.int32), pa.int32(), rng.random(n) >= 0.1),
                "Affiliated_base_number": pa.array(_pick(rng, BASES, n)),
            }
        )
    elif spec.name == "fhvhv":
        request = pickup - rng.integers(60, 900, n)
        flag = lambda share: pa.array(np.where(rng.random(n) < share, "Y", "N"))  # noqa: E731
        cols.update(
            {
                "hvfhs_license_num": pa.array(_pick(rng, HV_LICENSES, n)),
                "dispatching_base_num": pa.array(_pick(rng, BASES, n)),
                "originating_base_num": pa.array(_pick(rng, BASES, n), mask=some_null),
                "request_datetime": ts(request),
                "on_scene_datetime": pa.array(request + 30, pa.int64(), mask=some_null)
                .cast(pa.timestamp("s"))
                .cast(pa.timestamp("us")),
                "pickup_datetime": ts(pickup),
                "dropoff_datetime": ts(dropoff),
                "PULocationID": pa.array(rng.integers(1, 266, n), pa.int32()),
                "DOLocationID": pa.array(rng.integers(1, 266, n), pa.int32()),
                "trip_miles": pa.array(cents(0.2, 30)),
                "trip_time": pa.array(seconds, pa.int64()),
                "base_passenger_fare": pa.array(cents(5, 80)),
                "tolls": pa.array(_pick(rng, [0.0, 6.55], n)),
                "bcf": pa.array(cents(0, 2)),
                "sales_tax": pa.array(cents(0, 6)),
                "congestion_surcharge": pa.array(_pick(rng, [0.0, 2.75], n)),
                "airport_fee": pa.array(_pick(rng, [0.0, 2.5], n)),
                "tips": pa.array(cents(0, 10)),
                "driver_pay": pa.array(cents(4, 60)),
                "shared_request_flag": flag(0.05),
                "shared_match_flag": flag(0.02),
                "access_a_ride_flag": flag(0.01),
                "wav_request_flag": flag(0.03),
                "wav_match_flag": flag(0.03),
                "cbd_congestion_fee": pa.array(_pick(rng, [0.0, 1.5], n)),
                # Columns of the 2019-2021 CSVs that fhvhv does not keep (datasets.py).
                "SR_Flag": _nullable(np.ones(n, np.int32), pa.int32(), rng.random(n) >= 0.1),
                "Affiliated_base_number": pa.array(_pick(rng, BASES, n)),
            }
        )
    else:
        raise ValueError(f"no generator for dataset {spec.name!r}")
    return cols


def _text_codes(rng: np.random.Generator, codes: pa.Array, spellings: dict[int, list[str]]) -> pa.Array:
    """Numbers -> the era's text spelling; a few become a code nobody knows."""
    numbers = codes.to_numpy(zero_copy_only=False)
    out = np.array([rng.choice(spellings.get(int(v), [UNKNOWN_CODE])) for v in numbers], dtype=object)
    out[rng.random(len(out)) < 0.01] = UNKNOWN_CODE
    return pa.array(out, pa.string())


def published_table(spec: DatasetSpec, era: Era, month: str, n: int, seed: int, chunk: int = 0) -> pa.Table:
    """The month (or its `chunk`-th piece) as the era published it (names, order, codes;
    Parquet types when written)."""
    digest = hashlib.sha256(f"{seed}/{spec.name}/{month}/{era.format}/{chunk}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    canonical = canonical_columns(spec, rng, month, n)
    lookup = column_lookup(spec)
    arrays, names = [], []
    for name in era.header:
        column = lookup.get(name.strip().lower(), name)  # a column the spec drops: as generated
        # A second spelling of a column is empty, as fhv 2018's Dispatching_base_num.
        array = canonical[column] if column not in {lookup.get(n.strip().lower()) for n in names} else None
        if array is None:
            arrays.append(pa.nulls(n, canonical[column].type))
            names.append(name)
            continue
        if column in era.text_codes:
            array = _text_codes(
                rng,
                array,
                VENDOR_TEXT if column == "VendorID" else PAYMENT_TEXT_2009 if month < "2010-01" else PAYMENT_TEXT_2010,
            )
        elif column in lookup.values() and spec.column(column).codes == "flag" and era.flags == "10":
            array = pc.if_else(pc.equal(array, "Y"), "1", "0")
        arrays.append(array)
        names.append(name)
    return pa.table(arrays, names=names)


def parquet_table(spec: DatasetSpec, era: Era, table: pa.Table) -> pa.Table:
    """The era's Parquet types: typed-null columns, doubles, timestamps as text or ns, an index."""
    lookup = column_lookup(spec)
    overrides = dict(era.parquet_types)
    arrays = []
    for name, array in zip(table.column_names, table.columns):
        column = lookup.get(name.strip().lower(), name)
        kind = overrides.get(column)
        if kind == "null":
            array = pa.nulls(len(array))
        elif kind == "double":
            array = array.cast(pa.float64())
        elif kind == "int64":
            array = array.cast(pa.int64())
        elif pa.types.is_timestamp(array.type):
            array = array.cast(pa.string() if era.timestamps == "string" else pa.timestamp(era.timestamps))
        elif column in lookup.values() and spec.column(column).type == pa.int32() and column not in era.text_codes:
            array = array.cast(pa.int64())  # official files mostly use int64
        arrays.append(array)
    names = [n.strip() for n in table.column_names]
    if era.index_column:  # what pandas' to_parquet leaves behind
        arrays.append(pa.array(np.arange(len(table)), pa.int64()))
        names.append("__index_level_0__")
    return pa.table(arrays, names=names)


def write_era_file(path: Path, spec: DatasetSpec, era: Era, month: str, n: int, seed: int) -> None:
    """Write the month (atomically: a temp file, then rename) as `era` published it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    chunks = (
        published_table(spec, era, month, min(CHUNK_ROWS, n - first), seed, i)
        for i, first in enumerate(range(0, max(n, 1), CHUNK_ROWS))
    )
    try:
        if era.format == "parquet":
            writer = None
            for table in chunks:
                table = parquet_table(spec, era, table)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table, row_group_size=CHUNK_ROWS)
            writer.close()
        else:
            with pa.output_stream(tmp, compression="gzip" if path.name.endswith(".gz") else None) as out:
                names = [f'"{n}"' if era.quoted else n for n in era.header]
                end = era.line_end if era.header_end is None else era.header_end
                out.write((",".join(names) + end + era.after_header).encode())
                for table in chunks:
                    out.write(_csv_body(era, table))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _csv_body(era: Era, table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # Timestamps as TLC writes them: "YYYY-MM-DD HH:MM:SS".
    table = pa.table(
        [c.cast(pa.timestamp("s")) if pa.types.is_timestamp(c.type) else c for c in table.columns],
        names=table.column_names,
    )
    quoting = "all_valid" if era.quoted else "none"
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style=quoting))
    body = sink.getvalue().to_pybytes()
    if era.trailing_empty_fields or era.line_end != "\n":
        tail = b"," * era.trailing_empty_fields + era.line_end.encode()
        body = b"".join(line + tail for line in body.splitlines())
    return body
