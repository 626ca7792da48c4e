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


def backend_from_uri(uri: str, **options: Any) -> WarehouseBackend:
    if uri.startswith("duckdb://"):
        from taxi_assets.storage.duckdb_warehouse import DuckDBWarehouse

        return DuckDBWarehouse(uri.removeprefix("duckdb://").removeprefix("/") or ":memory:")
    if uri.startswith("bigquery://"):
        from taxi_assets.storage.bigquery_warehouse import BigQueryWarehouse

        return BigQueryWarehouse.from_uri(uri, **options)
    raise ValueError(f"unsupported warehouse URI {uri!r}: use duckdb:///FILE or bigquery://PROJECT/DATASET")


def warehouse_kind(uri: str) -> str:
    return uri.split("://", 1)[0]


class Warehouse(dg.ConfigurableResource):
    """The warehouse named by `uri` (see module docstring)."""

    uri: str = Field(default=DEFAULT_WAREHOUSE_URI)
    location: str | None = Field(default=None, description="BigQuery location, e.g. US or EU.")
    gcp_credentials_json: str | None = credentials_field()

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
