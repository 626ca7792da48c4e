"""Trip coordinates for the generated coordinate-era months (2009-2016), placed like real ones:
inside the real taxi zones the mirror serves (taxi_zones.zip), a few at 0,0 (unknown).

Each zone gets a fixed pool of points drawn uniformly inside its shape once per process
(rejection sampling in its bounding box, a fixed seed: the files' bytes depend only on the
generator's arguments); a trip takes a zone, weighted towards Manhattan as real pickups are,
and one of its points, moved by a few metres. Real months leave 1-3 % of the points in no
zone (0,0, water, outside the city); so do these: ZERO_SHARE at 0,0 and the few a jitter
moves off a shore.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import shapely

POINTS_PER_ZONE = 64
ZERO_SHARE = 0.012  # 0,0: the meter had no fix
JITTER_DEG = 0.0001  # about 10 m
MANHATTAN_WEIGHT = 8.0  # most yellow trips start and end in Manhattan


@cache
def _zone_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat) pools of shape (zones, POINTS_PER_ZONE), and each zone's weight."""
    from taxi_assets.geo.shapes import geometries, read_shapefile_zip

    with resources.as_file(resources.files(__package__).joinpath("taxi_zones.zip")) as path:
        table = read_shapefile_zip(path, "taxi_zones.zip")
    shapes = geometries(table)
    boroughs = table.column("borough").to_pylist()
    rng = np.random.default_rng(2263)
    lons = np.empty((len(shapes), POINTS_PER_ZONE))
    lats = np.empty_like(lons)
    for i, shape in enumerate(shapes):
        x0, y0, x1, y1 = shapely.bounds(shape)
        found_x, found_y = np.empty(0), np.empty(0)
        while len(found_x) < POINTS_PER_ZONE:
            x, y = rng.uniform(x0, x1, 4 * POINTS_PER_ZONE), rng.uniform(y0, y1, 4 * POINTS_PER_ZONE)
            inside = shapely.contains_xy(shape, x, y)
            found_x, found_y = np.concatenate([found_x, x[inside]]), np.concatenate([found_y, y[inside]])
        lons[i], lats[i] = found_x[:POINTS_PER_ZONE], found_y[:POINTS_PER_ZONE]
    weights = np.array([MANHATTAN_WEIGHT if b == "Manhattan" else 1.0 for b in boroughs])
    return lons, lats, weights / weights.sum()


def trip_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n (longitude, latitude) pairs rounded to 6 decimals, as the files carry them."""
    lons, lats, weights = _zone_points()
    zone = rng.choice(len(weights), n, p=weights)
    pick = rng.integers(0, POINTS_PER_ZONE, n)
    lon = lons[zone, pick] + rng.normal(0, JITTER_DEG, n)
    lat = lats[zone, pick] + rng.normal(0, JITTER_DEG, n)
    zero = rng.random(n) < ZERO_SHARE
    return np.round(np.where(zero, 0.0, lon), 6), np.round(np.where(zero, 0.0, lat), 6)
