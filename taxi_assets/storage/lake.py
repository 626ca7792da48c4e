"""The data lake: where raw files and typed Parquet live, behind one small interface.

A store publishes a finished local file under its final name atomically, so a
reader never sees half a file and a failed run leaves the previous version in
place. `LocalLakeStore` is the embedded default; `gcs.GCSLakeStore` is production.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from taxi_assets.storage.staging import abandoned, owner_tag

DEFAULT_LAKE_URI = "./data/lake"


class LakeStore(Protocol):
    def uri(self, relpath: str) -> str: ...

    def publish(self, local: Path, relpath: str) -> None:
        """Put local under relpath atomically; replaces what was there."""

    def list(self, prefix: str) -> list[str]:
        """Relative paths of the files under prefix (a folder)."""

    def delete(self, relpath: str) -> None: ...

    @contextmanager
    def local_path(self, relpath: str) -> Iterator[Path]:
        """A local file with the object's bytes, for readers that need one."""


@dataclass(frozen=True)
class LakeObject:
    """A file in the lake, as handed to downstream assets."""

    store: LakeStore
    relpath: str

    @property
    def uri(self) -> str:
        return self.store.uri(self.relpath)

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @contextmanager
    def local_path(self) -> Iterator[Path]:
        with self.store.local_path(self.relpath) as path:
            yield path


class LocalLakeStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()

    def uri(self, relpath: str) -> str:
        return str(self.root / relpath)

    def publish(self, local: Path, relpath: str) -> None:
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        # A temporary sibling then os.replace: atomic on one filesystem. The name
        # carries our pid, so a crash leaves only a dot-file that the next publish
        # into this folder removes, and a concurrent publisher's file is left alone.
        tmp = final.parent / f".{final.name}.{owner_tag()}.{uuid.uuid4().hex}.tmp"
        try:
            try:
                os.replace(local, tmp)
            except OSError:  # staging on another filesystem
                shutil.copyfile(local, tmp)
                Path(local).unlink(missing_ok=True)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        for sibling in final.parent.iterdir():
            if sibling.name.startswith(".") and sibling.name.endswith(".tmp") and abandoned(sibling.name):
                sibling.unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(
            f"{prefix.rstrip('/')}/{p.name}" for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, relpath: str) -> None:
        (self.root / relpath).unlink(missing_ok=True)

    @contextmanager
    def local_path(self, relpath: str) -> Iterator[Path]:
        path = self.root / relpath
        if not path.is_file():
            raise FileNotFoundError(f"not in the lake: {path}")
        yield path


def lake_store_from_uri(uri: str, credentials_json: str | None = None, scratch: str | None = None) -> LakeStore:
    """The lake at `uri`; `scratch` is where a remote lake's objects are downloaded to be read."""
    if uri.startswith("gs://"):
        from taxi_assets.storage.gcs import GCSLakeStore

        return GCSLakeStore.from_uri(uri, credentials_json=credentials_json, scratch=scratch)
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"unsupported lake URI {uri!r}: use a folder or gs://bucket/prefix")
    return LocalLakeStore(uri.removeprefix("file://"))
