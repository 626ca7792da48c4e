"""The dbt marts against independent pandas computations over the same lake files, on a real
DuckDB warehouse loaded through the whole asset graph from the mirror (dbt run by dagster-dbt)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from taxi_assets.analytics import project as analytics
from taxi_assets.analytics.month_metadata import MAP_METADATA_KEY
from taxi_assets.defs.assets.keys import mart_key, shapes_key, warehouse_key, zones_key
from taxi_assets.geo.choropleth import render_choropleth
from taxi_assets.geo.shapes import read_shapes_parquet
from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse
from taxi_assets.storage.lake import LakeObject, LocalLakeStore
from taxi_assets.transform.zones import ZONES_SCHEMA, ZONES_TABLE
from taxi_assets_tests.defs.test_google_cloud import key_json, rsa_key  # noqa: F401 (fixtures)
from taxi_assets_tests.harness import MONTHS, TEST_DATA, Platform

# dbt runs (a parse and a build per month): kept out of `make check`'s minute.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

MART = mart_key("trips_by_zone")
REVENUE = mart_key("monthly_zone_revenue")
MONTHLY_MODELS = 'group:marts and not key:"mart/dim_zones"'
# Written out here rather than taken from the specs, so the reference is independent.
TRIP_COLUMNS = {  # dataset: (pickup time, dropoff time, amount, distance)
    "yellow": ("tpep_pickup_datetime", "tpep_dropoff_datetime", "total_amount", "trip_distance"),
    "green": ("lpep_pickup_datetime", "lpep_dropoff_datetime", "total_amount", "trip_distance"),
    "fhv": ("pickup_datetime", "dropoff_datetime", None, None),
    "fhvhv": ("pickup_datetime", "dropoff_datetime", "base_passenger_fare", "trip_miles"),
}
# monthly_zone_revenue's sums: column -> each feed's source column (None: the feed has none).
REVENUE_SUMS = {
    "revenue_monthly_fare": {"yellow": "fare_amount", "green": "fare_amount", "fhvhv": "base_passenger_fare"},
    "revenue_monthly_extra": {"yellow": "extra", "green": "extra"},
    "revenue_monthly_mta_tax": {"yellow": "mta_tax", "green": "mta_tax"},
    "revenue_monthly_tip_amount": {"yellow": "tip_amount", "green": "tip_amount", "fhvhv": "tips"},
    "revenue_monthly_tolls_amount": {"yellow": "tolls_amount", "green": "tolls_amount", "fhvhv": "tolls"},
    "revenue_monthly_ehail_fee": {"green": "ehail_fee"},
    "revenue_monthly_improvement_surcharge": {"yellow": "improvement_surcharge", "green": "improvement_surcharge"},
    "revenue_monthly_total_amount": {"yellow": "total_amount", "green": "total_amount"},
}
KEYS = ["dataset", "pickup_borough", "pickup_zone"]


def read_zones(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype={"LocationID": "Int64"})


def expected_trips_by_zone(lake_files: dict[str, Path], zones: pd.DataFrame) -> pd.DataFrame:
    """The mart's rows for one month, computed with pandas from the lake files."""
    frames = []
    for dataset, path in lake_files.items():
        pickup, dropoff, amount, distance = TRIP_COLUMNS[dataset]
        t = pq.read_table(path).to_pandas()
        frames.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "LocationID": t["PULocationID"].astype("Int64"),
                    "amount": t[amount] if amount else np.nan,
                    "distance": t[distance] if distance else np.nan,
                    "seconds": (t[dropoff] - t[pickup]).dt.total_seconds(),
                }
            )
        )
    trips = pd.concat(frames, ignore_index=True).merge(zones, on="LocationID", how="left")
    grouped = trips.groupby(["dataset", "Borough", "Zone"], dropna=False)
    out = pd.DataFrame(
        {
            "trips": grouped.size(),
            "revenue": grouped["amount"].sum(min_count=1),
            "avg_distance": grouped["distance"].mean(),
            "avg_duration_minutes": grouped["seconds"].mean() / 60,
        }
    ).reset_index()
    return normalized(out.rename(columns={"Borough": "pickup_borough", "Zone": "pickup_zone"}))


def normalized(df: pd.DataFrame) -> pd.DataFrame:
    """Comparable frames: None for missing keys, floats as floats, sorted by the keys."""
    df = df.copy()
    for column in KEYS:
        df[column] = df[column].astype(object).where(df[column].notna(), None)
    for column in ("revenue", "avg_distance", "avg_duration_minutes"):
        df[column] = df[column].astype(float)
    df["trips"] = df["trips"].astype("int64")
    order = df[KEYS].fillna("\uffff").sort_values(KEYS).index  # NULL keys last, deterministically
    columns = [*KEYS, "trips", "revenue", "avg_distance", "avg_duration_minutes"]
    return df.loc[order, columns].reset_index(drop=True)


def mart_rows(warehouse, month: str) -> pd.DataFrame:
    table = warehouse.query(f"SELECT * FROM trips_by_zone WHERE source_month = DATE '{month}-01'")
    df = table.to_pandas()
    assert set(df[SOURCE_MONTH_COLUMN]) == {dt.date.fromisoformat(f"{month}-01")}
    return normalized(df.drop(columns=[SOURCE_MONTH_COLUMN]))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, mirror):
    """Every asset of the graph materialized for both months, one run per month."""
    root = tmp_path_factory.mktemp("mart")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAXI_STAGING_DIR", str(root / "staging"))
        platform = Platform(
            root=root,
            source_url=mirror.url_template,
            zones_url=mirror.zones_url,
            zone_shapes_url=mirror.zone_shapes_url,
        )
        # Feeds have their own first months (partitions): one run per feed, then zones and marts.
        for month in MONTHS:
            for spec in DATASETS.values():
                assert platform.materialize(spec, month).success
        zones_and_marts = dg.AssetSelection.groups("zones", "marts")
        results = {month: platform.materialize_selection(zones_and_marts, month) for month in MONTHS}
        yield platform, results


def test_each_month_carries_its_pickup_map_drawn_from_the_lake_shapes(loaded):
    platform, results = loaded
    shapes = read_shapes_parquet(platform.lake().root / "taxi_zone_shapes" / "part-0.parquet")
    pngs = []
    for month in MONTHS:
        (event,) = [e for e in results[month].get_asset_materialization_events() if e.asset_key == MART]
        text = event.materialization.metadata[MAP_METADATA_KEY].value
        match = re.match(r"!\[Pickups by taxi zone, (\d{4}-\d\d)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
        assert match and match.group(1) == month, text[:200]
        png = base64.b64decode(match.group(2))
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        # The same picture as drawn here from the month's mart rows: the map is of that month.
        rows = (
            platform.warehouse()
            .query(
                f"SELECT pickup_borough, pickup_zone, sum(trips) AS trips FROM trips_by_zone "
                f"WHERE source_month = DATE '{month}-01' AND pickup_zone IS NOT NULL GROUP BY ALL"
            )
            .to_pylist()
        )
        values = {(r["pickup_borough"], r["pickup_zone"]): r["trips"] for r in rows}
        assert len(values) > 100
        assert png == render_choropleth(shapes, values, f"Pickups by taxi zone, {month}", "pickups (all datasets)")
        pngs.append(png)
    assert pngs[0] != pngs[1]


def lake_files(platform: Platform, month: str) -> dict[str, Path]:
    return {name: platform.lake().root / name / f"month={month}" / "part-0.parquet" for name in DATASETS}


def expected_monthly_zone_revenue(lake_files: dict[str, Path], zones: pd.DataFrame) -> pd.DataFrame:
    """monthly_zone_revenue's rows for one month, computed with pandas from the lake files."""
    frames = []
    for dataset, path in lake_files.items():
        t = pq.read_table(path).to_pandas()
        distance = TRIP_COLUMNS[dataset][3]
        frame = pd.DataFrame(
            {
                "service_type": dataset,
                "LocationID": t["PULocationID"].astype("Int64"),
                "passengers": t["passenger_count"].astype(float) if "passenger_count" in t else np.nan,
                "distance": t[distance] if distance else np.nan,
            }
        )
        for column, sources in REVENUE_SUMS.items():
            frame[column] = t[sources[dataset]] if dataset in sources else np.nan
        frames.append(frame)
    trips = pd.concat(frames, ignore_index=True).merge(zones, on="LocationID", how="left")
    grouped = trips.groupby(["service_type", "Borough", "Zone"], dropna=False)
    out = grouped[list(REVENUE_SUMS)].sum(min_count=1)
    out["total_monthly_trips"] = grouped.size()
    out["avg_monthly_passenger_count"] = grouped["passengers"].mean()
    out["avg_monthly_trip_distance"] = grouped["distance"].mean()
    out = out.reset_index().rename(columns={"Borough": "revenue_borough", "Zone": "revenue_zone"})
    return revenue_normalized(out)


def revenue_normalized(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["service_type", "revenue_borough", "revenue_zone"]
    df = df.copy()
    for column in keys:
        df[column] = df[column].astype(object).where(df[column].notna(), None)
    values = [*REVENUE_SUMS, "avg_monthly_passenger_count", "avg_monthly_trip_distance"]
    for column in values:
        df[column] = df[column].astype(float)
    df["total_monthly_trips"] = df["total_monthly_trips"].astype("int64")
    order = df[keys].fillna("\uffff").sort_values(keys).index
    return df.loc[order, [*keys, *values, "total_monthly_trips"]].reset_index(drop=True)


def revenue_rows(warehouse, month: str) -> pd.DataFrame:
    df = warehouse.query(f"SELECT * FROM monthly_zone_revenue WHERE source_month = DATE '{month}-01'").to_pandas()
    assert set(df[SOURCE_MONTH_COLUMN]) == {dt.date.fromisoformat(f"{month}-01")}
    return revenue_normalized(df.drop(columns=[SOURCE_MONTH_COLUMN]))


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.materialization.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_trips_by_zone_equals_an_independent_pandas_computation_for_two_months(loaded, mirror_root):
    platform, results = loaded
    zones = read_zones(mirror_root / "misc" / "taxi_zone_lookup.csv")
    for month in MONTHS:
        assert results[month].success
        expected = expected_trips_by_zone(lake_files(platform, month), zones)
        actual = mart_rows(platform.warehouse(), month)
        assert len(actual) > 200  # many zones per dataset, not a degenerate join
        assert set(actual["dataset"]) == set(DATASETS)
        pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)

        # The figures the UI plots, per partition.
        md = materialization(results[month], MART)
        assert md["dagster/row_count"] == len(expected)
        assert md["total_trips"] == expected["trips"].sum()
        lake_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in lake_files(platform, month).values())
        assert md["total_trips"] == lake_rows
        assert md["total_revenue"] == pytest.approx(expected["revenue"].sum(), abs=0.01)
        for name in DATASETS:
            assert md[f"trips_{name}"] == expected.loc[expected["dataset"] == name, "trips"].sum()
        assert "revenue_fhv" not in md
        assert expected.loc[expected["dataset"] == "fhv", "revenue"].isna().all()
        assert (
            md["revenue_fhvhv"]
            == pytest.approx(expected.loc[expected["dataset"] == "fhvhv", "revenue"].sum(), abs=0.01)
            and md["revenue_fhvhv"] > 0
        )


def test_monthly_zone_revenue_equals_an_independent_pandas_computation(loaded, mirror_root):
    platform, results = loaded
    zones = read_zones(mirror_root / "misc" / "taxi_zone_lookup.csv")
    for month in MONTHS:
        expected = expected_monthly_zone_revenue(lake_files(platform, month), zones)
        actual = revenue_rows(platform.warehouse(), month)
        assert len(actual) > 200
        pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)
        green = expected[expected["service_type"] == "green"]
        assert green["revenue_monthly_improvement_surcharge"].notna().all()  # not a frame of NULLs
        assert expected.loc[expected["service_type"] == "fhv", "revenue_monthly_fare"].isna().all()
        md = materialization(results[month], REVENUE)
        assert (md["dagster/row_count"], md["total_trips"]) == (len(expected), expected["total_monthly_trips"].sum())


def test_dbt_tests_are_asset_checks_that_passed_per_month(loaded):
    _, results = loaded
    for month in MONTHS:
        checks = {(c.asset_key, c.check_name): c for c in results[month].get_asset_check_evaluations()}
        assert checks[(MART, "not_null_trips_by_zone_trips")].passed
        assert checks[(mart_key("dim_zones"), "unique_dim_zones_location_id")].passed
        stg = dg.AssetKey(["staging", "stg_yellow_trips"])
        assert checks[(stg, "not_null_stg_yellow_trips_pickup_datetime")].passed
        assert all(c.passed for c in checks.values()), [k for k, c in checks.items() if not c.passed]


def warehouse_contents(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchdf() for t in tables}


def test_rematerializing_a_month_changes_nothing(loaded):
    platform, _ = loaded
    before = warehouse_contents(platform.root / "warehouse.duckdb")
    assert {"trips_by_zone", "monthly_zone_revenue", "fact_trips", "dim_zones", "stg_yellow_trips"} <= set(before)
    assert platform.materialize_selection(MONTHLY_MODELS, MONTHS[0]).success
    after = warehouse_contents(platform.root / "warehouse.duckdb")
    assert set(after) == set(before)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)
    counts = (
        platform.warehouse()
        .query("SELECT strftime(source_month, '%Y-%m') AS m, count(*) AS n FROM trips_by_zone GROUP BY m ORDER BY m")
        .to_pylist()
    )
    assert [c["m"] for c in counts] == MONTHS


@pytest.fixture
def copied(loaded, tmp_path, monkeypatch) -> Platform:
    """A copy of the loaded platform's warehouse, to break."""
    platform, _ = loaded
    shutil.copy(platform.root / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    return Platform(root=tmp_path, source_url=platform.source_url, zones_url=platform.zones_url)


def test_a_broken_row_fails_a_dbt_test_visible_on_its_asset(copied):
    with duckdb.connect(str(copied.root / "warehouse.duckdb")) as conn:
        conn.execute(
            "INSERT INTO yellow_trips SELECT * REPLACE (NULL AS tpep_pickup_datetime) FROM yellow_trips "
            "WHERE source_month = DATE '2021-02-01' LIMIT 1"
        )
    result = copied.materialize_selection(MONTHLY_MODELS, MONTHS[1], raise_on_error=False)
    assert not result.success
    checks = {(c.asset_key, c.check_name): c for c in result.get_asset_check_evaluations()}
    failed = checks[(dg.AssetKey(["staging", "stg_yellow_trips"]), "not_null_stg_yellow_trips_pickup_datetime")]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["dagster_dbt/failed_row_count"].value == 1
    # The same month of another feed still passes; the check is about the broken feed only.
    assert checks[(dg.AssetKey(["staging", "stg_green_trips"]), "not_null_stg_green_trips_pickup_datetime")].passed


def test_a_model_without_its_checks_and_a_check_without_its_model_run_just_that(copied):
    """dbt's selection follows the step's (taxi_assets/analytics/runner.py): trips_by_zone without its
    dbt tests, and one test of a staging view without the view."""
    check = dg.AssetCheckKey(dg.AssetKey(["staging", "stg_yellow_trips"]), "not_null_stg_yellow_trips_pickup_datetime")
    selection = dg.AssetSelection.assets(MART).without_checks() | dg.AssetSelection.checks(check)
    result = copied.materialize_selection(selection, MONTHS[1])
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [MART]
    evaluations = result.get_asset_check_evaluations()
    assert [(c.asset_key, c.check_name) for c in evaluations] == [(check.asset_key, check.name)]
    assert evaluations[0].passed


def test_a_feed_missing_its_month_is_refused_by_name(copied):
    with duckdb.connect(str(copied.root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM fhv_trips WHERE source_month = DATE '2021-02-01'")
    before = copied.warehouse().query("SELECT count(*) AS n FROM trips_by_zone").column("n")[0].as_py()
    result = copied.materialize_selection(MART.to_user_string(), MONTHS[1], raise_on_error=False)
    assert not result.success
    text = "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)
    assert "trips_by_zone 2021-02: no trips of 2021-02 in fhv_trips: load that month into the warehouse first" in text
    assert copied.warehouse().query("SELECT count(*) AS n FROM trips_by_zone").column("n")[0].as_py() == before


def test_a_month_before_a_feeds_first_month_does_not_need_it(copied, monkeypatch):
    """By hand (python -m taxi_assets.analytics): a feed without the month is not required
    when the month is before its first month, and is when it is not."""
    with duckdb.connect(str(copied.root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM fhvhv_trips WHERE source_month = DATE '2021-02-01'")
    monkeypatch.setenv("TAXI_WAREHOUSE_URI", copied.warehouse_uri)
    feeds = {**analytics.feeds(), "fhvhv_trips": "2021-03"}
    args = ["run", "--select", "trips_by_zone", "--vars", json.dumps({"month": "2021-02", "feeds": feeds})]
    assert analytics.main(args) == 0
    feeds["fhvhv_trips"] = "2021-02"
    args[-1] = json.dumps({"month": "2021-02", "feeds": feeds})
    assert analytics.main(args) == 1


def test_asset_graph_runs_from_the_warehouse_tables_to_the_marts():
    from taxi_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    staging = {dg.AssetKey(["staging", f"stg_{name}_trips"]) for name in [*DATASETS, "fhvhv"]}
    for spec in DATASETS.values():
        assert graph.get(dg.AssetKey(["staging", f"stg_{spec.name}_trips"])).parent_keys == {warehouse_key(spec)}
    assert graph.get(mart_key("dim_zones")).parent_keys == {zones_key("warehouse")}
    assert graph.get(mart_key("fact_trips")).parent_keys == {*staging, mart_key("dim_zones")}
    assert graph.get(REVENUE).parent_keys == {mart_key("fact_trips")}
    # and the zone shapes, which draw each month's pickup map
    assert graph.get(MART).parent_keys == {mart_key("fact_trips"), shapes_key("lake")}
    assert graph.get(zones_key("warehouse")).parent_keys == {zones_key("lake")}


# ------------------------------------------------------------ edge cases, straight on DuckDB


def write_trips(root: Path, dataset: str, month: str, rows: list[dict]) -> LakeObject:
    spec = DATASETS[dataset]
    first_day = dt.date.fromisoformat(f"{month}-01")
    columns = {f.name: [row.get(f.name) for row in rows] for f in spec.arrow_schema()}
    columns[SOURCE_MONTH_COLUMN] = [first_day] * len(rows)
    relpath = f"{dataset}/month={month}/part-0.parquet"
    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=spec.arrow_schema()), root / relpath)
    return LakeObject(LocalLakeStore(root), relpath)


def ts(day: int, time: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(f"2021-03-{day:02d} {time}") if time else None


def taxi_trip(prefix: str, day: int, start: str, end: str, zone: int | None, amount, distance) -> dict:
    return {
        f"{prefix}_pickup_datetime": ts(day, start),
        f"{prefix}_dropoff_datetime": ts(day, end),
        "PULocationID": zone,
        "total_amount": amount,
        "trip_distance": distance,
    }


def fhv_trip(day: int, start: str, end: str | None, zone: int | None) -> dict:
    return {"pickup_datetime": ts(day, start), "dropoff_datetime": ts(day, end), "PULocationID": zone}


def test_unknown_pickup_zones_are_kept_and_missing_inputs_are_refused(tmp_path, monkeypatch, capfd):
    month = "2021-03"
    lake = tmp_path / "lake"
    warehouse = DuckDBWarehouse.at(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("TAXI_WAREHOUSE_URI", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    yellow = [  # an unknown zone id (with a fractional-second duration), a missing one, NV
        taxi_trip("tpep", 1, "08:00:00.5", "08:10:00", 999, 10.5, 1.25),
        taxi_trip("tpep", 2, "09:00:00", "09:30:00", None, 20.0, 3.0),
        taxi_trip("tpep", 3, "10:00:00", "10:05:00", 264, 7.25, 0.5),
    ]
    green = [  # two ids named Corona in Queens; a trip without an amount, one without a distance
        taxi_trip("lpep", 4, "11:00:00", "11:20:00", 56, None, 2.0),
        taxi_trip("lpep", 5, "12:00:00", "12:12:00", 57, 15.0, None),
    ]
    fhv = [fhv_trip(6, "13:00:00", "13:40:00", 265), fhv_trip(7, "14:00:00", None, None)]  # NA; no zone, no dropoff
    files = {name: write_trips(lake, name, month, rows) for name, rows in (("yellow", yellow), ("green", green))}
    for name, obj in files.items():
        warehouse.replace_months(DATASETS[name], {partition_key(month): obj})
    zones = read_zones(TEST_DATA / "taxi_zone_lookup.csv")
    pq.write_table(pa.Table.from_pandas(zones, schema=ZONES_SCHEMA, preserve_index=False), lake / "zones.parquet")
    assert warehouse.replace_table(ZONES_TABLE, LakeObject(LocalLakeStore(lake), "zones.parquet"), ZONES_SCHEMA) == 265

    # fhvhv is left out of this month's feeds (test_a_feed_before_its_first_month_... covers first months).
    feeds = {name: first for name, first in analytics.feeds().items() if name != "fhvhv_trips"}
    build = ["build", "--vars", json.dumps({"month": month, "feeds": feeds}), "--select", "+trips_by_zone"]
    capfd.readouterr()
    assert analytics.main(build) == 1
    printed = " ".join(capfd.readouterr().out.split())  # dbt wraps long lines
    assert "trips_by_zone 2021-03: no trips of 2021-03 in fhv_trips (no such table): load that month" in printed
    files["fhv"] = write_trips(lake, "fhv", month, fhv)
    warehouse.replace_months(DATASETS["fhv"], {partition_key(month): files["fhv"]})
    assert analytics.main(build) == 0  # the unknown zones only warn (relationships tests)
    assert "WARN" in capfd.readouterr().out

    expected = expected_trips_by_zone({name: lake / obj.relpath for name, obj in files.items()}, zones)
    actual = mart_rows(warehouse, month)
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)
    assert len(expected) == 5

    rows = {tuple(r[k] for k in KEYS): r for r in actual.to_dict("records")}
    unknown = rows[("yellow", None, None)]
    assert (unknown["trips"], unknown["revenue"]) == (2, 30.5)
    assert unknown["avg_duration_minutes"] == pytest.approx((599.5 / 60 + 30) / 2)
    assert rows[("yellow", "Unknown", "NV")]["trips"] == 1
    assert rows[("green", "Queens", "Corona")]["trips"] == 2
    assert rows[("fhv", "Unknown", "NA")]["avg_duration_minutes"] == 40
    assert np.isnan(rows[("fhv", None, None)]["avg_duration_minutes"])
    assert np.isnan(rows[("fhv", "Unknown", "NA")]["revenue"])


# ------------------------------------------------------------ the BigQuery target, offline


def test_the_models_compile_for_bigquery_and_transpiled_give_the_same_rows(loaded, fake_google, key_json, tmp_path):
    """dbt-bigquery compiles the project offline (its few API calls, table lookups and the
    token, go to the HTTP-boundary fake); each model's BigQuery SQL, parsed with sqlglot's
    BigQuery grammar and transpiled to DuckDB, gives the rows dbt-duckdb built: evidence that
    the two targets' SQL say the same thing (to sqlglot, not to BigQuery)."""
    platform, _ = loaded
    # A DuckDB file's catalog is named after the file: `warehouse`.`main`.t is table t of warehouse.duckdb.
    fake_google.datasets.add(("warehouse", "main"))
    for table in [*(spec.table for spec in DATASETS.values()), ZONES_TABLE]:
        fake_google.tables[("warehouse", "main", table)] = {
            "kind": "bigquery#table",
            "id": f"warehouse:main.{table}",
            "type": "TABLE",
            "tableReference": {"projectId": "warehouse", "datasetId": "main", "tableId": table},
        }
    env = {
        **os.environ,
        **analytics.dbt_env("bigquery://warehouse/main", None, key_json),
        "TAXI_DBT_BQ_API_ENDPOINT": fake_google.url,
    }
    copy = tmp_path / "bq" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copy(platform.root / "warehouse.duckdb", copy)
    out, outputs = tmp_path / "target", []
    for month in MONTHS:
        run = subprocess.run(
            [
                analytics.dbt_executable(),
                "compile",
                "--no-populate-cache",
                "--select",
                "tag:monthly",
                "--vars",
                analytics.dbt_vars(month),
                "--project-dir",
                str(analytics.PROJECT_DIR),
                "--profiles-dir",
                str(analytics.PROJECT_DIR),
                "--target-path",
                str(out),
                "--log-path",
                str(out),
            ],
            env=env,
            cwd=analytics.PROJECT_DIR,
            capture_output=True,
            text=True,
        )
        outputs += [run.stdout, run.stderr]
        assert run.returncode == 0, run.stdout[-3000:]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["metadata"]["adapter_type"] == "bigquery"
        models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
        for mart in ("trips_by_zone", "monthly_zone_revenue"):
            config = models[mart]["config"]
            assert config["incremental_strategy"] == "insert_overwrite"
            assert config["partition_by"]["field"] == "source_month"
            assert config["partition_by"]["granularity"] == "month"
            assert config["partitions"] == [f"DATE '{month}-01'"]  # exactly this month's partition
        sql = {name: model["compiled_code"] for name, model in models.items() if model.get("compiled_code")}
        assert (
            "timestamp_diff(" in sql["stg_yellow_trips"]
            and "`warehouse`.`main`.`yellow_trips`" in sql["stg_yellow_trips"]
        )
        assert f"where source_month = DATE '{month}-01'" in sql["trips_by_zone"]

        with duckdb.connect(str(copy)) as conn:
            conn.execute("SET TimeZone = 'UTC'")  # BigQuery casts a DATETIME to TIMESTAMP as UTC

            def duckdb_text(bigquery_sql: str) -> str:
                return sqlglot.transpile(bigquery_sql, read="bigquery", write="duckdb")[0]

            views = [f"stg_{name}_trips" for name in ["yellow", "green", "fhv", "fhvhv"]] + ["fact_trips"]
            for view in views:  # the BigQuery views, in place of dbt-duckdb's
                conn.execute(f'CREATE OR REPLACE VIEW "{view}" AS {duckdb_text(sql[view])}')
            expected = mart_rows(platform.warehouse(), month)
            actual = conn.execute(duckdb_text(sql["trips_by_zone"])).fetchdf()
            assert {pd.Timestamp(d).date() for d in actual[SOURCE_MONTH_COLUMN]} == {
                dt.date.fromisoformat(f"{month}-01")
            }
            assert len(actual) > 200
            pd.testing.assert_frame_equal(
                normalized(actual.drop(columns=[SOURCE_MONTH_COLUMN])), expected, check_exact=False, rtol=1e-12
            )
            revenue = conn.execute(duckdb_text(sql["monthly_zone_revenue"])).fetchdf()
            pd.testing.assert_frame_equal(
                revenue_normalized(revenue.drop(columns=[SOURCE_MONTH_COLUMN])),
                revenue_rows(platform.warehouse(), month),
                check_exact=False,
                rtol=1e-12,
            )

    # The key reached dbt (it asked the fake for a token) and none of it was printed or logged.
    assert fake_google.issued_tokens
    logs = "\n".join([*outputs, *(p.read_text(errors="replace") for p in out.rglob("*.log"))])
    info = json.loads(key_json)
    fragments = [line for line in info["private_key"].splitlines() if line and "-----" not in line]
    fragments += [info["private_key_id"], *fake_google.issued_tokens]
    assert "Registered adapter: bigquery" in logs
    assert [f[:12] for f in fragments if f in logs] == []


def test_a_feed_before_its_first_month_is_not_required(tmp_path, monkeypatch, capfd):
    """2010-05 has only yellow: the other feeds had not started (their tables do not even
    exist), which is not missing data; yellow missing is."""
    month = "2010-05"
    lake = tmp_path / "lake"
    warehouse = DuckDBWarehouse.at(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("TAXI_WAREHOUSE_URI", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    zones = read_zones(TEST_DATA / "taxi_zone_lookup.csv")
    lake.mkdir()
    pq.write_table(pa.Table.from_pandas(zones, schema=ZONES_SCHEMA, preserve_index=False), lake / "zones.parquet")
    warehouse.replace_table(ZONES_TABLE, LakeObject(LocalLakeStore(lake), "zones.parquet"), ZONES_SCHEMA)
    build = ["build", "--month", month, "--select", "+trips_by_zone"]
    capfd.readouterr()
    assert analytics.main(build) == 1
    printed = " ".join(capfd.readouterr().out.split())
    assert "trips_by_zone 2010-05: no trips of 2010-05 in yellow_trips (no such table): load" in printed

    yellow = write_trips(lake, "yellow", month, [taxi_trip("tpep", 1, "08:00:00", "08:10:00", 7, 10.0, 1.0)])
    warehouse.replace_months(DATASETS["yellow"], {partition_key(month): yellow})
    assert analytics.main(build) == 0
    rows = warehouse.query("SELECT dataset, trips, revenue FROM trips_by_zone").to_pylist()
    assert rows == [{"dataset": "yellow", "trips": 1, "revenue": 10.0}]
