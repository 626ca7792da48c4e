"""Real TLC files (data/real: byte-exact heads of the original CSVs, the course mirror's fhvhv CSV,
an official Parquet month; provenance in data/real/PROVENANCE.md) load exactly.

Every excerpt is converted and compared value for value with what the file says, read
independently (Python's csv module, pyarrow's Parquet reader, the code maps of test_eras.py);
one excerpt of each era goes raw -> lake -> warehouse over the HTTP mirror. In both, every row
is accounted for: rows read = rows published + rows set aside.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.transform.quarantine import convert_quarantining
from taxi_assets.transform.reader import csv_header, match_era
from taxi_assets_tests.geo_reference import reference_ids
from taxi_assets_tests.harness import TEST_DATA, Platform
from taxi_assets_tests.spec.test_eras import DROPPED, canonical_name, expected_value, sort_key
from taxi_tools.mirror import MirrorServer
from taxi_tools.mirror.generator import write_zones

REAL = TEST_DATA / "real"
NAME = re.compile(r"(?:course_)?(?P<dataset>[a-z]+)_tripdata_(?P<month>\d{4}-\d{2})\.(?P<ext>csv|parquet)$")


def excerpts() -> list[Path]:
    return sorted(p for p in [*REAL.glob("*"), *REAL.glob("lf_normalised/*")] if NAME.match(p.name))


def dataset_month(path: Path) -> tuple[str, str]:
    found = NAME.match(path.name)
    return found["dataset"], found["month"]


def published(path: Path) -> tuple[list[str], list[list]]:
    """The file's column names and records, as it says them: blank lines are not records,
    fields after the header's last name must be empty (and are not values)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return table.column_names, [list(r.values()) for r in table.to_pylist()]
    with open(path, newline="", encoding="utf-8") as f:
        lines = [r for r in csv.reader(f) if r]
    names, records = lines[0], lines[1:]
    for record in records:
        assert all(v == "" for v in record[len(names) :]), record
    return names, [r[: len(names)] for r in records]


def expected_rows(dataset: str, path: Path) -> tuple[list[str], list[tuple]]:
    """Canonical column names and the rows as the table must hold them. Where two published
    columns read as one (fhv 2018's Dispatching_base_number and the empty Dispatching_base_num),
    the value is the one that is there."""
    spec = DATASETS[dataset]
    names, records = published(path)
    kept = [i for i, n in enumerate(names) if n.strip().lower() not in DROPPED.get(dataset, ())]
    columns: list[str] = []
    sources: dict[str, list[int]] = {}
    for i in kept:
        name = canonical_name(spec, names[i])
        if name not in sources:
            columns.append(name)
        sources.setdefault(name, []).append(i)
    rows = []
    for record in records:
        row = []
        for name in columns:
            values = [expected_value(spec.column(name), record[i], dataset) for i in sources[name]]
            row.append(next((v for v in values if v is not None), None))
        rows.append(tuple(row))
    return columns, rows


def assert_same(columns: list[str], want_rows: list[tuple], have_rows: list[tuple]) -> None:
    assert len(have_rows) == len(want_rows)
    for want, have in zip(want_rows, have_rows):
        for name, w, h in zip(columns, want, have):
            if isinstance(w, float) and h is not None:
                assert math.isclose(w, h, rel_tol=0, abs_tol=1e-9), (name, w, h, want)
            else:
                assert w == h, (name, w, h, want)


def excerpt_cases() -> list:
    # The whole official Parquet month (tens of thousands of rows): `make test`.
    return [
        pytest.param(p, id=p.relative_to(REAL).as_posix(), marks=[pytest.mark.slow] if p.suffix == ".parquet" else [])
        for p in excerpts()
    ]


@pytest.mark.parametrize("path", excerpt_cases())
def test_real_excerpt_converts_exactly(tmp_path, path):
    dataset, month = dataset_month(path)
    spec = DATASETS[dataset]
    result, found = convert_quarantining(spec, month, path, tmp_path / "out.parquet", tmp_path / "q.csv")
    columns, expected = expected_rows(dataset, path)
    # Every row accounted for: as many records as the file has, all published, none set aside.
    assert (result.rows_read, result.rows, found.rows) == (len(expected), len(expected), 0)
    lake = pq.read_table(tmp_path / "out.parquet")
    assert_same(columns, expected, [tuple(r[c] for c in columns) for r in lake.select(columns).to_pylist()])
    # What the file does not have is null (location IDs too: no zones are given here).
    absent = [c.name for c in spec.columns if c.name not in columns]
    assert all(lake.column(c).null_count == lake.num_rows for c in absent), absent
    # The only codes that become null are those the data dictionary has no number for (DDS), counted.
    names, records = published(path)
    vendor = [i for i, n in enumerate(names) if n.strip().lower() in ("vendorid", "vendor_name", "vendor_id")]
    dds = sum(1 for r in records for i in vendor if str(r[i]).strip().upper() == "DDS")
    assert result.unknown_codes == ({"VendorID": {"DDS": dds}} if dds else {})


def outside_month_share(dataset: str, month: str, path: Path) -> float:
    # The pickup column alone: this runs for every excerpt whenever the tests are collected.
    spec = DATASETS[dataset]
    column = spec.column(spec.pickup_column)
    names, records = published(path)
    dropped = DROPPED.get(dataset, ())
    sources = [
        i for i, n in enumerate(names) if n.strip().lower() not in dropped and canonical_name(spec, n) == column.name
    ]
    outside = 0
    for record in records:
        pickup = next((v for i in sources if (v := expected_value(column, record[i], dataset)) is not None), None)
        outside += pickup is None or pickup.strftime("%Y-%m") != month
    return outside / max(len(records), 1)


def era_representatives() -> list:
    """One byte-exact excerpt of each era (and shape) of each feed: the one with the fewest
    pickups outside its month (a file's first lines can be mostly the previous month's,
    which the lake's pickups_in_month check rightly refuses)."""
    best: dict[tuple, tuple[float, Path, str]] = {}
    for path in excerpts():
        if path.parent != REAL:
            continue  # lf_normalised: not the published bytes
        dataset, month = dataset_month(path)
        spec = DATASETS[dataset]
        fmt = "parquet" if path.suffix == ".parquet" else "csv"
        names = pq.read_schema(path).names if fmt == "parquet" else csv_header(path, path.name)
        era = match_era(spec, names, spec.eras_of(month, fmt))
        key = (dataset, fmt, era.first, era.header)
        share = outside_month_share(dataset, month, path)
        if key not in best or share < best[key][0]:
            best[key] = (share, path, f"{dataset}-{fmt}-{era.months.replace(' ', '')}")
    return [pytest.param(path, id=name) for _, path, name in best.values()]


@pytest.fixture(scope="module")
def real_mirror(tmp_path_factory):
    """Each excerpt at its mirror path, as published (CSV not gzipped)."""
    root = tmp_path_factory.mktemp("real-mirror")
    for path in excerpts():
        if path.parent == REAL:
            dataset, month = dataset_month(path)
            dest = root / dataset / f"{dataset}_tripdata_{month}{path.suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    write_zones(root)
    with MirrorServer(root) as server:
        yield server


# A Dagster run per era (the zone index for the coordinate eras): `make test`; `make check`
# converts every excerpt above.
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("path", era_representatives())
def test_real_era_lands_end_to_end(real_mirror, tmp_path, monkeypatch, path):
    dataset, month = dataset_month(path)
    spec = DATASETS[dataset]
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    template = real_mirror.base_url + "/{dataset}/{dataset}_tripdata_{month}" + path.suffix
    platform = Platform(root=tmp_path, source_url=template, zones_url=real_mirror.zones_url)
    result = platform.materialize(spec, month)
    assert result.success
    assert (platform.lake().root / "raw" / dataset / f"month={month}").is_dir()

    columns, expected = expected_rows(dataset, path)
    rows = platform.warehouse().query(f"SELECT * FROM {spec.table}").to_pylist()
    rows.sort(key=lambda r: sort_key(tuple(r[c] for c in columns)))
    assert_same(columns, sorted(expected, key=sort_key), [tuple(r[c] for c in columns) for r in rows])
    lake_md = result.asset_materializations_for_node(f"lake__{dataset}_lake")[0].metadata
    assert (lake_md["rows_read"].value, lake_md["dagster/row_count"].value, lake_md["set_aside_rows"].value) == (
        len(expected),
        len(expected),
        0,
    )
    # Months with coordinates: location IDs are the points' zones, by an independent point-in-polygon.
    for side, location in (("pickup", "PULocationID"), ("dropoff", "DOLocationID")):
        if location in columns or f"{side}_longitude" not in columns:
            continue
        lon = [r[f"{side}_longitude"] if r[f"{side}_longitude"] is not None else float("nan") for r in rows]
        lat = [r[f"{side}_latitude"] if r[f"{side}_latitude"] is not None else float("nan") for r in rows]
        assert [r[location] for r in rows] == [int(i) or None for i in reference_ids(lon, lat)], location
