"""The dbt project agrees with the spec table, and its manifest is made ahead of time."""

import json
import os
import re

import pyarrow as pa
import yaml

from taxi_assets.analytics import project as analytics
from taxi_assets.defs.assets.keys import warehouse_key, zones_key
from taxi_assets.spec.datasets import DATASETS

SOURCES = analytics.PROJECT_DIR / "models" / "sources.yml"


def neutral_type(t: pa.DataType) -> str:
    """sources.yml's column types (macros/cross_db.sql sql_type maps them per adapter)."""
    for name, test in [
        ("int", pa.types.is_int32),
        ("bigint", pa.types.is_int64),
        ("float", pa.types.is_floating),
        ("timestamp", pa.types.is_timestamp),
        ("date", pa.types.is_date),
        ("string", pa.types.is_string),
    ]:
        if test(t):
            return name
    raise TypeError(t)


def test_every_dataset_is_a_source_with_its_columns_types_and_first_month():
    (source,) = yaml.safe_load(SOURCES.read_text())["sources"]
    tables = {t["name"]: t for t in source["tables"]}
    for spec in DATASETS.values():
        table = tables[spec.table]
        assert table["config"]["meta"]["first_month"] == spec.first_month
        assert table["config"]["meta"]["dagster"]["asset_key"] == list(warehouse_key(spec).path)
        assert [(c["name"], c["data_type"]) for c in table["columns"]] == [
            (f.name, neutral_type(f.type)) for f in spec.arrow_schema()
        ], spec.name
        assert (analytics.PROJECT_DIR / "models" / "staging" / f"stg_{spec.name}_trips.sql").exists()
    assert tables["taxi_zone_lookup"]["config"]["meta"]["dagster"]["asset_key"] == list(zones_key("warehouse").path)
    assert analytics.feeds() == {spec.table: spec.first_month for spec in DATASETS.values()}


# The vocabulary every staging view shares: (column, type of sources.yml) in order.
STAGING_MACROS = (analytics.PROJECT_DIR / "macros" / "staging.sql").read_text()
VOCABULARY = re.findall(
    r"\('(\w+)', '(\w+)'\)", re.search(r"macro trip_vocabulary\(\).*?endmacro", STAGING_MACROS, re.S).group(0)
)
CAST = re.compile(r"cast\(\s*(.+?)\s+as \{\{ sql_type\('(\w+)'\) \}\}\s*\) as (\w+)", re.S)


def staging_select(spec) -> tuple[list[tuple[str, str, str]], str]:
    """A staging model's select list as (column, type, expression), and what it selects from."""
    sql = (analytics.PROJECT_DIR / "models" / "staging" / f"stg_{spec.name}_trips.sql").read_text()
    sql = re.sub(r"\{#.*?#\}|--[^\n]*", "", sql, flags=re.S)
    match = re.fullmatch(r"\s*select\s+(.+?)\s+from (.+?)\s*", sql, flags=re.S)
    assert match, f"stg_{spec.name}_trips: one select from the feed's source"
    columns = []
    for item in re.split(r",\n", match.group(1)):
        item = item.strip()
        if item == "source_month":  # passed through uncast: BigQuery prunes partitions through the view
            columns.append(("source_month", "date", "source_month"))
            continue
        cast = CAST.fullmatch(item)
        assert cast, f"stg_{spec.name}_trips: {item!r} is not cast(... as {{{{ sql_type(...) }}}}) as a column"
        expression, sql_type, name = cast.groups()
        columns.append((name, sql_type, expression))
    return columns, match.group(2)


def test_each_staging_model_names_and_casts_the_vocabulary_explicitly_from_its_one_source():
    (source,) = yaml.safe_load(SOURCES.read_text())["sources"]
    source_columns = {t["name"]: {c["name"] for c in t["columns"]} for t in source["tables"]}
    assert ("revenue_amount", "float") in VOCABULARY
    for spec in DATASETS.values():
        columns, selected_from = staging_select(spec)
        assert selected_from == f"{{{{ source_or_empty('{spec.table}') }}}}", spec.name
        assert [(name, sql_type) for name, sql_type, _ in columns] == VOCABULARY, spec.name
        for name, _, expression in columns:
            read = set(re.findall(r"'?\b([A-Za-z_]\w*)\b'?", expression)) - {"null", "seconds_between", "sql_type"}
            assert read <= source_columns[spec.table] | {spec.name}, (spec.name, name, read)


def test_each_staging_model_maps_the_spec_tables_amount_distance_times_and_zone():
    """trips_by_zone sums a feed's amount column of the spec table and averages its distance."""
    for spec in DATASETS.values():
        mapped = {name: expression for name, _, expression in staging_select(spec)[0]}
        assert mapped["revenue_amount"] == (spec.amount_column or "null"), spec.name
        assert mapped["trip_distance"] == (spec.distance_column or "null"), spec.name
        assert mapped["pickup_datetime"] == spec.pickup_column and mapped["dropoff_datetime"] == spec.dropoff_column
        assert mapped["pickup_location_id"] == spec.pickup_location_column
        assert mapped["service_type"] == f"'{spec.name}'"


def test_the_manifest_is_current_so_loading_the_definitions_parses_nothing():
    analytics.prepare_manifest()
    assert analytics.manifest_is_current()
    manifest = json.loads(analytics.MANIFEST_PATH.read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {"dim_zones", "fact_trips", "trips_by_zone", "monthly_zone_revenue"} <= models
    assert {f"stg_{spec.name}_trips" for spec in DATASETS.values()} <= models
    # A project file newer than the manifest makes it stale (and the next load parses once).
    built = analytics.MANIFEST_PATH.stat().st_mtime
    newest = max(p.stat().st_mtime for p in analytics._project_files())
    assert newest <= built


def test_the_dbt_process_gets_the_warehouse_and_the_key_in_its_environment_only(tmp_path):
    env = analytics.dbt_env(f"duckdb:///{tmp_path}/w.duckdb")
    assert env == {"TAXI_DBT_TARGET": "duckdb", "TAXI_DBT_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    key = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "client_email": "a@p.iam",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key["private_key"] = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    env = analytics.dbt_env("bigquery://proj/ds", "EU", json.dumps(key))
    assert env["TAXI_DBT_BQ_PROJECT"] == "proj" and env["TAXI_DBT_BQ_DATASET"] == "ds"
    assert env["DBT_ENV_SECRET_GCP_PRIVATE_KEY"] == key["private_key"]
    assert env["DBT_ENV_SECRET_GCP_PRIVATE_KEY_ID"] == "k1"
    # Given to the dbt process, on top of this process's environment, which stays as it is.
    before = dict(os.environ)
    spawned = analytics.dbt_process_env(env)
    assert spawned["DBT_ENV_SECRET_GCP_PRIVATE_KEY"] == key["private_key"] and spawned["PATH"] == os.environ["PATH"]
    assert dict(os.environ) == before
