"""The production warehouse: BigQuery, one table per dataset, natively partitioned by month.

A table this project creates is partitioned by MONTH on `source_month` and clustered on the
pickup and dropoff zones. A month is replaced by one load job into its partition decorator
(`table$YYYYMM`) with WRITE_TRUNCATE: BigQuery swaps the partition when the job succeeds and
leaves it as it was when the job fails, and a rerun gives the same table. From a GCS lake the
job reads the `gs://` Parquet itself (the rows never pass through this process); from a local
lake the client uploads the file.

An existing table partitioned otherwise (by day, as the course's own flows make them, or on
another column) or not at all has no month partition to swap: there a month is loaded into a
staging table, then deleted and inserted in one transaction (`BEGIN TRANSACTION ... COMMIT`),
by column name; a failure anywhere leaves the table as it was. DML on such a table reads the
whole table (or the partitions of the month's rows), which costs more than a partition swap.

Several months are one replace each (load jobs cannot join a transaction): a failure stops at
that month; the months before it are replaced, each whole, and the rest are untouched, so no
month is ever duplicated or half replaced.

A whole table (the zone lookup) is one WRITE_TRUNCATE load job without a decorator.
The marts on top are dbt models (taxi_assets/analytics/dbt_project), built by dbt-bigquery.

Not dagster-gcp's BigQuery I/O managers: they replace a partition by DELETE and an
INSERT of a DataFrame built in the Dagster process, and create tables without
native partitioning (Dagster issue #15975).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.exceptions import GoogleAPICallError, NotFound
from google.cloud import bigquery
from pydantic import Field, PrivateAttr

from taxi_assets.errors import TaxiAssetsError
from taxi_assets.spec.datasets import SOURCE_MONTH_COLUMN, DatasetSpec
from taxi_assets.spec.months import normalize_month
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


def table_path(table: bigquery.Table) -> str:
    return f"{table.project}.{table.dataset_id}.{table.table_id}"


def is_month_partitioned(table: bigquery.Table) -> bool:
    """Whether a month of the table is one partition, swapped whole by a decorated load."""
    partitioning = table.time_partitioning
    return (
        partitioning is not None
        and partitioning.type_ == bigquery.TimePartitioningType.MONTH
        and partitioning.field == SOURCE_MONTH_COLUMN
    )


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
        """Table `name`, created if missing, partitioned by MONTH on source_month; an existing
        table is kept as it is partitioned (see is_month_partitioned) and gains missing columns."""
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
        return self._add_missing_columns(table, wanted.schema)

    def _add_missing_columns(self, table: bigquery.Table, wanted: list[bigquery.SchemaField]) -> bigquery.Table:
        """A table made by an earlier version gains the columns added since, in place: NULLABLE
        columns appended by `ALTER TABLE ADD COLUMN` (no rewrite of the table); existing rows
        read them as null. DDL rather than a schema patch: one statement changes both what
        BigQuery reports and what queries see, here and in emulators that keep the two apart."""
        have = {f.name.lower() for f in table.schema}
        added = [f for f in wanted if f.name.lower() not in have]
        if not added:
            return table
        # One ALTER per column, in one script: one job for all of them.
        script = "".join(
            f"ALTER TABLE {ident(table_path(table))} ADD COLUMN IF NOT EXISTS {ident(f.name)} {f.field_type};\n"
            for f in added
        )
        try:
            self.client.query(script, job_id_prefix=f"taxi_migrate_{table.table_id}_").result()
            table = self.client.get_table(table.reference)
        except GoogleAPICallError as exc:
            raise WarehouseError(
                f"BigQuery table {table_path(table)}: cannot add columns "
                f"{', '.join(f.name for f in added)}: {exc.message}"
            ) from None
        self.migrated[table.table_id] = [f.name for f in added]
        return table

    def replace_months(self, spec: DatasetSpec, objects: dict[str, LakeObject]) -> LoadResult:
        started = time.monotonic()
        table = self.ensure_table(spec)
        month_partitioned = is_month_partitioned(table)
        replace = self._load if month_partitioned else self._stage_and_swap
        jobs = {normalize_month(key): replace(spec, normalize_month(key), obj) for key, obj in objects.items()}
        stats = {month: load_stats(job) for month, job in jobs.items()}
        metadata: dict[str, Any] = {
            "table": self.table_id(spec.table),
            "seconds": round(time.monotonic() - started, 3),
            "replaced_by": "partition load" if month_partitioned else "staged delete and insert",
        }
        if spec.table in self.migrated:
            metadata["migrated_columns"] = ", ".join(self.migrated[spec.table])
        # After WRITE_TRUNCATE of a partition, the partition holds exactly the job's rows; after
        # the transaction, the month holds exactly the staged rows, which the load job counted.
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

    def _stage_and_swap(self, spec: DatasetSpec, month: str, obj: LakeObject) -> bigquery.LoadJob:
        """One month of a dataset into a table without month partitions: the lake file into a
        staging table of its own, then the month's rows deleted and the staged ones inserted in
        one transaction. Returns the staging load job (its row count is the month's)."""
        label, yyyymm = f"{spec.name} {month}", partition_decorator(month)[1:]
        target = self.table_id(spec.table)
        stage = self.table_id(f"_taxi_stage_{spec.table}_{yyyymm}_{uuid.uuid4().hex[:8]}")
        schema = file_columns(spec.arrow_schema(), obj)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=table_schema(schema),
        )
        first_day = f"DATE '{month}-01'"
        try:
            job = self._load_job(label, obj, stage, config, job_id_prefix=f"taxi_{spec.name}_{yyyymm}_stage_")
            (outside,) = (
                self.query(
                    f"SELECT COUNTIF({SOURCE_MONTH_COLUMN} IS DISTINCT FROM {first_day}) AS n FROM {ident(stage)}"
                )
                .column("n")
                .to_pylist()
            )
            if outside:
                raise WarehouseError(
                    f"{label}: {obj.uri} has {outside} rows whose {SOURCE_MONTH_COLUMN} is not {month}: "
                    f"{target} is left as it was"
                )
            columns = ", ".join(ident(f.name) for f in schema)
            script = (
                "BEGIN TRANSACTION;\n"
                f"DELETE FROM {ident(target)} WHERE {SOURCE_MONTH_COLUMN} = {first_day};\n"
                f"INSERT INTO {ident(target)} ({columns}) SELECT {columns} FROM {ident(stage)};\n"
                "COMMIT TRANSACTION;\n"
            )
            swap = None
            try:
                swap = self.client.query(script, job_id_prefix=f"taxi_{spec.name}_{yyyymm}_swap_")
                swap.result()
            except GoogleAPICallError as exc:
                raise job_failed(label, f"delete and insert of {obj.uri}", target, swap, exc) from None
        finally:
            self.client.delete_table(stage, not_found_ok=True)
        return job

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
        # A query job and its result, not query_and_wait: a job's failure then always raises
        # (emulators answer jobs.query with an empty success when the query failed).
        job = self.client.query(sql, job_config=config)
        return job.result().to_arrow(create_bqstorage_client=False)


def file_columns(schema: pa.Schema, obj: LakeObject) -> pa.Schema:
    """The dataset's columns that a lake file has, in the file's order: the staging table's
    columns. BigQuery matches a Parquet file's columns by name; emulators (bqemulator) by
    position, which with another order would put values in the wrong columns without an error.
    A local file's footer says its order; a gs:// file is taken to be in the dataset's."""
    if obj.uri.startswith("gs://"):
        return schema
    with obj.local_path() as path:
        names = pq.read_schema(path).names
    return pa.schema([schema.field(name) for name in names if name in schema.names])


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
