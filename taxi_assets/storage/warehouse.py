"""The warehouse: one table per dataset, a month replaced atomically and idempotently.

`Warehouse` is the protocol every backend implements, each its own Dagster resource:
    duckdb:///path/to/file.duckdb   DuckDBWarehouse (duckdb_warehouse.py), the embedded default
    bigquery://project/dataset      BigQueryWarehouse (bigquery_warehouse.py), production
defs/resources.py picks one from TAXI_WAREHOUSE_URI when the definitions load; assets ask for
a `Warehouse` and get whichever it is. This module also holds what they share (`LoadResult`,
the URI rules) and imports neither backend.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from taxi_assets.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from taxi_assets.spec.datasets import DatasetSpec
    from taxi_assets.storage.lake import LakeObject

DEFAULT_WAREHOUSE_URI = "duckdb:///./data/warehouse.duckdb"
WAREHOUSE_SETTING = "TAXI_WAREHOUSE_URI"
USAGE = "use duckdb:///FILE (duckdb:////abs/path.duckdb) or bigquery://PROJECT/DATASET"


@dataclass
class LoadResult:
    """What a load did: rows per month now in the table, statistics of the whole load
    (`metadata`) and of each month's own part of it (`month_metadata`, keyed YYYY-MM)."""

    rows_by_month: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    month_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


class Warehouse(dg.ConfigurableResource):
    """What the assets need from a warehouse (implemented by DuckDBWarehouse and BigQueryWarehouse)."""

    uri: str = Field(default=DEFAULT_WAREHOUSE_URI, description=f"The warehouse ({WAREHOUSE_SETTING}).")

    @property
    def kind(self) -> str:
        return warehouse_kind(self.uri)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # At run start, before raw and lake run: a URI that cannot work fails the run now.
        check_warehouse_uri(self.uri)

    @abstractmethod
    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        """Replace each month's rows with the lake file's, all or nothing."""

    @abstractmethod
    def month_row_counts(self, spec: DatasetSpec) -> dict[str, int]:
        """Rows per source month (YYYY-MM) in the dataset's table."""

    @abstractmethod
    def replace_table(self, name: str, obj: LakeObject, schema: pa.Schema) -> int:
        """Make table `name` (columns `schema`) hold exactly the lake Parquet file's rows,
        atomically; returns its row count."""

    @abstractmethod
    def table_ref(self, name: str) -> str:
        """Table `name` as SQL names it (no default dataset is set on queries)."""

    @abstractmethod
    def query(self, sql: str) -> pa.Table: ...


def duckdb_path(uri: str) -> str:
    """The file a duckdb:// URI names: duckdb:///rel/x.duckdb -> rel/x.duckdb, duckdb:////abs -> /abs,
    duckdb:///~/x.duckdb -> $HOME/x.duckdb."""
    path = uri.removeprefix("duckdb://").removeprefix("/")
    # An empty path would be DuckDB's in-memory database: a run that writes its rows nowhere
    # (e.g. duckdb:///$DIR/ with DIR unset). A trailing slash names a folder, not a file.
    if not path.strip() or path.endswith("/") or path == ":memory:":
        raise ConfigError(
            f"{WAREHOUSE_SETTING}={uri!r} names no database file, so rows would be written nowhere: {USAGE}"
        )
    # ~ as DuckDB and dbt read it: the load's lock file must sit beside the file they open.
    return os.path.expanduser(path)


def parse_bigquery_uri(uri: str) -> tuple[str, str]:
    project, _, dataset = uri.removeprefix("bigquery://").partition("/")
    if not uri.startswith("bigquery://") or not project or not dataset or "/" in dataset.strip("/"):
        raise ValueError(f"not a BigQuery warehouse URI: {uri!r} (expected bigquery://PROJECT/DATASET)")
    return project, dataset.strip("/")


def check_warehouse_uri(uri: str) -> str:
    """The URI's kind ('duckdb' or 'bigquery') once it is known to name a usable place; ConfigError otherwise."""
    kind, sep, _ = uri.partition("://")
    if not sep:
        raise ConfigError(f"{WAREHOUSE_SETTING}={uri!r} is not a URI (no '://'): {USAGE}")
    if kind == "duckdb":
        duckdb_path(uri)
    elif kind == "bigquery":
        try:
            parse_bigquery_uri(uri)
        except ValueError as exc:
            raise ConfigError(f"{WAREHOUSE_SETTING}: {exc}") from None
    else:
        raise ConfigError(f"{WAREHOUSE_SETTING}={uri!r}: unknown warehouse kind {kind!r}: {USAGE}")
    return kind


def warehouse_kind(uri: str) -> str:
    return check_warehouse_uri(uri)
