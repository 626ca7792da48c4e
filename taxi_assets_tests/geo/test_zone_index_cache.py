"""TAXI_ZONE_INDEX_CACHE (geo/stored.py): a built zone index is kept in a folder under a key
of everything it is built from, and a process that would build it again loads it instead.
Two small square zones (a build of a tenth of a second) stand for the real shapes, except in
the last test, which materializes the real shapes from the session's cache."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pyarrow as pa
import pytest
import shapely

from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.errors import ConfigError
from taxi_assets.geo import stored
from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.geo.shapes import SHAPES_SCHEMA, write_shapes_parquet
from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, read_index, shapes_version, write_index

WEST, EAST, SEA = (-73.995, 40.705), (-73.985, 40.705), (-73.5, 40.705)


def squares(tmp_path: Path, east_id: int = 2) -> Path:
    """A lake shapes file of two 0.01-degree squares side by side (IDs 1 and east_id)."""
    boxes = [shapely.box(-74.0, 40.70, -73.99, 40.71), shapely.box(-73.99, 40.70, -73.98, 40.71)]
    table = pa.table(
        {"LocationID": pa.array([1, east_id], pa.int32()), "zone": ["west", "east"], "borough": ["b", "b"],
         "OBJECTID": pa.array([1, 2], pa.int32()), "geometry": shapely.to_wkb(boxes)},
        schema=SHAPES_SCHEMA,
    )  # fmt: skip
    path = tmp_path / f"shapes-{east_id}.parquet"
    write_shapes_parquet(table, path)
    return path


@pytest.fixture
def builds(monkeypatch) -> list[int]:
    """Each ZoneIndex.from_table call (a build), in a process that has built nothing yet."""
    calls: list[int] = []
    build = ZoneIndex.from_table.__func__

    def counted(cls, table):
        calls.append(table.num_rows)
        return build(cls, table)

    monkeypatch.setattr(ZoneIndex, "from_table", classmethod(counted))
    monkeypatch.setattr(stored, "_BUILT", {})
    return calls


def new_process(monkeypatch) -> None:
    """As another process: nothing built in memory (the cache folder is what it shares)."""
    monkeypatch.setattr(stored, "_BUILT", {})


def test_an_index_built_once_is_loaded_by_the_next_process_byte_for_byte(tmp_path, monkeypatch, builds):
    cache = tmp_path / "cache"
    folder = str(cache)
    shapes = squares(tmp_path)
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"

    assert write_index(shapes, first, folder) is None  # built here
    assert builds == [2]
    (kept,) = cache.glob("*.npz")
    assert kept == stored.cache_path(shapes_version(shapes), folder) and kept.read_bytes() == first.read_bytes()

    new_process(monkeypatch)
    assert write_index(shapes, second, folder) == kept  # taken from the cache, not built
    assert builds == [2]
    assert second.read_bytes() == first.read_bytes()
    index, why = read_index(second, shapes_version(shapes))
    assert why == "stored" and index.locate(*zip(WEST, EAST, SEA)).tolist() == [1, 2, 0]
    # The lake step's path (a stale or missing stored index) takes it from the cache too.
    new_process(monkeypatch)
    assert stored.built_index(shapes, shapes_version(shapes), folder).locate(*zip(WEST, EAST, SEA)).tolist() == [
        1,
        2,
        0,
    ]
    assert builds == [2]


def test_other_shapes_another_format_or_other_code_is_another_key(tmp_path, monkeypatch, builds):
    folder = str(tmp_path / "cache")
    shapes, other = squares(tmp_path), squares(tmp_path, east_id=7)
    write_index(shapes, tmp_path / "a.npz", folder)
    new_process(monkeypatch)
    write_index(other, tmp_path / "b.npz", folder)  # other shapes: built, its own file
    assert builds == [2, 2] and len(list((tmp_path / "cache").glob("*.npz"))) == 2
    index, _ = read_index(tmp_path / "b.npz", shapes_version(other))
    assert index.locate(*zip(WEST, EAST, SEA)).tolist() == [1, 7, 0]

    # The format and the index code (locate.py, which changes daily) are part of the key.
    version = shapes_version(shapes)
    key = stored.cache_path(version, folder)
    changed = tmp_path / "locate.py"
    changed.write_bytes(Path(stored.locate.__file__).read_bytes() + b"\n# changed\n")
    for name, value in (("INDEX_FORMAT", "taxi-zone-index/other"), ("locate", types.SimpleNamespace(__file__=changed))):
        with monkeypatch.context() as patched:
            patched.setattr(stored, name, value)
            stored._code_key.cache_clear()
            assert stored.cache_path(version, folder) not in (key, None), name
        stored._code_key.cache_clear()
        assert stored.cache_path(version, folder) == key


def test_a_damaged_cache_file_is_built_again_and_replaced(tmp_path, monkeypatch, builds):
    folder = str(tmp_path / "cache")
    shapes = squares(tmp_path)
    write_index(shapes, tmp_path / "a.npz", folder)
    kept = stored.cache_path(shapes_version(shapes), folder)
    for damage in (b"not an index", kept.read_bytes()[:1000]):
        kept.write_bytes(damage)
        new_process(monkeypatch)
        assert write_index(shapes, tmp_path / "b.npz", folder) is None
        index, why = read_index(kept, shapes_version(shapes))
        assert why == "stored" and index.locate(*zip(WEST, EAST, SEA)).tolist() == [1, 2, 0]
    assert builds == [2, 2, 2]
    assert sorted(p.suffix for p in kept.parent.iterdir()) == [".lock", ".npz"]  # no partial file left


def test_unset_keeps_nothing_and_an_unusable_folder_is_named(tmp_path, monkeypatch, builds):
    shapes = squares(tmp_path)
    assert stored.cache_path(shapes_version(shapes), None) is None
    assert write_index(shapes, tmp_path / "a.npz") is None and builds == [2]

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    new_process(monkeypatch)
    with pytest.raises(ConfigError, match=f"{CACHE_ENV}=.*a-file/cache.*cannot keep the zone index there"):
        write_index(shapes, tmp_path / "b.npz", str(blocker / "cache"))


def test_the_shapes_asset_takes_the_real_index_from_the_cache_and_says_so(platform, monkeypatch):
    """The test session's cache (conftest.py) holds the real shapes' index: a process that has
    not built it materializes the zone shapes without building it, and the metadata names the file."""
    builds: list[int] = []
    build = ZoneIndex.from_table.__func__
    monkeypatch.setattr(ZoneIndex, "from_table", classmethod(lambda cls, t: builds.append(1) or build(cls, t)))
    new_process(monkeypatch)
    selection = " or ".join(f"key:{shapes_key(layer).to_user_string()}" for layer in ("raw", "lake"))
    result = platform.materialize_selection(selection)
    assert result.success and builds == []
    lake_file = platform.lake().root / "taxi_zone_shapes" / "part-0.parquet"
    cached = stored.cache_path(shapes_version(lake_file), os.environ[CACHE_ENV])
    (materialization,) = result.asset_materializations_for_node(shapes_key("lake").to_python_identifier())
    assert materialization.metadata["zone_index_from_cache"].value == str(cached)
    assert (lake_file.parent / INDEX_FILE_NAME).read_bytes() == cached.read_bytes()
    index, why = read_index(lake_file.parent / INDEX_FILE_NAME, shapes_version(lake_file))
    assert why == "stored" and index.locate([-73.9855], [40.7580]).tolist() == [230]  # Times Square
