"""The lake step's zone filling: a month with coordinates and no location IDs converts with
PULocationID/DOLocationID from the points' zones, counts what it could not place, and a
month without coordinates is left as it was."""

from __future__ import annotations

import csv
import dataclasses

import dagster as dg
import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.defs.assets.lake import build_lake_asset
from taxi_assets.geo.fill import ZoneFill, has_coordinates
from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.spec.datasets import YELLOW, DatasetSpec
from taxi_assets.transform.convert import convert
from taxi_assets.transform.quality import UNLOCATED_DROPOFF, UNLOCATED_PICKUP, month_figures
from taxi_assets_tests.harness import TEST_DATA

SHAPES_ZIP = TEST_DATA / "taxi_zones.zip"
COORDINATES = ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude")

# Times Square (230), JFK (132), LaGuardia (138), Upper Bay water, 0/0, nothing.
TIMES_SQUARE, JFK, LAGUARDIA = (-73.9855, 40.7580), (-73.7781, 40.6413), (-73.8740, 40.7769)
WATER, ZERO = (-74.04, 40.66), (0.0, 0.0)


def coordinate_spec() -> DatasetSpec:
    """yellow (which has the coordinate columns) with no eras declared and location IDs
    optional, so these hand-made files need only the columns a 2009 file has."""
    columns = tuple(
        dataclasses.replace(c, required=False) if c.name in ("PULocationID", "DOLocationID") else c
        for c in YELLOW.columns
    )
    return dataclasses.replace(YELLOW, columns=columns, eras=())


@pytest.fixture(scope="module")
def index(zone_index) -> ZoneIndex:
    return zone_index


def write_month(path, trips: list[tuple], with_ids: bool) -> None:
    """A small 2009-like CSV: coordinates, and location IDs only when with_ids."""
    header = ["VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count", "trip_distance",
              "RatecodeID", "store_and_fwd_flag", "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount",
              "tolls_amount", "improvement_surcharge", "total_amount", *COORDINATES]  # fmt: skip
    if with_ids:
        header += ["PULocationID", "DOLocationID"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for i, (pickup, dropoff, *ids) in enumerate(trips):
            coords = [("" if v is None else v) for v in (*(pickup or (None, None)), *(dropoff or (None, None)))]
            row = [1, f"2009-01-{1 + i % 28:02d} 10:00:00", f"2009-01-{1 + i % 28:02d} 10:20:00", 1, 2.5, 1, "N",
                   1, 10.0, 0.5, 0.5, 1.0, 0.0, 0.3, 12.3, *coords]  # fmt: skip
            out.writerow(row + (list(ids) if with_ids else []))


def test_a_month_with_coordinates_gets_location_ids_and_counts_the_unplaced(tmp_path, index):
    spec = coordinate_spec()
    trips = [(TIMES_SQUARE, JFK), (LAGUARDIA, TIMES_SQUARE), (WATER, JFK), (ZERO, ZERO), (None, LAGUARDIA)] * 40
    src, dst = tmp_path / "yellow_tripdata_2009-01.csv", tmp_path / "out.parquet"
    write_month(src, trips, with_ids=False)
    calls = []
    result = convert(spec, "2009-01", src, dst, zones=ZoneFill(lambda: calls.append(1) or index))
    assert calls == [1]  # the index is asked for once per file

    table = pq.read_table(dst)
    assert table.num_rows == 200
    assert table.column("PULocationID").to_pylist()[:5] == [230, 138, None, None, None]
    assert table.column("DOLocationID").to_pylist()[:5] == [132, 230, 132, None, 138]
    assert result.zones == {
        "mapped_pickups": 80, "unlocated_pickups": 120, "unlocated_pickups_share": 0.6,
        "mapped_dropoffs": 160, "unlocated_dropoffs": 40, "unlocated_dropoffs_share": 0.2,
    }  # fmt: skip

    # The lake check's figures: rows left without a zone, in a month with coordinates.
    figures = month_figures(spec, "2009-01", dst)
    assert (figures.counts[UNLOCATED_PICKUP], figures.counts[UNLOCATED_DROPOFF]) == (120, 40)


def test_ids_the_file_has_are_kept_and_a_month_without_coordinates_is_untouched(tmp_path, index):
    spec = coordinate_spec()
    src, dst = tmp_path / "yellow_tripdata_2009-02.csv", tmp_path / "out.parquet"
    # The file's IDs win over the coordinates; a missing ID is filled.
    write_month(src, [(TIMES_SQUARE, JFK, 7, ""), (JFK, WATER, "", "")], with_ids=True)
    result = convert(spec, "2009-02", src, dst, zones=ZoneFill(lambda: index))
    table = pq.read_table(dst)
    assert table.column("PULocationID").to_pylist() == [7, 132]
    assert table.column("DOLocationID").to_pylist() == [132, None]
    assert result.zones["mapped_pickups"] == 1 and result.zones["unlocated_dropoffs"] == 1

    # A file of the location-ID era: no coordinate columns, nothing filled, the shapes never read.
    plain = tmp_path / "yellow_tripdata_2021-01.csv"
    with open(TEST_DATA / "yellow_tripdata_2020-07_sample.csv") as f:
        plain.write_text(f.read())
    untouched = convert(spec, "2020-07", plain, tmp_path / "plain.parquet", zones=ZoneFill(lambda: pytest.fail("read")))
    assert untouched.zones == {}
    before = pq.read_table(tmp_path / "plain.parquet").column("PULocationID")
    assert before.null_count < len(before)
    figures = month_figures(spec, "2020-07", tmp_path / "plain.parquet")
    assert figures.counts[UNLOCATED_PICKUP] == 0  # no coordinates: nothing to locate


def test_the_lake_asset_of_a_dataset_with_coordinates_depends_on_the_zone_shapes():
    with_coordinates = build_lake_asset(coordinate_spec())
    assert has_coordinates(coordinate_spec())
    deps = with_coordinates.asset_deps[with_coordinates.key]
    assert shapes_key("lake") in deps
    spec_without = dataclasses.replace(YELLOW, columns=tuple(c for c in YELLOW.columns if c.name not in COORDINATES))
    plain = build_lake_asset(spec_without)
    assert shapes_key("lake") not in plain.asset_deps[plain.key]
    assert isinstance(with_coordinates, dg.AssetsDefinition)


def test_a_coordinate_month_through_raw_lake_and_its_checks_in_dagster(tmp_path, mirror, mirror_root, monkeypatch):
    """raw -> lake (with the zone shapes from the lake, and its checks), in one run: the IDs
    are filled, the metadata counts the unplaced rows, the WARN check flags the month."""
    import gzip
    import shutil

    from taxi_assets.defs.assets.raw import build_raw_asset
    from taxi_assets.defs.assets.zone_shapes import build_zone_shape_assets
    from taxi_assets_tests.harness import Platform
    from taxi_tools.mirror import MirrorServer

    spec = coordinate_spec()
    root = tmp_path / "mirror"
    shutil.copytree(mirror_root / "misc", root / "misc")
    plain = tmp_path / "month.csv"
    write_month(plain, [(TIMES_SQUARE, JFK), (LAGUARDIA, WATER), (ZERO, TIMES_SQUARE)] * 20, with_ids=False)
    month_file = root / "yellow" / "yellow_tripdata_2009-01.csv.gz"
    month_file.parent.mkdir(parents=True)
    month_file.write_bytes(gzip.compress(plain.read_bytes()))
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    with MirrorServer(root) as server:
        platform = Platform(tmp_path / "p", server.url_template, server.zones_url, server.zone_shapes_url)
        assets = [*build_zone_shape_assets(), build_raw_asset(spec), build_lake_asset(spec)]
        # Without the shapes in the lake: a clear error, nothing published.
        failed = dg.materialize(assets[2:], partition_key="2009-01-01", resources=platform.resources(),
                                raise_on_error=False)  # fmt: skip
        assert not failed.success
        (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        error = failure.event_specific_data.error
        assert "materialize lake/taxi_zone_shapes_lake (group zones) first" in (error.cause or error).message
        assert not (platform.lake().root / "yellow" / "month=2009-01").exists()
        shapes = dg.materialize(assets[:2], resources=platform.resources())
        assert shapes.success
        result = dg.materialize(assets, selection="*", partition_key="2009-01-01", resources=platform.resources())
    assert result.success
    lake = pq.read_table(platform.lake().root / "yellow" / "month=2009-01" / "part-0.parquet")
    assert lake.column("PULocationID").to_pylist()[:3] == [230, 138, None]
    assert lake.column("DOLocationID").to_pylist()[:3] == [132, None, 230]
    (event,) = result.asset_materializations_for_node(build_lake_asset(spec).key.to_python_identifier())
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert (metadata["mapped_pickups"], metadata["unlocated_pickups"], metadata["unlocated_pickups_share"]) == (
        40,
        20,
        round(20 / 60, 6),
    )
    assert (metadata["unlocated_dropoffs"], metadata["unlocated_dropoffs_share"]) == (20, round(20 / 60, 6))
    by_check = {e.check_name: e for e in result.get_asset_check_evaluations()}
    located = by_check["pickups_located"]
    assert not located.passed and located.severity == dg.AssetCheckSeverity.WARN
    assert "20 of 60 rows" in located.description
    assert by_check["location_ids_in_range"].passed


def test_the_lake_step_loads_the_stored_zone_index_and_rebuilds_a_missing_or_stale_one(
    tmp_path, monkeypatch, zone_index
):
    """The index `lake/taxi_zone_shapes_lake` stores beside the shapes is what the lake step
    uses; one built from other shapes, of another format, or none at all: the step builds
    it from the shapes (same answers) and says so in a warning."""
    from taxi_assets.defs.assets.keys import shapes_key
    from taxi_assets.geo import stored as stored_module
    from taxi_assets.geo.stored import INDEX_FILE_NAME, ZoneIndexResource, built_index
    from taxi_assets.storage.io_manager import LakeIOManager
    from taxi_assets_tests.harness import Platform

    platform = Platform(tmp_path, "http://127.0.0.1:9/{dataset}/{month}")
    platform.add_zone_shapes()
    folder = platform.lake().root / "taxi_zone_shapes"
    assert sorted(p.name for p in folder.iterdir()) == [INDEX_FILE_NAME, "part-0.parquet"]
    builds = []

    def counted(*args):
        builds.append(args)
        return built_index(*args)

    monkeypatch.setattr(stored_module, "built_index", counted)

    def load() -> tuple[ZoneIndex, list[tuple[str, str]]]:
        logged: list[tuple[str, str]] = []
        log = type("Log", (), {"info": lambda _, m: logged.append(("info", m)),
                               "warning": lambda _, m: logged.append(("warning", m))})()  # fmt: skip
        lake = LakeIOManager(lake_uri=platform.lake_uri, staging_dir=str(tmp_path / "staging"))
        fill = ZoneIndexResource().fill(coordinate_spec().name, lake, shapes_key("lake"), log)
        return fill.index, logged

    index, logged = load()
    assert builds == [] and [level for level, _ in logged] == ["info"]
    assert index.locate([TIMES_SQUARE[0], JFK[0]], [TIMES_SQUARE[1], JFK[1]]).tolist() == [230, 132]

    stored = folder / INDEX_FILE_NAME
    stale = tmp_path / INDEX_FILE_NAME
    index.save(stale, shapes_sha256="0" * 64)  # as if built from other shapes
    for content, why in ((stale.read_bytes(), "other shapes"), (b"not an index", "format"), (None, "no zone index")):
        if content is None:
            stored.unlink()
        else:
            stored.write_bytes(content)
        before = len(builds)
        rebuilt, logged = load()
        assert len(builds) == before + 1, why
        (warning,) = [m for level, m in logged if level == "warning"]
        assert why in warning and "materialize lake/taxi_zone_shapes_lake" in warning.lower()
        assert rebuilt.locate([TIMES_SQUARE[0], WATER[0]], [TIMES_SQUARE[1], WATER[1]]).tolist() == [230, 0]
