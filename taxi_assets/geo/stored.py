"""The zone index kept in the lake beside the shapes, so a month's lake step loads it
(a ~10 MB file, about 0.2 s) instead of building it (about 46 s of CPU and a few
hundred MiB at the build's peak).

`lake/taxi_zone_shapes_lake` builds it once per shapes version and publishes it as a
sidecar of the shapes file (taxi_zone_shapes/_zone_index.npz, through the lake I/O
manager: a local folder or GCS). It records the SHA-256 of the shapes file it was built
from and its format; the lake step uses it only when both match the shapes it reads.
Otherwise (shapes materialized before the index existed, a run that died between the
two files, an index of another format) the lake step builds the index from the shapes
itself, with a warning: the shapes are the truth and the index only a cache of them, so
the months still come out the same; only the step's time and memory suffer, which the
warning says and a rematerialization of the shapes fixes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from taxi_assets.geo.locate import INDEX_FORMAT, ZoneIndex
from taxi_assets.geo.shapes import read_shapes_parquet

INDEX_FILE_NAME = "_zone_index.npz"


def shapes_version(path: Path) -> str:
    """SHA-256 of the lake's shapes file: what a stored index was built from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_BUILT: dict[str, ZoneIndex] = {}  # version -> index: the last two built in this process


def built_index(shapes_path: Path, version: str) -> ZoneIndex:
    """The index built from the lake shapes file at shapes_path (of `version`): once per
    process and version (a process that runs many months, or many runs in tests)."""
    if version not in _BUILT:
        index = ZoneIndex.from_table(read_shapes_parquet(shapes_path))
        while len(_BUILT) >= 2:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[version] = index
    return _BUILT[version]


def write_index(shapes_path: Path, dest: Path) -> ZoneIndex:
    """Build the index of the shapes file at shapes_path and store it at dest."""
    version = shapes_version(shapes_path)
    index = built_index(shapes_path, version)
    index.save(dest, shapes_sha256=version)
    return index


def read_index(index_path: Path, version: str) -> tuple[ZoneIndex | None, str]:
    """The stored index if it was built from shapes of `version` in this code's format,
    else None and why not."""
    meta = ZoneIndex.stored_meta(index_path)
    if meta.get("format") != INDEX_FORMAT:
        return None, f"the stored zone index is of format {meta.get('format')!r}, this code reads {INDEX_FORMAT!r}"
    if meta.get("shapes_sha256") != version:
        return None, "the stored zone index was built from other shapes than the lake holds now"
    return ZoneIndex.load(index_path), "stored"
