"""The GCS drop zone: month files that others put under a gs://bucket/prefix.

Enabled by TAXI_GCS_DROP_URI=gs://bucket/prefix (the source resource's `gcs_drop_uri`). A file is recognised by its
published name, `{dataset}_tripdata_{YYYY-MM}.csv.gz` (or `.csv`, `.parquet`),
anywhere under the prefix. The client is google-cloud-storage's, with the lake's
credentials (or the emulator named by STORAGE_EMULATOR_HOST).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from taxi_assets.errors import NotPublishedError, SourceError
from taxi_assets.source.http import Download
from taxi_assets.storage.gcp import credentials_from_json

if TYPE_CHECKING:  # the Google client is imported when the drop zone is used, not with the definitions
    from google.cloud import storage

DROP_URI_ENV = "TAXI_GCS_DROP_URI"
FILE_NAME = re.compile(r"(?P<dataset>[a-z]+)_tripdata_(?P<month>\d{4}-\d{2})\.(?:csv\.gz|csv|parquet)")
HASH_CHUNK = 1 << 20


def dataset_month(key: str) -> tuple[str, str] | None:
    """(dataset, YYYY-MM) from an object's file name, or None if it is not a month file."""
    match = FILE_NAME.fullmatch(key.rsplit("/", 1)[-1])
    return (match["dataset"], match["month"]) if match else None


def parse_gs_uri(uri: str) -> tuple[str, str]:
    from taxi_assets.storage.gcs import parse_gs_uri

    return parse_gs_uri(uri)


def client(credentials_json: str | None) -> storage.Client:
    """With the lake's credentials (TAXI_GCP_CREDENTIALS_JSON), else Google's default chain."""
    from google.cloud import storage

    return storage.Client(credentials=credentials_from_json(credentials_json))


@dataclass(frozen=True)
class GCSDropZone:
    bucket: str
    prefix: str  # "" or ends with "/"

    @classmethod
    def from_uri(cls, uri: str) -> GCSDropZone:
        bucket, path = parse_gs_uri(uri)
        return cls(bucket=bucket, prefix=f"{path}/" if path else "")

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    def object_uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    def objects_after(self, gcs: storage.Client, after: tuple[str, str] | None) -> list[DroppedObject]:
        """Objects under the prefix written after `after` = (updated ISO time, key), oldest first.

        One listing call. Ordering by (update time, key) rather than by key alone
        makes a re-upload of an already seen key (new generation, new update time)
        show up again, and survives the cursor's own object being deleted.
        """
        found = [
            DroppedObject(key=b.name, generation=b.generation, updated=b.updated, size=b.size, etag=b.etag)
            for b in gcs.list_blobs(self.bucket, prefix=self.prefix or None)
            if not b.name.endswith("/")
        ]
        found.sort(key=lambda o: o.position)
        return [o for o in found if after is None or o.position > tuple(after)]


@dataclass(frozen=True)
class DroppedObject:
    key: str
    generation: int
    updated: datetime
    size: int
    etag: str | None

    @property
    def position(self) -> tuple[str, str]:
        """Where the object sits in the drop zone's history (a sensor cursor)."""
        return (self.updated.isoformat(timespec="microseconds"), self.key)


def download(uri: str, dest: Path, label: str, credentials_json: str | None = None) -> Download:
    """Copy the object at `uri` to `dest` byte for byte (the client verifies its checksum)."""
    from google.api_core import exceptions as gexc

    started = time.monotonic()
    bucket, name = parse_gs_uri(uri)
    try:
        blob = client(credentials_json).bucket(bucket).get_blob(name)
        if blob is None:
            raise NotPublishedError(f"{label}: {uri} does not exist")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # raw_download: the bytes as stored, never transcoded (like Accept-Encoding: identity).
        blob.download_to_filename(dest, raw_download=True)
    except gexc.GoogleAPICallError as exc:
        dest.unlink(missing_ok=True)
        raise SourceError(f"{label}: cannot read {uri}: {exc}") from None
    sha = hashlib.sha256()
    with open(dest, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            sha.update(chunk)
    return Download(
        url=uri,
        path=dest,
        bytes=dest.stat().st_size,
        sha256=sha.hexdigest(),
        etag=blob.etag,
        last_modified=email.utils.format_datetime(blob.updated, usegmt=True) if blob.updated else None,
        seconds=time.monotonic() - started,
    )
