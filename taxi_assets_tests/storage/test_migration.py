"""A DuckDB warehouse made by the previous version gains the new columns in place: no reload, no row lost."""

from __future__ import annotations

import duckdb

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.transform.convert import convert
from taxi_assets_tests.helpers import csv_data_rows, mirror_file

YELLOW = DATASETS["yellow"]
# yellow_trips as the version before the whole record created it (written out, not derived).
PREVIOUS_DDL = """CREATE TABLE yellow_trips ("VendorID" INTEGER, "tpep_pickup_datetime" TIMESTAMP,
 "tpep_dropoff_datetime" TIMESTAMP, "passenger_count" INTEGER, "trip_distance" DOUBLE, "RatecodeID" INTEGER,
 "store_and_fwd_flag" VARCHAR, "PULocationID" INTEGER, "DOLocationID" INTEGER, "payment_type" INTEGER,
 "fare_amount" DOUBLE, "extra" DOUBLE, "mta_tax" DOUBLE, "tip_amount" DOUBLE, "tolls_amount" DOUBLE,
 "improvement_surcharge" DOUBLE, "total_amount" DOUBLE, "congestion_surcharge" DOUBLE, "airport_fee" DOUBLE,
 "cbd_congestion_fee" DOUBLE, "source_month" DATE)"""
COORDINATES = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]


def test_previous_schema_is_migrated_without_reload_or_loss(platform, mirror_root, tmp_path):
    # The previous version's warehouse, holding 2021-01.
    lake_file = tmp_path / "old.parquet"
    convert(YELLOW, "2021-01", mirror_file(mirror_root, "yellow", "2021-01"), lake_file)
    path = platform.warehouse_uri.removeprefix("duckdb:///")
    with duckdb.connect(path) as conn:
        conn.execute(PREVIOUS_DDL)
        old_columns = [r[0] for r in conn.execute("SELECT name FROM pragma_table_info('yellow_trips')").fetchall()]
        names = ", ".join(f'"{c}"' for c in old_columns)
        conn.execute(f"INSERT INTO yellow_trips SELECT {names} FROM read_parquet(?)", [str(lake_file)])
        conn.execute(f"CREATE TABLE before AS SELECT {names} FROM yellow_trips")
    january = csv_data_rows(mirror_file(mirror_root, "yellow", "2021-01"))

    result = platform.materialize(YELLOW, "2021-02")  # the new version loads the next month
    assert result.success
    wh_md = result.asset_materializations_for_node("warehouse__yellow_trips")[0].metadata
    assert wh_md["migrated_columns"].value == ", ".join(COORDINATES)

    with duckdb.connect(path) as conn:
        columns = [r[0] for r in conn.execute("SELECT name FROM pragma_table_info('yellow_trips')").fetchall()]
        assert columns == old_columns + COORDINATES
        # January is untouched, row for row (as a multiset), and reads the new columns as null.
        diff = conn.execute(
            f"SELECT count(*) FROM ((SELECT {names} FROM yellow_trips WHERE source_month = '2021-01-01') "
            f"EXCEPT ALL (SELECT * FROM before)) UNION ALL SELECT count(*) FROM ((SELECT * FROM before) "
            f"EXCEPT ALL (SELECT {names} FROM yellow_trips WHERE source_month = '2021-01-01'))"
        ).fetchall()
        assert diff == [(0,), (0,)]
        counts = dict(
            conn.execute("SELECT strftime(source_month, '%Y-%m'), count(*) FROM yellow_trips GROUP BY 1").fetchall()
        )
        assert counts == {"2021-01": january, "2021-02": csv_data_rows(mirror_file(mirror_root, "yellow", "2021-02"))}
        assert conn.execute("SELECT count(pickup_longitude) FROM yellow_trips").fetchone() == (0,)
