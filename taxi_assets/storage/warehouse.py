"""The warehouse: one table per dataset, a month replaced atomically and idempotently.

`Warehouse` is the Dagster resource; it picks a backend from its URI:
    duckdb:///path/to/file.duckdb   embedded default
    bigquery://project/dataset      production
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg
import pyarrow as pa
from pydantic import Field

from taxi_assets.datasets import DatasetSpec
from taxi_assets.errors import ConfigError
from taxi_assets.storage.gcp import credentials_field
from taxi_assets.storage.lake import LakeObject

DEFAULT_WAREHOUSE_URI = "duckdb:///./data/warehouse.duckdb"


@dataclass
class LoadResult:
    """What a load did: rows per month now in the table, statistics of the whole load
    (`metadata`) and of each month's own part of it (`month_metadata`, keyed YYYY-MM)."""

    rows_by_month: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    month_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


class WarehouseBackend(Protocol):
    kind: str

    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        """Replace each month's rows with the lake file's, all or nothing."""

    def month_row_counts(self, spec: DatasetSpec) -> dict[str, int]:
        """Rows per source month (YYYY-MM) in the dataset's table."""

    def replace_table(self, name: str, obj: LakeObject, schema: pa.Schema) -> int:
        """Make table `name` (columns `schema`) hold exactly the lake Parquet file's rows,
        atomically; returns its row count."""

    def table_ref(self, name: str) -> str:
        """Table `name` as this warehouse's SQL names it."""

    def query(self, sql: str) -> pa.Table: ...


WAREHOUSE_SETTING = "TAXI_WAREHOUSE_URI"
USAGE = "use duckdb:///FILE (duckdb:////abs/path.duckdb) or bigquery://PROJECT/DATASET"


def duckdb_path(uri: str) -> str:
    """The file a duckdb:// URI names: duckdb:///rel/x.duckdb -> rel/x.duckdb, duckdb:////abs -> /abs."""
    path = uri.removeprefix("duckdb://").removeprefix("/")
    # An empty path would be DuckDB's in-memory database: a run that writes its rows nowhere
    # (e.g. duckdb:///$DIR/ with DIR unset). A trailing slash names a folder, not a file.
    if not path.strip() or path.endswith("/") or path == ":memory:":
        raise ConfigError(f"{WAREHOUSE_SETTING}={uri!r} names no database file, so rows would be written nowhere: {USAGE}")
    return path


def check_warehouse_uri(uri: str) -> str:
    """The URI's kind ('duckdb' or 'bigquery') once it is known to name a usable place; ConfigError otherwise."""
    kind, sep, _ = uri.partition("://")
    if not sep:
        raise ConfigError(f"{WAREHOUSE_SETTING}={uri!r} is not a URI (no '://'): {USAGE}")
    if kind == "duckdb":
        duckdb_path(uri)
    elif kind == "bigquery":
        from taxi_assets.storage.bigquery_warehouse import parse_bigquery_uri

        try:
            parse_bigquery_uri(uri)
        except ValueError as exc:
            raise ConfigError(f"{WAREHOUSE_SETTING}: {exc}") from None
    else:
        raise ConfigError(f"{WAREHOUSE_SETTING}={uri!r}: unknown warehouse kind {kind!r}: {USAGE}")
    return kind


def backend_from_uri(uri: str, **options: Any) -> WarehouseBackend:
    kind = check_warehouse_uri(uri)
    if kind == "duckdb":
        from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse

        return DuckDBWarehouse(duckdb_path(uri))
    from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse

    return BigQueryWarehouse.from_uri(uri, **options)


def warehouse_kind(uri: str) -> str:
    return check_warehouse_uri(uri)


class Warehouse(dg.ConfigurableResource):
    """The warehouse named by `uri` (see module docstring)."""

    uri: str = Field(default=DEFAULT_WAREHOUSE_URI)
    location: str | None = Field(default=None, description="BigQuery location, e.g. US or EU.")
    gcp_credentials_json: str | None = credentials_field()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # At run start, before raw and lake run: a URI that cannot work fails the run now.
        check_warehouse_uri(self.uri)

    def backend(self) -> WarehouseBackend:
        return backend_from_uri(self.uri, location=self.location, credentials_json=self.gcp_credentials_json)

    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        return self.backend().replace_months(spec, objects)

    def month_row_counts(self, spec: DatasetSpec) -> dict[str, int]:
        return self.backend().month_row_counts(spec)

    def replace_table(self, name: str, obj: LakeObject, schema: pa.Schema) -> int:
        return self.backend().replace_table(name, obj, schema)

    def query(self, sql: str) -> pa.Table:
        return self.backend().query(sql)
