"""The trips-by-zone mart against an independent pandas computation over the same lake
files, on a real DuckDB warehouse loaded through the whole asset graph from the mirror."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from taxi_assets.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.defs.assets import build_all_assets
from taxi_assets.defs.assets.keys import mart_key, shapes_key, warehouse_key, zones_key
from taxi_assets.defs.assets.mart_map import MAP_METADATA_KEY
from taxi_assets.errors import NotLoadedError
from taxi_assets.geo.choropleth import render_choropleth
from taxi_assets.geo.shapes import read_shapes_parquet
from taxi_assets.mart import DUCKDB, build_trips_by_zone_month, dialect_for, month_totals_sql, trips_by_zone_sql
from taxi_assets.months import partition_key
from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse
from taxi_assets.storage.lake import LakeObject, LocalLakeStore
from taxi_assets.zones import ZONES_SCHEMA, ZONES_TABLE
from taxi_assets_tests.conftest import MONTHS, TEST_DATA, Platform

MART = mart_key("trips_by_zone")
# Written out here rather than taken from the specs, so the reference is independent.
TRIP_COLUMNS = {  # dataset: (pickup time, dropoff time, amount, distance)
    "yellow": ("tpep_pickup_datetime", "tpep_dropoff_datetime", "total_amount", "trip_distance"),
    "green": ("lpep_pickup_datetime", "lpep_dropoff_datetime", "total_amount", "trip_distance"),
    "fhv": ("pickup_datetime", "dropoff_datetime", None, None),
    "fhvhv": ("pickup_datetime", "dropoff_datetime", "base_passenger_fare", "trip_miles"),
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
        # Feeds have their own first months (partitions): one run per feed, then zones and mart.
        for month in MONTHS:
            for spec in DATASETS.values():
                assert platform.materialize(spec, month).success
        zones_and_mart = dg.AssetSelection.assets(MART).upstream() - dg.AssetSelection.groups(*DATASETS)
        results = {month: platform.materialize_selection(zones_and_mart, month) for month in MONTHS}
        yield platform, results


def lake_files(platform: Platform, month: str) -> dict[str, Path]:
    return {name: platform.lake().root / name / f"month={month}" / "part-0.parquet" for name in DATASETS}


def test_mart_equals_an_independent_pandas_computation_for_two_months(loaded, mirror_root):
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
        (event,) = results[month].asset_materializations_for_node("mart__trips_by_zone")
        md = {k: v.value for k, v in event.metadata.items()}
        assert md["dagster/row_count"] == len(expected)
        assert md["total_trips"] == expected["trips"].sum()
        lake_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in lake_files(platform, month).values())
        assert md["total_trips"] == lake_rows
        assert md["total_revenue"] == pytest.approx(expected["revenue"].sum(), abs=0.01)
        for name in DATASETS:
            assert md[f"trips_{name}"] == expected.loc[expected["dataset"] == name, "trips"].sum()
        assert "revenue_fhv" not in md
        assert expected.loc[expected["dataset"] == "fhv", "revenue"].isna().all()


def test_column_lineage_names_real_upstream_columns(loaded):
    platform, results = loaded
    (event,) = results[MONTHS[0]].asset_materializations_for_node("mart__trips_by_zone")
    lineage = event.metadata["dagster/column_lineage"].value
    schema = event.metadata["dagster/column_schema"].value
    assert set(lineage.deps_by_column) <= {c.name for c in schema.columns}
    assert {d.asset_key for d in lineage.deps_by_column["pickup_zone"]} == {
        zones_key("warehouse"),
        *(warehouse_key(spec) for spec in DATASETS.values()),
    }
    # Every column a dependency names exists in that upstream table.
    upstream = {}
    for key in (zones_key("warehouse"), *(warehouse_key(s) for s in DATASETS.values())):
        table = key.path[-1]
        upstream[key] = set(platform.warehouse().query(f"SELECT * FROM {table} LIMIT 0").column_names)
    for deps in lineage.deps_by_column.values():
        for dep in deps:
            assert dep.column_name in upstream[dep.asset_key], dep


def test_each_month_carries_its_pickup_map_drawn_from_the_lake_shapes(loaded):
    platform, results = loaded
    shapes = read_shapes_parquet(platform.lake().root / "taxi_zone_shapes" / "part-0.parquet")
    pngs = []
    for month in MONTHS:
        (event,) = results[month].asset_materializations_for_node("mart__trips_by_zone")
        text = event.metadata[MAP_METADATA_KEY].value
        match = re.match(r"!\[Pickups by taxi zone, (\d{4}-\d\d)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
        assert match and match.group(1) == month, text[:200]
        png = base64.b64decode(match.group(2))
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        # The same picture as drawn here from the month's mart rows: the map is of that month.
        rows = platform.warehouse().query(
            f"SELECT pickup_borough, pickup_zone, sum(trips) AS trips FROM trips_by_zone "
            f"WHERE source_month = DATE '{month}-01' AND pickup_zone IS NOT NULL GROUP BY ALL"
        ).to_pylist()
        values = {(r["pickup_borough"], r["pickup_zone"]): r["trips"] for r in rows}
        assert len(values) > 100
        assert png == render_choropleth(shapes, values, f"Pickups by taxi zone, {month}", "pickups (all datasets)")
        pngs.append(png)
    assert pngs[0] != pngs[1]


def test_rematerializing_months_does_not_duplicate_them(loaded):
    platform, _ = loaded
    before = {month: mart_rows(platform.warehouse(), month) for month in MONTHS}
    # Once for one month, then both months in one ranged run (the single-run backfill path).
    assert platform.materialize_selection(MART.to_user_string(), MONTHS[0]).success
    ranged = dg.materialize(
        build_all_assets("duckdb"),
        selection=MART.to_user_string(),
        resources=platform.resources(),
        tags={
            "dagster/asset_partition_range_start": partition_key(MONTHS[0]),
            "dagster/asset_partition_range_end": partition_key(MONTHS[-1]),
        },
    )
    assert ranged.success
    for month in MONTHS:
        pd.testing.assert_frame_equal(mart_rows(platform.warehouse(), month), before[month])
    counts = platform.warehouse().query(
        "SELECT strftime(source_month, '%Y-%m') AS m, count(*) AS n, sum(trips) AS trips "
        "FROM trips_by_zone GROUP BY m ORDER BY m"
    ).to_pylist()
    assert [c["m"] for c in counts] == MONTHS
    assert [c["n"] for c in counts] == [len(before[m]) for m in MONTHS]
    # A ranged run records each month's own figures, not the range's.
    events = {e.partition: e for e in ranged.get_asset_materialization_events()}
    for c in counts:
        assert events[partition_key(c["m"])].materialization.metadata["total_trips"].value == c["trips"]


def test_the_bigquery_sql_transpiled_to_duckdb_gives_the_same_rows(loaded):
    """The mart's BigQuery text, parsed with sqlglot's BigQuery grammar and transpiled to DuckDB,
    gives the rows the DuckDB text gives on the same warehouse: evidence that the two texts say
    the same thing and that the BigQuery one reads as BigQuery SQL (to sqlglot, not to BigQuery)."""
    platform, _ = loaded
    specs = list(DATASETS.values())
    # A DuckDB file's catalog is named after the file: `warehouse.main.t` is table t of warehouse.duckdb.
    bigquery = dialect_for("bigquery://warehouse/main")
    with duckdb.connect(str(platform.root / "warehouse.duckdb"), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")  # BigQuery casts a DATETIME to TIMESTAMP as UTC

        def rows(sql: str, read: str | None = None) -> pd.DataFrame:
            text = sqlglot.transpile(sql, read=read, write="duckdb")[0] if read else sql
            return conn.execute(text).fetchdf()

        for month in MONTHS:
            expected = rows(trips_by_zone_sql(specs, DUCKDB, month))
            assert len(expected) > 200
            actual = rows(trips_by_zone_sql(specs, bigquery, month), read="bigquery")
            pd.testing.assert_frame_equal(
                normalized(actual.drop(columns=[SOURCE_MONTH_COLUMN])),
                normalized(expected.drop(columns=[SOURCE_MONTH_COLUMN])),
                check_exact=False, rtol=1e-12,
            )
            assert set(actual[SOURCE_MONTH_COLUMN]) == set(expected[SOURCE_MONTH_COLUMN])
            totals = rows(month_totals_sql(bigquery, month), read="bigquery").sort_values("dataset")
            pd.testing.assert_frame_equal(
                totals.reset_index(drop=True),
                rows(month_totals_sql(DUCKDB, month)).sort_values("dataset").reset_index(drop=True),
                check_exact=False, rtol=1e-12,
            )


def test_asset_graph_shows_the_join():
    from taxi_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    tables = {zones_key("warehouse"), *(warehouse_key(s) for s in DATASETS.values())}
    # The zone shapes: the month's pickup map.
    assert graph.get(MART).parent_keys == tables | {shapes_key("lake")}
    assert graph.get(zones_key("warehouse")).parent_keys == {zones_key("lake")}
    assert graph.get(zones_key("lake")).parent_keys == {zones_key("raw")}


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


def test_unknown_pickup_zones_are_kept_and_missing_inputs_are_refused(tmp_path):
    month = "2021-03"
    lake = tmp_path / "lake"
    warehouse = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
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

    specs = [DATASETS[name] for name in ("yellow", "green", "fhv")]
    with pytest.raises(NotLoadedError, match=r"trips_by_zone 2021-03: no trips of 2021-03 in fhv_trips"):
        build_trips_by_zone_month(warehouse, DUCKDB, specs, month)
    files["fhv"] = write_trips(lake, "fhv", month, fhv)
    warehouse.replace_months(DATASETS["fhv"], {partition_key(month): files["fhv"]})
    with pytest.raises(NotLoadedError, match=r"cannot read the zone table taxi_zone_lookup"):
        build_trips_by_zone_month(warehouse, DUCKDB, specs, month)

    zones = read_zones(TEST_DATA / "taxi_zone_lookup.csv")
    pq.write_table(pa.Table.from_pandas(zones, schema=ZONES_SCHEMA, preserve_index=False), lake / "zones.parquet")
    zones_file = LakeObject(LocalLakeStore(lake), "zones.parquet")
    assert warehouse.replace_table(ZONES_TABLE, zones_file, ZONES_SCHEMA) == 265

    result = build_trips_by_zone_month(warehouse, DUCKDB, specs, month)
    expected = expected_trips_by_zone({name: lake / obj.relpath for name, obj in files.items()}, zones)
    actual = mart_rows(warehouse, month)
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)
    assert result.rows == len(expected) == 5

    rows = {tuple(r[k] for k in KEYS): r for r in actual.to_dict("records")}
    unknown = rows[("yellow", None, None)]
    assert (unknown["trips"], unknown["revenue"]) == (2, 30.5)
    assert unknown["avg_duration_minutes"] == pytest.approx((599.5 / 60 + 30) / 2)
    assert rows[("yellow", "Unknown", "NV")]["trips"] == 1
    assert rows[("green", "Queens", "Corona")]["trips"] == 2
    assert rows[("fhv", "Unknown", "NA")]["avg_duration_minutes"] == 40
    assert np.isnan(rows[("fhv", None, None)]["avg_duration_minutes"])
    assert result.totals["yellow"]["unknown_zone_trips"] == 2
    assert result.totals["fhv"]["revenue"] is None


def test_a_feed_before_its_first_month_is_left_out_not_refused(tmp_path):
    """2010-05 has only yellow: the other feeds had not started, which is not missing data."""
    month = "2010-05"
    lake = tmp_path / "lake"
    warehouse = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    specs = list(DATASETS.values())
    with pytest.raises(NotLoadedError, match=r"no trips of 2010-05 in yellow_trips: load"):
        build_trips_by_zone_month(warehouse, DUCKDB, specs, month)
    yellow = write_trips(lake, "yellow", month, [taxi_trip("tpep", 1, "08:00:00", "08:10:00", 7, 10.0, 1.0)])
    warehouse.replace_months(DATASETS["yellow"], {partition_key(month): yellow})
    zones = read_zones(TEST_DATA / "taxi_zone_lookup.csv")
    pq.write_table(pa.Table.from_pandas(zones, schema=ZONES_SCHEMA, preserve_index=False), lake / "zones.parquet")
    warehouse.replace_table(ZONES_TABLE, LakeObject(LocalLakeStore(lake), "zones.parquet"), ZONES_SCHEMA)
    result = build_trips_by_zone_month(warehouse, DUCKDB, specs, month)
    assert set(result.totals) == {"yellow"} and result.totals["yellow"]["trips"] == 1
