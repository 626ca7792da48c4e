"""The dbt marts on BigQuery, executed: every feed and the zones loaded into a BigQuery emulator
and the dbt models built on it by Dagster, configured from the environment as a deployment is
(TAXI_WAREHOUSE_URI=bigquery://..., a service account key in TAXI_GCP_CREDENTIALS_JSON whose
token endpoint is a local fake, BIGQUERY_EMULATOR_HOST for the warehouse's client and dbt's);
every model's rows, month by month, equal the DuckDB run's of the same lake files.

The feed tables exist before the first load, as the course's own flows leave them (yellow and
green partitioned by pickup day, the others not partitioned): the emulator cannot load into a
month's partition decorator, so each month goes through the staged delete and insert (the
partition loads are tested at the HTTP boundary, test_bigquery_warehouse.py).

The emulator's silent failures are guarded: Parquet inserted by position (the staging table takes
the file's order; every column of every model is compared here), a failed jobs.query answered as
an empty success (the warehouse reads query jobs; a model that failed so would differ here).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from google.cloud import bigquery

from taxi_assets.analytics.runner import dbt_resource
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.assets.keys import mart_key, warehouse_key, zones_key
from taxi_assets.defs.resources import build_resources, warehouse_resource
from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.bigquery_warehouse import table_schema
from taxi_assets.transform.zones import ZONES_TABLE
from taxi_assets_tests.analytics.test_marts import MONTHLY_MODELS, loaded  # noqa: F401 (fixture)
from taxi_assets_tests.defs.test_google_cloud import rsa_key  # noqa: F401 (fixture)
from taxi_assets_tests.fake_google import FakeGoogleServer
from taxi_assets_tests.harness import MONTHS, all_assets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MONTHLY = [*(f"stg_{name}_trips" for name in DATASETS), "fact_trips", "trips_by_zone", "monthly_zone_revenue"]
# The models are built for every loaded month: a month's insert_overwrite must leave the
# other month's partition as it was, which one month alone cannot show.
MART_MONTHS = MONTHS
# The course's tables: the yellow and green trips partitioned by the day of pickup.
COURSE_PARTITIONING = {"yellow": "tpep_pickup_datetime", "green": "lpep_pickup_datetime"}


@pytest.fixture(scope="module")
def token_server():
    """Google's token endpoint, for the service account key (dbt's and the warehouse's)."""
    with FakeGoogleServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def cloud(loaded, bigquery_emulator, token_server, rsa_key, mirror, tmp_path_factory):
    """The BigQuery deployment's environment; the lake is the DuckDB run's (same files)."""
    platform, _ = loaded
    private, _ = rsa_key
    dataset = bigquery_emulator.new_dataset("trips")
    key = {
        "type": "service_account",
        "project_id": bigquery_emulator.project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": private,
        "client_email": f"loader@{bigquery_emulator.project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{token_server.url}/token",
    }
    env = {
        "TAXI_SOURCE_URL": mirror.url_template,
        "TAXI_ZONES_URL": mirror.zones_url,
        "TAXI_ZONE_SHAPES_URL": mirror.zone_shapes_url,
        "TAXI_LAKE_URI": platform.lake_uri,
        "TAXI_WAREHOUSE_URI": f"bigquery://{bigquery_emulator.project}/{dataset}",
        "TAXI_GCP_CREDENTIALS_JSON": json.dumps(key),
        "TAXI_STAGING_DIR": str(tmp_path_factory.mktemp("bq-staging")),
        # The Google client's own setting for another endpoint: the warehouse's client and dbt's.
        "BIGQUERY_EMULATOR_HOST": bigquery_emulator.url,
    }
    client = bigquery_emulator.client()
    for spec in DATASETS.values():
        table = bigquery.Table(f"{bigquery_emulator.project}.{dataset}.{spec.table}")
        table.schema = table_schema(spec.arrow_schema())
        if spec.name in COURSE_PARTITIONING:
            table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field=COURSE_PARTITIONING[spec.name])
        client.create_table(table)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield env


def resources() -> dict:
    return {**build_resources(), "dbt": dbt_resource()}


def load_feed(spec, month: str) -> dg.ExecuteInProcessResult:
    """The warehouse step of a feed's month, from the lake file already there."""
    return dg.materialize(
        build_dataset_assets(spec, "bigquery"),
        selection=[warehouse_key(spec)],
        partition_key=partition_key(month),
        resources=resources(),
    )


def build_marts(month: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        all_assets(), selection=MONTHLY_MODELS, partition_key=partition_key(month), resources=resources()
    )


@pytest.fixture(scope="module")
def built(cloud):
    """Every feed's months and the zones into BigQuery, then the dbt models month by month."""
    loads = {(spec.name, month): load_feed(spec, month) for month in MONTHS for spec in DATASETS.values()}
    zones = dg.materialize(
        all_assets(), selection=[zones_key("warehouse"), mart_key("dim_zones")], resources=resources()
    )
    marts = {month: build_marts(month) for month in MART_MONTHS}
    return loads, zones, marts


def bigquery_warehouse(cloud):
    return warehouse_resource(cloud["TAXI_WAREHOUSE_URI"], gcp_credentials_json=cloud["TAXI_GCP_CREDENTIALS_JSON"])


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of either warehouse in one form: columns by name, timestamps as naive datetimes,
    dates as dates, numbers as floats, missing as None; sorted by every column."""
    df = df.copy()
    for column in df.columns:
        values = df[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.tz_localize(None) if values.dt.tz is not None else values
            df[column] = values.astype("datetime64[us]").astype(object)
        elif pd.api.types.is_numeric_dtype(values) or values.map(lambda v: isinstance(v, int | float)).all():
            df[column] = values.astype(float)
        else:
            df[column] = values.map(lambda v: v.date() if isinstance(v, pd.Timestamp) else v)
        df[column] = df[column].astype(object).where(df[column].notna(), None)
    columns = sorted(df.columns)
    key = df[columns].map(lambda v: (v is None, "" if v is None else str(v) if not isinstance(v, float) else v))
    return df.loc[key.sort_values(columns).index, columns].reset_index(drop=True)


def rows(warehouse, model: str, month: str | None) -> pd.DataFrame:
    where = f" WHERE {SOURCE_MONTH_COLUMN} = DATE '{month}-01'" if month else ""
    return comparable(warehouse.query(f"SELECT * FROM {warehouse.table_ref(model)}{where}").to_pandas())


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(actual.columns) == list(expected.columns), what
    assert len(actual) == len(expected), what
    for column in expected.columns:
        a, e = actual[column].tolist(), expected[column].tolist()
        if any(isinstance(v, float) for v in e):
            assert np.allclose(np.array(a, dtype=float), np.array(e, dtype=float), rtol=1e-9, equal_nan=True), (
                f"{what}.{column}"
            )
        else:
            assert a == e, f"{what}.{column}"


def test_every_model_on_bigquery_equals_the_duckdb_run_month_by_month(loaded, built, cloud):
    platform, _ = loaded
    loads, zones, marts = built
    assert all(r.success for r in loads.values()) and zones.success
    bq, duck = bigquery_warehouse(cloud), platform.warehouse()
    for (name, month), result in loads.items():
        (event,) = result.asset_materializations_for_node(f"warehouse__{name}_trips")
        assert event.metadata["replaced_by"].value == "staged delete and insert"
    for spec in DATASETS.values():
        assert bq.month_row_counts(spec) == duck.month_row_counts(spec)
        assert set(bq.month_row_counts(spec)) == set(MONTHS)
    assert_same(rows(bq, ZONES_TABLE, None), rows(duck, ZONES_TABLE, None), ZONES_TABLE)
    assert_same(rows(bq, "dim_zones", None), rows(duck, "dim_zones", None), "dim_zones")
    for month in MART_MONTHS:
        assert marts[month].success
        for model in MONTHLY:
            expected = rows(duck, model, month)
            assert len(expected) > 100, model  # not an empty comparison
            assert_same(rows(bq, model, month), expected, f"{model} {month}")
        # The figures the UI plots were read from BigQuery.
        (event,) = [
            e for e in marts[month].get_asset_materialization_events() if e.asset_key == mart_key("trips_by_zone")
        ]
        lake_rows = sum(
            pq.ParquetFile(platform.lake().root / n / f"month={month}" / "part-0.parquet").metadata.num_rows
            for n in DATASETS
        )
        assert event.materialization.metadata["total_trips"].value == lake_rows


def test_dbt_tests_ran_on_bigquery_as_asset_checks_that_passed(built):
    _, zones, marts = built
    for result in [zones, *marts.values()]:
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    names = {c.check_name for c in marts[MONTHS[0]].get_asset_check_evaluations()}
    assert "not_null_trips_by_zone_trips" in names and "not_null_stg_yellow_trips_pickup_datetime" in names


def test_a_month_run_again_is_replaced_not_appended(loaded, built, cloud):
    platform, _ = loaded
    bq, duck = bigquery_warehouse(cloud), platform.warehouse()
    month = MONTHS[0]
    counts = {spec.name: bq.month_row_counts(spec) for spec in DATASETS.values()}
    # The feed's month loaded again, then the month's models built again.
    assert load_feed(DATASETS["yellow"], month).success
    assert {spec.name: bq.month_row_counts(spec) for spec in DATASETS.values()} == counts
    assert build_marts(month).success
    for model in MONTHLY:
        for m in MART_MONTHS:
            assert_same(rows(bq, model, m), rows(duck, model, m), f"{model} {m} after the rerun")
    totals = bq.query("SELECT source_month, SUM(trips) AS trips FROM trips_by_zone GROUP BY 1 ORDER BY 1").to_pylist()
    assert [r["source_month"] for r in totals] == [dt.date.fromisoformat(f"{m}-01") for m in MART_MONTHS]
