"""Coordinates -> LocationID against an independent reference: the published shapefile
read by geopandas/pyogrio in its own CRS (EPSG:2263), the points projected with pyproj,
and geopandas' sjoin(predicate="within"). Equal for every point farther than 1 cm
from a border; border points get the smaller LocationID whatever the zones' order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import shapely

from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.geo.shapes import read_shapefile_zip
from taxi_assets_tests.geo_reference import projected_points, reference_ids, reference_zones
from taxi_assets_tests.harness import TEST_DATA
from taxi_tools.bench.geo_points import city_points

SHAPES_ZIP = TEST_DATA / "taxi_zones.zip"
POINTS = 1_000_000
CM_IN_FEET = 0.01 / 0.3048006096012192


@pytest.fixture(scope="module")
def shapes() -> pa.Table:
    return read_shapefile_zip(SHAPES_ZIP, str(SHAPES_ZIP))


@pytest.fixture(scope="module")
def index(zone_index) -> ZoneIndex:
    return zone_index


@pytest.mark.slow
def test_every_point_farther_than_a_cm_from_a_border_matches_geopandas_sjoin(index):
    lon, lat = city_points(SHAPES_ZIP, POINTS)
    ours = index.locate(lon, lat)

    zones = reference_zones()
    assert zones.crs.to_epsg() == 2263
    expected = reference_ids(lon, lat)
    ok, points = projected_points(lon, lat)

    # Every point where the two differ must lie within 1 cm of a zone border (in feet).
    borders = shapely.STRtree(zones.geometry.boundary.to_numpy())
    differ = np.flatnonzero(ours != expected)
    assert (ok[differ]).all()
    position = np.cumsum(ok) - 1  # index among the projected points
    _, distance = borders.query_nearest(points.geometry.to_numpy()[position[differ]], return_distance=True,
                                        all_matches=False)  # fmt: skip
    far = differ[distance > CM_IN_FEET]
    assert not len(far), (
        f"{len(far)} points farther than 1 cm from a border differ, e.g. "
        f"{list(zip(lon[far][:5], lat[far][:5], ours[far][:5], expected[far][:5]))}"
    )
    # The points exercise what they should: borders, water, outside, junk, every zone.
    _, near = borders.query_nearest(points.geometry.to_numpy()[:100_000], return_distance=True, all_matches=False)
    assert (near < 10).mean() > 0.05
    assert 0.2 < (expected == 0).mean() < 0.6
    assert len(np.unique(expected)) == 263 + 1


@pytest.mark.slow
def test_a_point_on_a_shared_border_gets_the_smaller_id_whatever_the_order(shapes, index):
    polygons = shapely.from_wkb(shapes.column("geometry").to_numpy(zero_copy_only=False))
    ids = shapes.column("LocationID").to_numpy()
    # Vertices that two zones share: exactly on both borders.
    tree = shapely.STRtree(polygons)
    a, b = tree.query(polygons, predicate="touches")
    pairs = [(i, j) for i, j in zip(a, b) if i < j][:200]
    shared = []
    for i, j in pairs:
        common = shapely.get_coordinates(
            shapely.intersection(shapely.boundary(polygons[i]), shapely.boundary(polygons[j]))
        )
        if len(common):
            shared.append((common[0], min(ids[i], ids[j])))
    assert len(shared) > 100
    lon = np.array([c[0] for c, _ in shared])
    lat = np.array([c[1] for c, _ in shared])
    want = np.array([w for _, w in shared])
    # Forward: the index of the zones in LocationID order as the lake stores it (ZoneIndex.from_table
    # of these shapes, built by this code: the session's TAXI_ZONE_INDEX_CACHE is keyed by it), so
    # the suite pays one build (~50 s of CPU) here, not two. Backward: built here, zones reversed.
    assert index.location_ids.tolist() == ids.tolist()
    forward = index.locate(lon, lat)
    backward = ZoneIndex(ids[::-1], polygons[::-1]).locate(lon, lat)
    assert (forward == backward).all()
    # A shared vertex can also touch a third zone with an even smaller ID.
    assert (forward <= want).all() and (forward > 0).all()


def test_null_nan_and_far_away_points_are_null(index):
    lon = pa.array([None, 0.0, float("nan"), -73.9857, -74.0445, -80.0], pa.float64())
    lat = pa.array([40.75, 0.0, 40.7, 40.7484, 40.6892, 40.7])
    ids = index.locate_arrow(lon, lat)
    # The Empire State Building is in Midtown (161 "Midtown Center" or a neighbour); the
    # Statue of Liberty on Liberty Island (one of 103/104/105).
    values = ids.to_pylist()
    assert values[:3] == [None, None, None] and values[5] is None
    names = dict(zip(index.location_ids.tolist(), range(len(index.location_ids))))
    assert values[3] in names and values[4] in (103, 104, 105)
