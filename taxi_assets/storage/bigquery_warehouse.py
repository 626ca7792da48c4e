"""The production warehouse: BigQuery, one table per dataset, natively partitioned by month.

A table is partitioned by MONTH on `source_month` and clustered on the pickup and
dropoff zones. A month is replaced by one load job into its partition decorator
(`table$YYYYMM`) with WRITE_TRUNCATE: BigQuery swaps the partition when the job
succeeds and leaves it as it was when the job fails, and a rerun gives the same
table. From a GCS lake the job reads the `gs://` Parquet itself (the rows never
pass through this process); from a local lake the client uploads the file.

Several months are one job each (load jobs cannot join a transaction): a failure
stops at that month; the months before it are replaced, each whole, and the rest
are untouched, so no month is ever duplicated or half replaced.

A whole table (the zone lookup) is one WRITE_TRUNCATE load job without a decorator.
The marts on top are dbt models (taxi_assets/dbt_project), built by dbt-bigquery.

Not dagster-gcp's BigQuery I/O managers: they replace a partition by DELETE and an
INSERT of a DataFrame built in the Dagster process, and create tables without
native partitioning (Dagster issue #15975).
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
from google.api_core.exceptions import GoogleAPICallError, NotFound
from google.cloud import bigquery
from pydantic import Field, PrivateAttr

from taxi_assets.datasets import SOURCE_MONTH_COLUMN, DatasetSpec
from taxi_assets.errors import TaxiAssetsError
from taxi_assets.months import normalize_month
from taxi_assets.storage.gcp import credentials_field, credentials_from_json
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.warehouse import LoadResult, Warehouse, parse_bigquery_uri


class WarehouseError(TaxiAssetsError):
    """The warehouse refused a table or a load."""


def bigquery_type(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "INT64"
    if pa.types.is_floating(t):
        return "FLOAT64"
    if pa.types.is_timestamp(t):
        # TLC times are New York wall-clock times without a zone: DATETIME, which is
        # also what BigQuery makes of Parquet timestamps that are not adjusted to UTC.
        return "TIMESTAMP" if t.tz else "DATETIME"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    raise TypeError(f"no BigQuery type for {t}")


def table_schema(schema: pa.Schema) -> list[bigquery.SchemaField]:
    """The BigQuery columns of an arrow schema; a non-nullable field is REQUIRED."""
    return [
        bigquery.SchemaField(f.name, bigquery_type(f.type), mode="NULLABLE" if f.nullable else "REQUIRED")
        for f in schema
    ]


def ident(name: str) -> str:
    """A quoted GoogleSQL identifier (also a whole `project.dataset.table` path)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def partition_decorator(month: str) -> str:
    return "$" + normalize_month(month).replace("-", "")


class BigQueryWarehouse(Warehouse):
    """The warehouse in a BigQuery dataset (`uri` bigquery://project/dataset)."""

    location: str | None = Field(default=None, description="BigQuery location, e.g. US or EU.")
    gcp_credentials_json: str | None = credentials_field()
    # The client (made on first use, or given: with_client) and, per table, the columns this
    # process added to it (see _add_missing_columns).
    _client: bigquery.Client | None = PrivateAttr(default=None)
    _migrated: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    @classmethod
    def with_client(cls, uri: str, client: bigquery.Client) -> BigQueryWarehouse:
        """The warehouse at `uri` through an existing client (tests: the fake at the HTTP boundary)."""
        warehouse = cls(uri=uri)
        warehouse._client = client
        return warehouse

    @property
    def project(self) -> str:
        return parse_bigquery_uri(self.uri)[0]

    @property
    def dataset(self) -> str:
        return parse_bigquery_uri(self.uri)[1]

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            credentials = credentials_from_json(self.gcp_credentials_json)
            self._client = bigquery.Client(project=self.project, credentials=credentials, location=self.location)
        return self._client

    @property
    def migrated(self) -> dict[str, list[str]]:
        return self._migrated

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def ensure_table(self, spec: DatasetSpec) -> bigquery.Table:
        return self.ensure_month_partitioned_table(
            spec.table,
            spec.arrow_schema(),
            clustering=list(spec.location_columns),
            description=f"NYC TLC {spec.name} trips, one row per trip, partitioned by source month.",
        )

    def ensure_month_partitioned_table(
        self, name: str, schema: pa.Schema, clustering: list[str] | None = None, description: str | None = None
    ) -> bigquery.Table:
        """Table `name`, created if missing, partitioned by MONTH on source_month; refuses an
        existing table partitioned otherwise (a month could not be replaced in it)."""
        wanted = bigquery.Table(self.table_id(name), schema=table_schema(schema))
        wanted.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.MONTH, field=SOURCE_MONTH_COLUMN
        )
        wanted.clustering_fields = clustering
        wanted.description = description
        try:
            table = self.client.create_table(wanted, exists_ok=True)
        except NotFound:
            raise WarehouseError(
                f"BigQuery dataset {self.project}.{self.dataset} does not exist: create it first"
            ) from None
        partitioning = table.time_partitioning
        if (
            partitioning is None
            or partitioning.type_ != bigquery.TimePartitioningType.MONTH
            or partitioning.field != SOURCE_MONTH_COLUMN
        ):
            raise WarehouseError(
                f"BigQuery table {self.table_id(name)} exists but is not partitioned by MONTH on "
                f"{SOURCE_MONTH_COLUMN}: months cannot be replaced in it; drop or rename it"
            )
        return self._add_missing_columns(table, wanted.schema)

    def _add_missing_columns(self, table: bigquery.Table, wanted: list[bigquery.SchemaField]) -> bigquery.Table:
        """A table made by an earlier version gains the columns added since, in place: a
        schema update that only appends NULLABLE columns (what BigQuery allows without
        rewriting the table); existing rows read them as null."""
        have = {f.name.lower() for f in table.schema}
        added = [
            bigquery.SchemaField(f.name, f.field_type, mode="NULLABLE") for f in wanted if f.name.lower() not in have
        ]
        if not added:
            return table
        table.schema = [*table.schema, *added]
        try:
            table = self.client.update_table(table, ["schema"])
        except GoogleAPICallError as exc:
            raise WarehouseError(
                f"BigQuery table {table.full_table_id}: cannot add columns "
                f"{', '.join(f.name for f in added)}: {exc.message}"
            ) from None
        self.migrated[table.table_id] = [f.name for f in added]
        return table

    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        started = time.monotonic()
        self.ensure_table(spec)
        jobs = {normalize_month(key): self._load(spec, normalize_month(key), obj) for key, obj in objects.items()}
        stats = {month: load_stats(job) for month, job in jobs.items()}
        metadata: dict[str, Any] = {
            "table": self.table_id(spec.table),
            "seconds": round(time.monotonic() - started, 3),
        }
        if spec.table in self.migrated:
            metadata["migrated_columns"] = ", ".join(self.migrated[spec.table])
        # After WRITE_TRUNCATE of a partition, the partition holds exactly the job's rows.
        month_metadata = {
            month: {
                "job_id": s["job_id"],
                "output_bytes": s["output_bytes"] or 0,
                "input_file_bytes": s["input_file_bytes"] or 0,
                **({"slot_ms": s["slot_ms"]} if s["slot_ms"] is not None else {}),
            }
            for month, s in stats.items()
        }
        return LoadResult({month: s["rows"] for month, s in stats.items()}, metadata, month_metadata)

    def _load(self, spec: DatasetSpec, month: str, obj: LakeObject) -> bigquery.LoadJob:
        """One month of a dataset into its partition."""
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        decorator = partition_decorator(month)
        return self._load_job(
            f"{spec.name} {month}",
            obj,
            self.table_id(spec.table) + decorator,
            config,
            job_id_prefix=f"taxi_{spec.name}_{decorator[1:]}_",
        )

    def _load_job(
        self, label: str, obj: LakeObject, destination: str, config: bigquery.LoadJobConfig, job_id_prefix: str
    ) -> bigquery.LoadJob:
        """A finished load job of the lake file into `destination`: read by BigQuery from a
        gs:// lake, uploaded from a local one. Errors start with `label`."""
        job = None
        try:
            if obj.uri.startswith("gs://"):
                job = self.client.load_table_from_uri(
                    obj.uri, destination, job_config=config, job_id_prefix=job_id_prefix
                )
            else:
                with obj.local_path() as path, open(path, "rb") as f:
                    job = self.client.load_table_from_file(
                        f, destination, job_config=config, job_id_prefix=job_id_prefix
                    )
            job.result()
        except GoogleAPICallError as exc:
            raise job_failed(label, f"load of {obj.uri}", destination, job, exc) from None
        return job

    def replace_table(self, name: str, obj: LakeObject, schema: pa.Schema) -> int:
        # WRITE_TRUNCATE of the whole table: data and schema are swapped when the job
        # succeeds, untouched when it fails; the job creates the table the first time.
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=table_schema(schema),
        )
        job = self._load_job(name, obj, self.table_id(name), config, job_id_prefix=f"taxi_{name}_")
        return job.output_rows or 0

    def month_row_counts(self, spec: DatasetSpec) -> dict[str, int]:
        sql = (
            f"SELECT FORMAT_DATE('%Y-%m', {SOURCE_MONTH_COLUMN}) AS month, COUNT(*) AS row_count "
            f"FROM {ident(self.table_id(spec.table))} GROUP BY month ORDER BY month"
        )
        try:
            rows = self.query(sql).to_pylist()
        except NotFound:  # no table yet
            return {}
        return {r["month"]: r["row_count"] for r in rows}

    def table_ref(self, name: str) -> str:
        """Table `name` as SQL names it (no default dataset is set on queries)."""
        return ident(self.table_id(name))

    def query(self, sql: str) -> pa.Table:
        # Unqualified table names resolve in the warehouse's dataset, as in DuckDB.
        config = bigquery.QueryJobConfig(default_dataset=f"{self.project}.{self.dataset}")
        return self.client.query_and_wait(sql, job_config=config).to_arrow(create_bqstorage_client=False)


def job_failed(label: str, action: str, destination: str, job, exc: GoogleAPICallError) -> WarehouseError:
    """The error of a failed job: what, where, which job and BigQuery's reason; starts with `label`."""
    job_text = f" (job {job.job_id})" if job is not None else ""
    return WarehouseError(f"{label}: BigQuery {action} into {destination} failed{job_text}: {exc.message}")


def load_stats(job: bigquery.LoadJob) -> dict[str, Any]:
    # LoadJob has no accessor for the job's slot time (QueryJob has slot_millis).
    slot_ms = job._properties.get("statistics", {}).get("totalSlotMs")
    return {
        "job_id": job.job_id,
        "rows": job.output_rows or 0,
        "output_bytes": job.output_bytes,
        "input_file_bytes": job.input_file_bytes,
        "slot_ms": int(slot_ms) if slot_ms is not None else None,
    }
