"""Resources from the environment: embedded defaults unless an env var says otherwise.

| env var             | default                                  |
| TAXI_SOURCE_URL     | URL template(s), space-separated, first that has the month wins: course CSV.gz mirror, then TLC Parquet |
| TAXI_ZONES_URL      | the course mirror's taxi_zone_lookup.csv  |
| TAXI_LAKE_URI       | ./data/lake        (or gs://bucket/prefix) |
| TAXI_WAREHOUSE_URI  | duckdb:///./data/warehouse.duckdb (or bigquery://project/dataset) |
| TAXI_STAGING_DIR    | ./data/staging     (scratch for files being built) |
| TAXI_GCP_CREDENTIALS_JSON | unset: GOOGLE_APPLICATION_CREDENTIALS, else application-default credentials |
| TAXI_BIGQUERY_LOCATION    | unset: the dataset's location |
| TAXI_GCS_DROP_URI         | unset: no drop zone (gs://bucket/prefix watched by gcs_drop_sensor) |
| TAXI_ZONE_INDEX_CACHE     | unset: no folder keeping built zone indexes |

This is the one module that reads the environment: every setting is a resource field
filled here when the definitions are built; nothing reads os.environ during a run.

TAXI_SOURCE_URL and TAXI_WAREHOUSE_URI are checked here, when the definitions load,
and again by their resources when a run starts (ConfigError naming the variable).
Each becomes the default of its resource field, so run config that sets some fields of a
resource (the launchpad) keeps these settings for the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg
from pydantic import Field

from taxi_assets.defs.sensors.common import INTERVAL_ENV, START_MONTH_ENV, WatchLimits, parse_start_months
from taxi_assets.geo.stored import CACHE_ENV, ZoneIndexResource
from taxi_assets.source.drop_zone import DROP_URI_ENV
from taxi_assets.source.resource import (
    DEFAULT_SOURCE_URL,
    DEFAULT_ZONE_SHAPES_URL,
    DEFAULT_ZONES_URL,
    TaxiSource,
    check_url_template,
    download_pool,
)
from taxi_assets.storage.gcp import CREDENTIALS_ENV
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import DEFAULT_LAKE_URI
from taxi_assets.storage.staging import DEFAULT_STAGING_DIR
from taxi_assets.storage.warehouse import DEFAULT_WAREHOUSE_URI, Warehouse, check_warehouse_uri, warehouse_kind


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


@dataclass(frozen=True)
class LoadSettings:
    """What the environment decides about the graph itself, read once when the definitions
    load (this module is the one place that reads it): the warehouse kind each warehouse
    asset shows in the UI, the concurrency pool of the downloads (one per source host),
    and how often the source sensors may look."""

    warehouse_kind: str
    download_pool: str
    watch_limits: WatchLimits


def watch_limits() -> WatchLimits:
    interval = os.environ.get(INTERVAL_ENV, "").strip()
    if interval and not interval.isdigit():
        raise ValueError(f"{INTERVAL_ENV} must be a whole number of seconds, got {interval!r}")
    start, per_dataset = parse_start_months(os.environ.get(START_MONTH_ENV, ""))
    return WatchLimits(
        interval_s=int(interval) if interval else WatchLimits.interval_s,
        start_month=start,
        start_months=per_dataset,
    )


def load_settings() -> LoadSettings:
    return LoadSettings(
        warehouse_kind=warehouse_kind(warehouse_uri()),
        download_pool=download_pool(source_url()),
        watch_limits=watch_limits(),
    )


R = TypeVar("R", bound=dg.ConfigurableResource | dg.ConfigurableIOManager)


def with_field_defaults(cls: type[R], **settings: object) -> R:
    """`cls(**settings)`, as a subclass whose fields default to `settings` (an EnvVar by its
    name). Dagster makes the values given to a resource the default of its whole config:
    run config that sets one field (the launchpad) would drop the others back to the class's
    defaults (another source, another warehouse); field defaults fill in each field left out."""
    fields = cls.model_fields
    defaults = {
        name: {"env": value.env_var_name} if isinstance(value, dg.EnvVar) else value
        for name, value in settings.items()
        if value is not None
    }
    namespace: dict[str, object] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__annotations__": {name: fields[name].annotation for name in defaults},
    }
    for name, value in defaults.items():
        namespace[name] = Field(default=value, description=fields[name].description)
    return type(cls.__name__, (cls,), namespace)(**settings)


def warehouse_resource(
    uri: str | dg.EnvVar,
    kind: str | None = None,
    location: str | dg.EnvVar | None = None,
    gcp_credentials_json: str | dg.EnvVar | None = None,
) -> Warehouse:
    """The backend of `uri`'s kind (given when `uri` is an EnvVar, whose value the resource
    only sees at run start), each its own resource behind the `Warehouse` protocol."""
    if kind is None:
        kind = warehouse_kind(str(uri))
    if kind == "bigquery":
        from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse

        return with_field_defaults(
            BigQueryWarehouse, uri=uri, location=location, gcp_credentials_json=gcp_credentials_json
        )
    from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse

    return with_field_defaults(DuckDBWarehouse, uri=uri)


def build_resources() -> dict[str, object]:
    check_settings()
    # The key's JSON is only ever an EnvVar: Dagster then shows and stores its name, not its value.
    credentials = env_or_default(CREDENTIALS_ENV, None)
    return {
        "source": with_field_defaults(
            TaxiSource,
            url_template=env_or_default("TAXI_SOURCE_URL", DEFAULT_SOURCE_URL),
            zones_url=env_or_default("TAXI_ZONES_URL", DEFAULT_ZONES_URL),
            zone_shapes_url=env_or_default("TAXI_ZONE_SHAPES_URL", DEFAULT_ZONE_SHAPES_URL),
            gcs_drop_uri=env_or_default(DROP_URI_ENV, None),
            gcp_credentials_json=credentials,
        ),
        "lake_io_manager": with_field_defaults(
            LakeIOManager,
            lake_uri=env_or_default("TAXI_LAKE_URI", DEFAULT_LAKE_URI),
            gcp_credentials_json=credentials,
            staging_dir=env_or_default("TAXI_STAGING_DIR", DEFAULT_STAGING_DIR),
        ),
        "zone_index": with_field_defaults(ZoneIndexResource, cache_dir=env_or_default(CACHE_ENV, None)),
        "warehouse": warehouse_resource(
            env_or_default("TAXI_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI),
            kind=warehouse_kind(warehouse_uri()),
            location=env_or_default("TAXI_BIGQUERY_LOCATION", None),
            gcp_credentials_json=credentials,
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
