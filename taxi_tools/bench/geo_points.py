"""Generated trip coordinates over the city, shared by the reference test and the bench:
many right at zone borders, some in the water, outside the city, at 0,0 or missing."""

from __future__ import annotations

import numpy as np
import pyproj
import shapely

from taxi_assets.geo.shapes import read_shapefile_zip


def city_points(zip_path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n lon/lat points: 35% uniform over the zones' bounding box (a third of it is water
    or New Jersey), 35% within 30 m of a zone border (a tenth within 5 cm), 20% in
    Manhattan, 5% up to 50 km outside the city, 5% at 0,0, NaN or impossible values."""
    rng = np.random.default_rng(seed)
    shapes = read_shapefile_zip(zip_path, str(zip_path))
    polygons = shapely.from_wkb(shapes.column("geometry").to_numpy(zero_copy_only=False))
    x0, y0, x1, y1 = shapely.total_bounds(polygons)
    counts = np.array([0.35, 0.35, 0.20, 0.05, 0.05]) * n
    counts = counts.astype(int)
    counts[0] += n - counts.sum()
    parts = [np.column_stack([rng.uniform(x0, x1, counts[0]), rng.uniform(y0, y1, counts[0])])]

    # Near borders: a random vertex of a random ring (segmentized shapes: vertices every
    # 100 ft at most), moved by a random offset in state-plane feet.
    to_feet = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)
    to_lonlat = pyproj.Transformer.from_crs("EPSG:2263", "EPSG:4326", always_xy=True)
    vertices = shapely.get_coordinates(shapely.boundary(polygons))
    picked = vertices[rng.integers(0, len(vertices), counts[1])]
    fx, fy = to_feet.transform(picked[:, 0], picked[:, 1])
    distance = np.where(rng.random(counts[1]) < 0.1, rng.uniform(0, 0.16, counts[1]), rng.uniform(0, 100, counts[1]))
    angle = rng.uniform(0, 2 * np.pi, counts[1])
    parts.append(np.column_stack(to_lonlat.transform(fx + distance * np.cos(angle), fy + distance * np.sin(angle))))

    parts.append(np.column_stack([rng.uniform(-74.02, -73.93, counts[2]), rng.uniform(40.70, 40.88, counts[2])]))
    parts.append(np.column_stack([rng.uniform(-74.6, -73.4, counts[3]), rng.uniform(40.2, 41.2, counts[3])]))
    junk = np.zeros((counts[4], 2))
    kinds = rng.integers(0, 4, counts[4])
    junk[kinds == 1] = np.nan
    junk[kinds == 2] = [-740.0, 407.0]  # a misplaced decimal point
    junk[kinds == 3] = [73.98, -40.75]  # signs swapped
    parts.append(junk)
    points = np.concatenate(parts)
    points = points[rng.permutation(len(points))]
    return points[:, 0].copy(), points[:, 1].copy()


def trip_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n lon/lat points as the mirror's 2009-shaped months have them: normal around Midtown
    (0.05 degrees, about 5 km, either way), 6 decimals, 5% at 0,0."""
    rng = np.random.default_rng(seed)
    lon = np.round(-73.97 + rng.normal(0, 0.05, n), 6)
    lat = np.round(40.75 + rng.normal(0, 0.05, n), 6)
    zero = rng.random(n) < 0.05
    lon[zero] = lat[zero] = 0.0
    return lon, lat
