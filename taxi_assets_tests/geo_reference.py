"""The independent reference for coordinates -> LocationID: the published shapefile read by
geopandas/pyogrio in its own CRS (EPSG:2263), points projected with pyproj, and
geopandas' sjoin(predicate="within"); the smallest ID where the shapes overlap by slivers."""

from __future__ import annotations

import functools

import geopandas
import numpy as np
import pyproj

from taxi_assets_tests.harness import TEST_DATA

SHAPES_ZIP = TEST_DATA / "taxi_zones.zip"


@functools.lru_cache(maxsize=1)
def reference_zones() -> geopandas.GeoDataFrame:
    zones = geopandas.read_file(f"zip://{SHAPES_ZIP}", engine="pyogrio")
    # The documented decision (taxi_assets/geo/shapes.py, README): every record's
    # LocationID is its OBJECTID; the file agrees except for OBJECTIDs 57, 104, 105.
    differs = zones[zones["LocationID"] != zones["OBJECTID"]]
    assert sorted(zip(differs["OBJECTID"], differs["LocationID"])) == [(57, 56), (104, 103), (105, 103)]
    zones["LocationID"] = zones["OBJECTID"]
    return zones[["LocationID", "geometry"]]


def projected_points(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, geopandas.GeoDataFrame]:
    """(mask of the points that are valid lon/lat, those points in the zones' CRS)."""
    zones = reference_zones()
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", zones.crs, always_xy=True).transform(lon[ok], lat[ok])
    return ok, geopandas.GeoDataFrame(geometry=geopandas.points_from_xy(x, y), crs=zones.crs)


def reference_ids(lon, lat) -> np.ndarray:
    """LocationID of each point, 0 where it is in no zone (or not a valid lon/lat)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    ok, points = projected_points(lon, lat)
    joined = geopandas.sjoin(points, reference_zones(), predicate="within", how="inner")
    found = joined.groupby(level=0)["LocationID"].min()
    expected = np.zeros(len(lon), dtype=np.int32)
    expected[np.flatnonzero(ok)[found.index.to_numpy()]] = found.to_numpy()
    return expected
