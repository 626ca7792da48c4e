"""The production lake: objects in a GCS bucket under a prefix, in the local lake's layout.

Publishing never shows half an object under its final name: the file is streamed
to a temporary object under `{prefix}/_tmp/` (resumable upload in chunks for large
files, CRC32C checked by the server), copied server-side onto the final name
(a metadata operation inside one bucket) and the temporary is deleted. A failed or
interrupted upload leaves the previous version in place. A temporary orphaned by a
killed process is outside every month folder, so readers never see it; a bucket
lifecycle rule on `_tmp/` removes it (docs/google-cloud.md).

Not dagster-gcp's `GCSPickleIOManager`: it pickles Python objects, while the lake
holds the files themselves (CSV.gz, Parquet) readable by BigQuery and DuckDB.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from google.api_core.exceptions import NotFound
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from taxi_assets.storage.gcp import credentials_from_json
from taxi_assets.storage.staging import staging_root

# A multiple of 256 KiB (the API's unit); one chunk is held in memory at a time.
CHUNK_SIZE = 16 * 1024 * 1024
TMP_FOLDER = "_tmp"


def parse_gs_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket:
        raise ValueError(f"not a GCS lake URI: {uri!r} (expected gs://bucket/prefix)")
    return bucket, prefix.strip("/")


class GCSLakeStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: storage.Client | None = None,
        chunk_size: int = CHUNK_SIZE,
        scratch: str | Path | None = None,
    ):
        self.client = client or storage.Client()
        # Where objects are downloaded to be read (the staging folder); None: the system's temp folder.
        self.scratch = scratch
        self.bucket = self.client.bucket(bucket)
        self.prefix = prefix.strip("/")
        self.chunk_size = chunk_size

    @classmethod
    def from_uri(cls, uri: str, credentials_json: str | None = None, scratch: str | Path | None = None) -> GCSLakeStore:
        bucket, prefix = parse_gs_uri(uri)
        client = storage.Client(credentials=credentials_from_json(credentials_json))
        return cls(bucket, prefix, client, scratch=scratch)

    def _name(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def uri(self, relpath: str) -> str:
        return f"gs://{self.bucket.name}/{self._name(relpath)}"

    def publish(self, local: Path, relpath: str) -> None:
        final = self.bucket.blob(self._name(relpath))
        name = relpath.rsplit("/", 1)[-1]
        tmp = self.bucket.blob(self._name(f"{TMP_FOLDER}/{uuid.uuid4().hex}/{name}"), chunk_size=self.chunk_size)
        try:
            # if_generation_match=0 (create only) makes the upload safe to retry.
            tmp.upload_from_filename(str(local), if_generation_match=0, checksum="crc32c")
            # Retrying the copy is safe: its source is pinned to the uploaded generation.
            token = None
            while True:
                token, _, _ = final.rewrite(
                    tmp, token=token, if_source_generation_match=tmp.generation, retry=DEFAULT_RETRY
                )
                if token is None:
                    break
        finally:
            try:
                tmp.delete(retry=DEFAULT_RETRY)
            except NotFound:  # the upload never finished
                pass

    def list(self, prefix: str) -> list[str]:
        folder = self._name(prefix).rstrip("/") + "/"
        root = f"{self.prefix}/" if self.prefix else ""
        blobs = self.client.list_blobs(self.bucket, prefix=folder, delimiter="/")
        return sorted(b.name[len(root) :] for b in blobs)

    def delete(self, relpath: str) -> None:
        try:
            self.bucket.blob(self._name(relpath)).delete()
        except NotFound:
            pass

    @contextmanager
    def local_path(self, relpath: str) -> Iterator[Path]:
        """Downloads to a temporary file of the object's name (readers go by the extension)."""
        root = staging_root(self.scratch or tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="gcs-", dir=root))
        path = folder / relpath.rsplit("/", 1)[-1]
        try:
            try:
                self.bucket.blob(self._name(relpath)).download_to_filename(str(path))
            except NotFound:
                raise FileNotFoundError(f"not in the lake: {self.uri(relpath)}") from None
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)
