"""Every era of every feed: a generated month goes raw -> lake -> warehouse over real HTTP into a
real DuckDB, and each warehouse row equals its source row for every mapped column.

The expected rows are read from the source file with Python's csv module / pyarrow's
Parquet reader and mapped with the data dictionary's codes written out below, not with
the conversion's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.geo_reference import reference_ids
from taxi_assets_tests.harness import Platform
from taxi_tools.mirror import MirrorServer
from taxi_tools.mirror.generator import relpath, write_month, write_zones

ROWS = 120
VENDORS = {"CMT": 1, "VTS": 2}
PAYMENTS = {
    "CREDIT": 1, "CRD": 1, "CRE": 1, "CASH": 2, "CSH": 2, "CAS": 2, "NO CHARGE": 3, "NOC": 3, "DISPUTE": 4, "DIS": 4, "UNK": 5, "NA": 5,
}  # fmt: skip
# Columns some CSVs of a feed carry that the feed's table does not keep (docs/data.md).
DROPPED = {"fhvhv": {"sr_flag", "affiliated_base_number"}}
FLAGS = {"Y": "Y", "N": "N", "1": "Y", "0": "N"}
# Published name (trimmed, lower case) -> canonical name, where they differ beyond case.
RENAMES = {
    "vendor_name": "VendorID", "vendor_id": "VendorID",
    "trip_pickup_datetime": "tpep_pickup_datetime", "trip_dropoff_datetime": "tpep_dropoff_datetime",
    "start_lon": "pickup_longitude", "start_lat": "pickup_latitude",
    "end_lon": "dropoff_longitude", "end_lat": "dropoff_latitude",
    "rate_code": "RatecodeID", "store_and_forward": "store_and_fwd_flag", "fare_amt": "fare_amount",
    "surcharge": "extra", "tip_amt": "tip_amount", "tolls_amt": "tolls_amount", "total_amt": "total_amount",
    "pickup_date": "pickup_datetime", "locationid": "PULocationID", "dispatching_base_number": "dispatching_base_num",
    "pulocationid": "PULocationID", "dolocationid": "DOLocationID",
}  # fmt: skip
# fhv's location IDs: 0 is unknown (as in fhv 2017's files), null in the table.
ZERO_IS_UNKNOWN = {("fhv", "PULocationID"), ("fhv", "DOLocationID")}
YELLOW_TIMES = {"pickup_datetime": "tpep_pickup_datetime", "dropoff_datetime": "tpep_dropoff_datetime"}


def era_months(spec) -> list[tuple[str, str, object]]:
    """(month, format, era) for every era: its first month, or, where an earlier shape of the
    same format has that month (a month published in several shapes), the next free one."""
    taken: set[tuple[str, str]] = set()
    cases = []
    for era in spec.eras:
        month = era.first
        while (month, era.format) in taken:
            month = str(np.datetime64(month, "M") + 1)
        assert era.covers(month), era
        taken.add((month, era.format))
        cases.append((month, era.format, era))
    return cases


ERA_CASES = [
    pytest.param(ds, month, fmt, id=f"{ds}-{fmt}-{month}")
    for ds, spec in DATASETS.items()
    for month, fmt, _ in era_months(spec)
]


@pytest.fixture(scope="module")
def era_mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("era-mirror")
    for ds, spec in DATASETS.items():
        for month, fmt, era in era_months(spec):
            write_month(root, ds, month, fmt, ROWS, era=era)
    write_zones(root)
    with MirrorServer(root) as server:
        yield root, server


def canonical_name(spec, published: str) -> str:
    key = published.strip().lower()
    if spec.name == "yellow" and key in YELLOW_TIMES:
        return YELLOW_TIMES[key]
    key = RENAMES.get(key, key)
    return next(c.name for c in spec.columns if c.name.lower() == key.lower())


def expected_value(column, value, dataset: str = ""):
    """The source's value as the warehouse must hold it."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.strip()
    if column.codes == "vendor" and isinstance(value, str) and not value.replace(".", "").isdigit():
        return VENDORS.get(value.upper())
    if column.codes == "payment" and isinstance(value, str) and not value.replace(".", "").isdigit():
        return PAYMENTS.get(value.upper())
    if column.codes == "flag":
        return FLAGS.get(str(value).upper())
    kind = str(column.type)
    if kind.startswith("int"):
        value = int(float(value))
        return None if value == 0 and (dataset, column.name) in ZERO_IS_UNKNOWN else value
    if kind == "double":
        value = float(value)
        return None if column.coordinate and value == 0 else value
    if kind.startswith("timestamp"):
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value.as_py()
    return str(value)


def source_rows(spec, path: Path) -> tuple[list[str], list[tuple]]:
    if path.name.endswith(".parquet"):
        table = pq.read_table(path)
        names = [n for n in table.column_names if n != "__index_level_0__"]
        records = [[r[n] for n in names] for r in table.select(names).to_pylist()]
    else:
        with gzip.open(path, "rt", newline="") as f:
            lines = [r for r in csv.reader(f) if r]
        names, records = lines[0], lines[1:]
    kept = [i for i, n in enumerate(names) if n.strip().lower() not in DROPPED.get(spec.name, ())]
    # Two published columns that read as one (fhv 2018's Dispatching_base_number and the empty
    # Dispatching_base_num): the value is the one that is there.
    sources: dict[str, list[int]] = {}
    for i in kept:
        sources.setdefault(canonical_name(spec, names[i]), []).append(i)
    rows = []
    for record in records:
        row = []
        for name, at in sources.items():
            values = [expected_value(spec.column(name), record[i], spec.name) for i in at]
            row.append(next((v for v in values if v is not None), None))
        rows.append(tuple(row))
    return list(sources), rows


def sort_key(row: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in row)


# A Dagster run per era of every feed: `make test`.
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("dataset,month,fmt", ERA_CASES)
def test_era_month_lands_value_for_value(era_mirror, tmp_path, monkeypatch, dataset, month, fmt):
    root, server = era_mirror
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    spec = DATASETS[dataset]
    template = server.url_template if fmt == "csv" else server.url_template.replace(".csv.gz", ".parquet")
    platform = Platform(root=tmp_path, source_url=template, zones_url=server.zones_url)
    result = platform.materialize(spec, month)
    assert result.success

    columns, expected = source_rows(spec, root / relpath(dataset, month, fmt))
    assert len(expected) == ROWS
    select = ", ".join(f'"{c}"' for c in columns)
    got = platform.warehouse().query(f"SELECT {select} FROM {spec.table}").to_pylist()
    got = [tuple(r[c] for c in columns) for r in got]
    assert len(got) == ROWS
    for want, have in zip(sorted(expected, key=sort_key), sorted(got, key=sort_key)):
        for name, w, h in zip(columns, want, have):
            if isinstance(w, float) and h is not None:
                assert math.isclose(w, h, rel_tol=0, abs_tol=1e-9), (name, w, h)
            else:
                assert w == h, (name, w, h, want)

    # Eras with coordinates: the location IDs are the points' zones (an independent reference).
    lake_md = result.asset_materializations_for_node(f"lake__{dataset}_lake")[0].metadata
    located = {"PULocationID": "pickup", "DOLocationID": "dropoff"}
    filled = [c for c, side in located.items() if c not in columns and f"{side}_longitude" in columns]
    if filled:
        assert_zones_filled(platform, spec, filled, lake_md)
    # Columns the era does not publish are null; text codes nobody knows are counted.
    absent = [c.name for c in spec.columns if c.name not in columns and c.name not in filled]
    if absent:
        nulls = (
            platform.warehouse()
            .query("SELECT " + ", ".join(f'count("{c}") AS "{c}"' for c in absent) + f" FROM {spec.table}")
            .to_pylist()[0]
        )
        assert set(nulls.values()) == {0}, nulls
    unknown = sum(
        1
        for want_row in expected
        for name, w in zip(columns, want_row)
        if w is None and spec.column(name).codes in ("vendor", "payment")
    )
    assert lake_md["unknown_code_rows"].value == unknown
    # Every row accounted for: read (counted from the file's bytes or footer) = published + set aside.
    assert (lake_md["rows_read"].value, lake_md["dagster/row_count"].value, lake_md["set_aside_rows"].value) == (
        ROWS,
        ROWS,
        0,
    )


def assert_zones_filled(platform, spec, filled: list[str], lake_md) -> None:
    sides = {"PULocationID": ("pickup", "pickups"), "DOLocationID": ("dropoff", "dropoffs")}
    for location in filled:
        side, plural = sides[location]
        rows = (
            platform.warehouse()
            .query(f'SELECT "{side}_longitude" AS lon, "{side}_latitude" AS lat, "{location}" AS id FROM {spec.table}')
            .to_pylist()
        )
        lon = [r["lon"] if r["lon"] is not None else float("nan") for r in rows]
        lat = [r["lat"] if r["lat"] is not None else float("nan") for r in rows]
        want = [int(i) or None for i in reference_ids(lon, lat)]
        assert [r["id"] for r in rows] == want, location
        assert sum(1 for w in want if w) > ROWS // 2  # most points are in a zone
        unlocated = sum(1 for w in want if w is None)
        assert lake_md[f"unlocated_{plural}"].value == unlocated
        assert lake_md[f"mapped_{plural}"].value == ROWS - unlocated


def test_parquet_float_that_is_not_whole_is_set_aside_and_whole_floats_load(tmp_path):
    import pyarrow as pa

    from taxi_assets.transform.quarantine import convert_quarantining

    spec = DATASETS["fhv"]
    n = 400
    table = pa.table({
        "dispatching_base_num": pa.array(["B00001"] * n),
        "pickup_datetime": pa.array(["2019-03-01 10:00:00"] * n),  # timestamps as text
        "dropOff_datetime": pa.array([dt.datetime(2019, 3, 1, 10, 30)] * n, pa.timestamp("ns")),
        "PUlocationID": pa.array([1.0] * (n - 1) + [2.5]),
        "DOlocationID": pa.array([None] * n, pa.float64()),
        "SR_Flag": pa.nulls(n),
        "Affiliated_base_number": pa.array(["B00002"] * n, pa.large_string()),
        "__index_level_0__": pa.array(range(n)),
    })  # fmt: skip
    src = tmp_path / "fhv_tripdata_2019-03.parquet"
    pq.write_table(table, src)
    result, found = convert_quarantining(spec, "2019-03", src, tmp_path / "out.parquet", tmp_path / "q.csv")
    assert (result.rows, found.rows) == (n - 1, 1)
    assert "PULocationID: 2.5 is not int32" in (tmp_path / "q.csv").read_text()
    lake = pq.read_table(tmp_path / "out.parquet")
    assert lake.column("PULocationID").to_pylist() == [1] * (n - 1)
    assert lake.column("pickup_datetime")[0].as_py() == dt.datetime(2019, 3, 1, 10)


def test_csv_rows_with_extra_fields_are_set_aside_with_the_reason(tmp_path):
    from taxi_assets.transform.quarantine import convert_quarantining

    spec = DATASETS["yellow"]
    header = ",".join(spec.era("2010-02", "csv").header)
    good = "VTS,2010-02-01 10:00:00,2010-02-01 10:10:00,1,1.5,-73.9,40.7,1,0,-73.9,40.7,CSH,6.5,0.5,0.5,0,0,7.5"
    lines = [header, ""] + [good] * 300 + [good + ",x"]
    src = tmp_path / "yellow_tripdata_2010-02.csv"
    src.write_text("\n".join(lines) + "\n")
    result, found = convert_quarantining(spec, "2010-02", src, tmp_path / "out.parquet", tmp_path / "q.csv")
    assert (result.rows, found.rows) == (300, 1)
    assert "expected 18 fields, got 19" in (tmp_path / "q.csv").read_text()
    lake = pq.read_table(tmp_path / "out.parquet").to_pylist()[0]
    assert (lake["VendorID"], lake["payment_type"], lake["store_and_fwd_flag"]) == (2, 2, "N")


def test_docs_era_tables_are_those_of_the_spec():
    from taxi_tools.data_docs import HAND_WRITTEN, markdown

    docs = Path(__file__).parents[2] / "docs" / "data.md"
    generated, marker, facts = docs.read_text().partition(HAND_WRITTEN)
    assert generated == markdown() + "\n", "run: python -m taxi_tools.data_docs"
    assert marker and "## Facts about the source" in facts
