"""Lake data-quality checks: pass on good data; on bad data they fail and block the warehouse.

The bad month is made for the test from a generated file (csv module, no product
code), and the expected counts are computed from that CSV independently.
"""

import csv
import datetime as dt
import gzip

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.transform import quality
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.helpers import csv_data_rows, mirror_file
from taxi_tools.mirror import MirrorServer, generate
from taxi_tools.mirror.generator import relpath

YELLOW = DATASETS["yellow"]
TS = "%Y-%m-%d %H:%M:%S"


def run_with_checks(platform, spec, month):
    return dg.materialize(
        build_dataset_assets(spec, "duckdb"),
        partition_key=f"{month}-01",
        resources=platform.resources(),
        raise_on_error=False,
    )


def evaluations(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_checks_pass_on_good_data(platform, mirror_root, dataset):
    spec = DATASETS[dataset]
    result = run_with_checks(platform, spec, "2021-01")
    assert result.success
    checks = evaluations(result)
    expected_names = {
        "schema_matches_spec",
        "has_rows",
        "columns_have_values",
        "pickups_in_month",
        "dropoff_after_pickup",
        "location_ids_in_range",
    }
    if dataset != "fhv":
        expected_names |= {"no_negative_amounts", "no_negative_distances"}
    if dataset in ("yellow", "green"):  # eras with coordinates: rows left without a zone (WARN)
        expected_names |= {"pickups_located", "dropoffs_located"}
    assert set(checks) == expected_names
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items() if not e.passed}
    assert {e.partition for e in checks.values()} == {"2021-01-01"}
    rows = csv_data_rows(mirror_file(mirror_root, dataset, "2021-01"))
    assert checks["has_rows"].metadata["rows"].value == rows
    assert checks["dropoff_after_pickup"].metadata["dropoff_before_pickup_rows"].value == 0
    assert platform.warehouse().month_row_counts(spec)["2021-01"] == rows


def _spoil(path, only_outside_month=False):
    """Rewrite a generated yellow month with rows that break each rule; returns the rows."""
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    col = {name: i for i, name in enumerate(header)}
    pickup, dropoff = col["tpep_pickup_datetime"], col["tpep_dropoff_datetime"]
    for r in rows[65:75]:
        r[pickup], r[dropoff] = "2020-12-15 10:00:00", "2020-12-15 10:20:00"
    if not only_outside_month:
        for r in rows[0:20]:
            r[col["total_amount"]] = "-" + r[col["total_amount"]]
        for r in rows[20:35]:
            r[dropoff] = (dt.datetime.strptime(r[pickup], TS) - dt.timedelta(minutes=10)).strftime(TS)
        for r in rows[35:47]:
            r[col["PULocationID"]] = "0"
        for r in rows[47:53]:
            r[col["DOLocationID"]] = "300"
        for r in rows[53:65]:
            r[col["trip_distance"]] = "-1.50"
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return [dict(zip(header, r)) for r in rows]


def _expected_counts(rows):
    def num(value):
        return float(value) if value != "" else None

    start, end = dt.datetime(2021, 1, 1), dt.datetime(2021, 2, 1)
    return {
        "negative_amount": sum(1 for r in rows if (num(r["total_amount"]) or 0) < 0),
        "negative_distance": sum(1 for r in rows if (num(r["trip_distance"]) or 0) < 0),
        "dropoff_before_pickup": sum(1 for r in rows if r["tpep_dropoff_datetime"] < r["tpep_pickup_datetime"]),
        "bad_location": sum(
            1 for r in rows if any(r[c] != "" and not 1 <= int(r[c]) <= 265 for c in ("PULocationID", "DOLocationID"))
        ),
        "outside_month": sum(1 for r in rows if not start <= dt.datetime.strptime(r["tpep_pickup_datetime"], TS) < end),
    }


def _bad_platform(tmp_path, monkeypatch, **spoil):
    root = tmp_path / "mirror"
    generate(root, ["yellow"], ["2021-01"], rows=200)
    rows = _spoil(root / relpath("yellow", "2021-01"), **spoil)
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    return root, rows


def test_checks_fail_on_bad_data_and_block_the_warehouse(tmp_path, monkeypatch):
    root, rows = _bad_platform(tmp_path, monkeypatch)
    with MirrorServer(root) as server:
        platform = Platform(root=tmp_path, source_url=server.url_template)
        result = run_with_checks(platform, YELLOW, "2021-01")
    expected = _expected_counts(rows)
    assert not result.success
    checks = evaluations(result)

    assert checks["schema_matches_spec"].passed and checks["has_rows"].passed
    error_checks = {
        "no_negative_amounts": "negative_amount",
        "no_negative_distances": "negative_distance",
        "dropoff_after_pickup": "dropoff_before_pickup",
        "location_ids_in_range": "bad_location",
    }
    for name, rule in error_checks.items():
        assert not checks[name].passed, name
        assert checks[name].severity == dg.AssetCheckSeverity.ERROR
        assert checks[name].metadata[f"{rule}_rows"].value == expected[rule] > 0.05 * len(rows)
        assert checks[name].metadata["rows"].value == len(rows)
    # Out-of-month pickups above the WARN share but under the ERROR share: a warning.
    outside = checks["pickups_in_month"]
    assert not outside.passed and outside.severity == dg.AssetCheckSeverity.WARN
    assert outside.metadata["outside_month_rows"].value == expected["outside_month"]
    assert "2021-01" in outside.description

    # The month failed a blocking check: it is neither in the lake nor in the warehouse.
    assert {e.partition for e in checks.values()} == {"2021-01-01"}
    assert not result.asset_materializations_for_node("lake__yellow_lake")
    assert not (platform.lake().root / "yellow").exists()
    assert not result.asset_materializations_for_node("warehouse__yellow_trips")
    assert "2021-01" not in platform.warehouse().month_row_counts(YELLOW)


def test_a_warning_does_not_block_the_warehouse(tmp_path, monkeypatch):
    root, rows = _bad_platform(tmp_path, monkeypatch, only_outside_month=True)
    with MirrorServer(root) as server:
        platform = Platform(root=tmp_path, source_url=server.url_template)
        result = run_with_checks(platform, YELLOW, "2021-01")
    assert result.success
    checks = evaluations(result)
    assert not checks["pickups_in_month"].passed
    assert checks["pickups_in_month"].severity == dg.AssetCheckSeverity.WARN
    assert [n for n, e in checks.items() if not e.passed] == ["pickups_in_month"]
    assert platform.warehouse().month_row_counts(YELLOW) == {"2021-01": len(rows)}


def test_an_empty_month_fails_the_row_check_and_blocks_the_warehouse(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    generate(root, ["green"], ["2021-01"], rows=0)
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    with MirrorServer(root) as server:
        platform = Platform(root=tmp_path, source_url=server.url_template)
        result = run_with_checks(platform, DATASETS["green"], "2021-01")
    checks = evaluations(result)
    assert not checks["has_rows"].passed and checks["has_rows"].severity == dg.AssetCheckSeverity.ERROR
    assert not result.asset_materializations_for_node("warehouse__green_trips")


def test_schema_differences_are_named(tmp_path):
    good = YELLOW.arrow_schema()
    fields = [f for f in good if f.name != "airport_fee"]
    fields[0] = pa.field("VendorID", pa.int64())
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({f.name: pa.array([], f.type) for f in fields + [pa.field("surprise", pa.string())]}), path)
    figures = quality.month_figures(YELLOW, "2021-01", path)
    assert figures.schema_differences == [
        "VendorID is int64, spec says int32",
        "missing column airport_fee (double)",
        "unexpected column surprise",
    ]
    assert figures.rows == 0


def _empty_column(root, column: str, fmt: str) -> None:
    """Null in every row of the generated yellow 2021-01: empty CSV fields, or a Parquet column typed null."""
    path = root / relpath("yellow", "2021-01", fmt)
    if fmt == "parquet":
        table = pq.read_table(path)
        pq.write_table(table.set_column(table.schema.get_field_index(column), column, pa.nulls(table.num_rows)), path)
        return
    with gzip.open(path, "rt", newline="") as f:
        header, *rows = list(csv.reader(f))
    for r in rows:
        r[header.index(column)] = ""
    with gzip.open(path, "wt", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "column,fmt",
    [
        ("tpep_pickup_datetime", "csv"),
        ("tpep_pickup_datetime", "parquet"),
        ("total_amount", "csv"),
        ("total_amount", "parquet"),
        ("tpep_dropoff_datetime", "csv"),
        ("DOLocationID", "csv"),
    ],
)
def test_a_column_null_in_every_row_fails_a_blocking_check(tmp_path, monkeypatch, column, fmt):
    root = tmp_path / "mirror"
    generate(root, ["yellow"], ["2021-01"], rows=200, formats=(fmt,))
    _empty_column(root, column, fmt)
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    with MirrorServer(root) as server:
        template = server.url_template.replace(".csv.gz", ".parquet") if fmt == "parquet" else server.url_template
        platform = Platform(root=tmp_path, source_url=template)
        result = run_with_checks(platform, YELLOW, "2021-01")
    assert not result.success
    checks = evaluations(result)
    values = checks["columns_have_values"]
    assert not values.passed and values.severity == dg.AssetCheckSeverity.ERROR
    assert values.metadata["empty_columns"].value == [column]
    assert values.description == f"yellow 2021-01: {column} null in every one of the 200 rows (a column every trip has)"
    assert not (platform.lake().root / "yellow").exists()
    assert not result.asset_materializations_for_node("warehouse__yellow_trips")
    assert "2021-01" not in platform.warehouse().month_row_counts(YELLOW)


def test_columns_a_month_does_not_publish_may_be_empty(tmp_path):
    """Eras say which columns a month has: those it lacks are null by design, and the spec's
    sparse columns (fhv's location IDs) may be empty in a real month."""
    assert quality.valued_columns(YELLOW, "2009-06") == (
        "tpep_pickup_datetime", "tpep_dropoff_datetime", "total_amount", "trip_distance",
    )  # fmt: skip
    assert quality.valued_columns(DATASETS["fhv"], "2016-03") == ("pickup_datetime",)  # no dropoff in 2015-2016
    # fhv dropoff times are sparse: the real 2017-01 file has none at all.
    assert quality.valued_columns(DATASETS["fhv"], "2021-01") == ("pickup_datetime",)
    # fhvhv 2019-02 was also published as CSVs without amounts or distances.
    assert quality.valued_columns(DATASETS["fhvhv"], "2019-02") == (
        "pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID",
    )  # fmt: skip
    table = pa.table(
        {"pickup_datetime": pa.array([dt.datetime(2016, 3, 1)]), "dropoff_datetime": pa.nulls(1, pa.timestamp("us"))}
    )
    pq.write_table(table, tmp_path / "part.parquet")
    figures = quality.month_figures(DATASETS["fhv"], "2016-03", tmp_path / "part.parquet")
    assert figures.values == {"pickup_datetime": 1} and figures.empty_columns == []


def test_only_checks_that_can_fail_with_error_are_blocking():
    """The UI labels a blocking check "This is a blocking asset check": the WARN-only ones
    (pickups_located, dropoffs_located) never stop anything, so they are not blocking."""
    from taxi_assets.defs.checks import lake_check_specs, share_rules

    not_blocking = {}
    for spec in DATASETS.values():
        warn_only = {r.check for r in share_rules(spec) if r.error_above is None}
        not_blocking[spec.name] = {c.name for c in lake_check_specs(spec) if not c.blocking}
        assert not_blocking[spec.name] == warn_only, spec.name
    assert not_blocking["yellow"] == {"pickups_located", "dropoffs_located"}
