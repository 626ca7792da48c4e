"""Resources from the environment: embedded defaults unless an env var says otherwise.

| env var             | default                                  |
| TAXI_SOURCE_URL     | URL template(s), space-separated, first that has the month wins: course CSV.gz mirror, then TLC Parquet |
| TAXI_ZONES_URL      | the course mirror's taxi_zone_lookup.csv  |
| TAXI_ZONE_SHAPES_URL | TLC's taxi_zones.zip (shapefile)         |
| TAXI_LAKE_URI       | ./data/lake        (or gs://bucket/prefix) |
| TAXI_WAREHOUSE_URI  | duckdb:///./data/warehouse.duckdb (or bigquery://project/dataset) |
| TAXI_STAGING_DIR    | ./data/staging     (scratch for files being built) |
| TAXI_GCP_CREDENTIALS_JSON | unset: GOOGLE_APPLICATION_CREDENTIALS, else application-default credentials |
| TAXI_BIGQUERY_LOCATION    | unset: the dataset's location |

TAXI_SOURCE_URL and TAXI_WAREHOUSE_URI are checked here, when the definitions load,
and again by their resources when a run starts (ConfigError naming the variable).
"""

from __future__ import annotations

import os

import dagster as dg

from taxi_assets.defs.assets.marts import dbt_resource
from taxi_assets.source.resource import (
    DEFAULT_SOURCE_URL,
    DEFAULT_ZONE_SHAPES_URL,
    DEFAULT_ZONES_URL,
    TaxiSource,
    check_url_template,
)
from taxi_assets.storage.gcp import CREDENTIALS_ENV
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import DEFAULT_LAKE_URI
from taxi_assets.storage.warehouse import DEFAULT_WAREHOUSE_URI, Warehouse, check_warehouse_uri


def env_or_default(name: str, default: str | None) -> str | dg.EnvVar | None:
    """EnvVar when set (so the UI shows where a value comes from), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def source_url() -> str:
    return check_url_template(os.environ.get("TAXI_SOURCE_URL") or DEFAULT_SOURCE_URL)


def lake_uri() -> str:
    return os.environ.get("TAXI_LAKE_URI") or DEFAULT_LAKE_URI


def warehouse_uri() -> str:
    uri = os.environ.get("TAXI_WAREHOUSE_URI") or DEFAULT_WAREHOUSE_URI
    check_warehouse_uri(uri)
    return uri


def check_settings() -> None:
    """Settings that cannot work fail the definitions' load with a message naming them
    (ConfigError), not a run half-way through; resources check again at run start."""
    source_url()
    warehouse_uri()


def build_resources() -> dict[str, object]:
    check_settings()
    # The key's JSON is only ever an EnvVar: Dagster then shows and stores its name, not its value.
    credentials = env_or_default(CREDENTIALS_ENV, None)
    return {
        "source": TaxiSource(
            url_template=env_or_default("TAXI_SOURCE_URL", DEFAULT_SOURCE_URL),
            zones_url=env_or_default("TAXI_ZONES_URL", DEFAULT_ZONES_URL),
            zone_shapes_url=env_or_default("TAXI_ZONE_SHAPES_URL", DEFAULT_ZONE_SHAPES_URL),
        ),
        "lake_io_manager": LakeIOManager(
            lake_uri=env_or_default("TAXI_LAKE_URI", DEFAULT_LAKE_URI), gcp_credentials_json=credentials
        ),
        # The dbt project's models run against `warehouse` (marts.py points dbt at it).
        "dbt": dbt_resource(),
        "warehouse": Warehouse(
            uri=env_or_default("TAXI_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI),
            location=env_or_default("TAXI_BIGQUERY_LOCATION", None),
            gcp_credentials_json=credentials,
        ),
    }
