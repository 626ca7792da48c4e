"""Dagster metadata derived from the dataset specs, schemas and downloads."""

import dagster as dg
import pyarrow as pa

from taxi_assets.source.http import Download
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.dictionary import describe


def arrow_table_schema(schema: pa.Schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The UI's column schema; descriptions by column name, by default the TLC data dictionary's."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=str(f.type),
                description=descriptions.get(f.name) or describe(f.name) or None,
                constraints=dg.TableColumnConstraints(nullable=f.nullable),
            )
            for f in schema
        ]
    )


def table_schema(spec: DatasetSpec) -> dg.TableSchema:
    return arrow_table_schema(spec.arrow_schema(), spec.descriptions())


def download_metadata(got: Download) -> dict:
    """What a raw asset records about the file it fetched."""
    metadata = {
        "url": dg.MetadataValue.url(got.url),
        "bytes": got.bytes,
        "sha256": got.sha256,
        "seconds": round(got.seconds, 3),
    }
    if got.etag:
        metadata["etag"] = got.etag
    if got.last_modified:
        metadata["last_modified"] = got.last_modified
    return metadata
