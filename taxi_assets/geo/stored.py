"""The zone index kept in the lake beside the shapes, so a month's lake step loads it
instead of building it (most of a minute of CPU; docs/zones.md).

It records the SHA-256 of the shapes file and its format, and is used only when both match
the shapes read: otherwise the lake step builds the index itself and warns, since the
shapes are the truth and the index only a cache of them. `ZoneIndexResource` (the `zone_index` resource) loads it for the lake step and builds it for
the shapes' step; its `cache_dir` (TAXI_ZONE_INDEX_CACHE, optional)
names a folder that also keeps built indexes, keyed by the shapes, the format, the index
code and the numpy/shapely/GEOS versions, so a stale one is never read.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import shapely
from filelock import FileLock
from pydantic import Field

from taxi_assets.errors import ConfigError, ConversionError
from taxi_assets.geo import locate, shapes
from taxi_assets.geo.fill import ZoneFill
from taxi_assets.geo.locate import INDEX_FORMAT, ZoneIndex
from taxi_assets.geo.shapes import read_shapes_parquet
from taxi_assets.storage.io_manager import LakeIOManager, published

INDEX_FILE_NAME = "_zone_index.npz"
CACHE_ENV = "TAXI_ZONE_INDEX_CACHE"


def shapes_version(path: Path) -> str:
    """SHA-256 of the lake's shapes file: what a stored index was built from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def _code_key() -> str:
    """What else an index depends on: its format, the code that builds it, the libraries."""
    code = b"".join(Path(module.__file__).read_bytes() for module in (locate, shapes))
    versions = "\0".join([INDEX_FORMAT, np.__version__, shapely.__version__, shapely.geos_version_string])
    return hashlib.sha256(versions.encode() + b"\0" + code).hexdigest()


def cache_path(version: str, folder: str | None) -> Path | None:
    """Where the cache folder keeps the index of shapes of `version` (None: no folder)."""
    if not folder:
        return None
    key = hashlib.sha256(f"{version}\0{_code_key()}".encode()).hexdigest()[:32]
    return Path(folder).expanduser().absolute() / f"zone-index-{key}.npz"


def _build(shapes_path: Path, version: str, folder: str | None) -> tuple[ZoneIndex, Path | None, bool]:
    """The index of the shapes, its file in the cache folder (None: no folder) and whether it
    came from there. Under a lock per key: processes that start together build it once."""
    cached = cache_path(version, folder)
    if cached is None:
        return ZoneIndex.from_table(read_shapes_parquet(shapes_path)), None, False
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(cached.with_suffix(".lock")):
            if cached.exists():
                try:
                    index, _ = read_index(cached, version)
                except Exception:  # a damaged file is only a miss: build it again
                    index = None
                if index is not None:
                    return index, cached, True
            index = ZoneIndex.from_table(read_shapes_parquet(shapes_path))
            partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial")
            try:
                index.save(partial, shapes_sha256=version)
                partial.replace(cached)  # whole or not at all
            finally:
                partial.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"{CACHE_ENV}={folder!r}: cannot keep the zone index there: {exc}") from exc
    return index, cached, False


_BUILT: dict[str, tuple[ZoneIndex, Path | None, bool]] = {}  # version -> _build's answer: the last two


def built_index(shapes_path: Path, version: str, cache_dir: str | None = None) -> ZoneIndex:
    """The index built from the lake shapes file at shapes_path (of `version`): once per
    process and version (a process that runs many months, or many runs in tests), and with
    a cache folder, once per folder."""
    if version not in _BUILT:
        built = _build(shapes_path, version, cache_dir)
        while len(_BUILT) >= 2:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[version] = built
    return _BUILT[version][0]


def write_index(shapes_path: Path, dest: Path, cache_dir: str | None = None) -> Path | None:
    """Build the index of the shapes file at shapes_path and store it at dest. Returns the
    file of the cache folder it was taken from instead of built, if it was."""
    version = shapes_version(shapes_path)
    index = built_index(shapes_path, version, cache_dir)
    _, cached, hit = _BUILT[version]
    if cached is not None and cached.exists():
        shutil.copyfile(cached, dest)  # the same bytes index.save writes, without compressing again
    else:
        index.save(dest, shapes_sha256=version)
    return cached if hit else None


def read_index(index_path: Path, version: str) -> tuple[ZoneIndex | None, str]:
    """The stored index if it was built from shapes of `version` in this code's format,
    else None and why not."""
    meta = ZoneIndex.stored_meta(index_path)
    if meta.get("format") != INDEX_FORMAT:
        return None, f"the stored zone index is of format {meta.get('format')!r}, this code reads {INDEX_FORMAT!r}"
    if meta.get("shapes_sha256") != version:
        return None, "the stored zone index was built from other shapes than the lake holds now"
    return ZoneIndex.load(index_path), "stored"


class ZoneIndexResource(dg.ConfigurableResource):
    """The coordinates -> zone index: built for the lake's zone shapes, loaded by the lake step
    of months with coordinates from beside them."""

    cache_dir: str | None = Field(
        default=None,
        description=f"A folder keeping built zone indexes ({CACHE_ENV}): a rebuild of the same shapes is a load.",
    )

    def write(self, shapes_path: Path, dest: Path) -> Path | None:
        """The index of the shapes file at `dest`; the cache file it was copied from, if it was."""
        return write_index(shapes_path, dest, self.cache_dir)

    def fill(self, dataset: str, lake: LakeIOManager, shapes_key: dg.AssetKey, log) -> ZoneFill:
        """Location IDs from coordinates, the index loaded at the first month that needs it from
        beside the lake's shapes (`shapes_key`), or built from them with a warning when it is not
        there or not of these shapes."""

        def load() -> ZoneIndex:
            store = lake.store()
            try:
                shapes = published(store, shapes_key, None)
            except FileNotFoundError as exc:
                raise ConversionError(
                    f"{dataset}: this month has coordinates, which become location IDs through the zone shapes: "
                    f"materialize {shapes_key.to_user_string()} (group zones) first. {exc}"
                ) from None
            with shapes.local_path() as path:
                version = shapes_version(path)
                try:
                    stored = published(store, shapes_key, None, sidecar=INDEX_FILE_NAME)
                except FileNotFoundError:
                    index, why = None, "the lake holds no zone index beside the shapes"
                else:
                    with stored.local_path() as index_path:
                        index, why = read_index(index_path, version)
                if index is not None:
                    log.info(f"{dataset}: zone index {stored.uri} (of shapes {version[:12]})")
                    return index
                log.warning(
                    f"{dataset}: {why}: building it from {shapes.uri} in this step (about 50 s of CPU and a few "
                    f"hundred MiB more; a load if {CACHE_ENV} holds it). Materialize {shapes_key.to_user_string()} "
                    "to store it once for every month."
                )
                return built_index(path, version, self.cache_dir)

        return ZoneFill(load)
