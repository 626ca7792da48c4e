"""Coordinates -> LocationID: ours (taxi_assets.geo.locate) against geopandas' sjoin, same points.

    python -m taxi_assets.bench geo [--points N] [--repeats R]

The points are the reference test's (taxi_assets.bench.geo_points: a third right at
zone borders, some in the water, outside, junk), so they are harder than real trips.
Both sides start from the same lon/lat arrays and end with one LocationID per point
(the smallest where a point is in two zones); medians of R interleaved repetitions:
- ours: `ZoneIndex.locate` (its one-off build is timed apart);
- geopandas: points_from_xy -> to_crs(EPSG:2263) -> sjoin(predicate="within") with the
  shapefile as geopandas reads it -> smallest LocationID per point;
- sjoin alone: only the sjoin call, on points already projected (the floor of any
  geopandas pipeline).
The last line is `geo: ours_mpts_s=A geopandas/ours=R sjoin_only/ours=S points=N`.
"""

from __future__ import annotations

import statistics
import time
from importlib import resources
from pathlib import Path

import numpy as np

from taxi_assets.bench.convert_bench import load, machine
from taxi_assets.bench.geo_points import city_points


def shapes_zip() -> Path:
    """The real shapefile the mirror serves (shipped with the package)."""
    return Path(str(resources.files("taxi_assets.mirror").joinpath("taxi_zones.zip")))


def run_geo_bench(points: int, repeats: int) -> list[str]:
    import geopandas
    import pyproj

    from taxi_assets.geo.locate import ZoneIndex
    from taxi_assets.geo.shapes import read_shapefile_zip

    path = shapes_zip()
    print(machine())
    print(f"start: {load()}", flush=True)
    lon, lat = city_points(path, points)
    started = time.perf_counter()
    index = ZoneIndex.from_table(read_shapefile_zip(path, str(path)))
    build = time.perf_counter() - started

    zones = geopandas.read_file(f"zip://{path}", engine="pyogrio")
    zones["LocationID"] = zones["OBJECTID"]  # the pipeline's IDs (taxi_assets/geo/shapes.py)
    zones = zones[["LocationID", "geometry"]]
    ok = np.isfinite(lon) & np.isfinite(lat)
    to_feet = pyproj.Transformer.from_crs("EPSG:4326", zones.crs, always_xy=True)
    projected = geopandas.GeoDataFrame(
        geometry=geopandas.points_from_xy(*to_feet.transform(lon[ok], lat[ok])), crs=zones.crs
    )

    def geopandas_pipeline() -> np.ndarray:
        frame = geopandas.GeoDataFrame(geometry=geopandas.points_from_xy(lon, lat), crs="EPSG:4326")
        joined = geopandas.sjoin(frame.to_crs(zones.crs), zones, predicate="within", how="inner")
        found = joined.groupby(level=0)["LocationID"].min()
        result = np.zeros(len(lon), dtype=np.int32)
        result[found.index.to_numpy()] = found.to_numpy()
        return result

    timings: dict[str, list[float]] = {"ours": [], "geopandas": [], "sjoin only": []}
    work = {
        "ours": lambda: index.locate(lon, lat),
        "geopandas": geopandas_pipeline,
        "sjoin only": lambda: geopandas.sjoin(projected, zones, predicate="within", how="inner"),
    }
    results = {}
    for rep in range(repeats):
        names = list(work)
        for name in names[rep % 3 :] + names[: rep % 3]:
            started = time.perf_counter()
            results[name] = work[name]()
            timings[name].append(time.perf_counter() - started)
            print(f"  rep {rep + 1} {name:<11} {timings[name][-1]:7.3f} s", flush=True)
    print(f"end: {load()}")
    same = float((results["ours"] == results["geopandas"]).mean())
    median = {name: statistics.median(t) for name, t in timings.items()}
    lines = [f"{'variant':<11} {'s (median)':>10} {'M points/s':>11} {'vs ours':>8}"]
    for name, seconds in median.items():
        lines.append(f"{name:<11} {seconds:10.3f} {points / seconds / 1e6:11.2f} {seconds / median['ours']:8.1f}")
    lines.append(f"ours: index built in {build:.2f} s; same LocationID as geopandas for {same:.4%} of points "
                 f"(the rest lie on or within a hair of a border)")  # fmt: skip
    lines.append(
        f"geo: ours_mpts_s={points / median['ours'] / 1e6:.2f} geopandas/ours={median['geopandas'] / median['ours']:.1f} "
        f"sjoin_only/ours={median['sjoin only'] / median['ours']:.1f} points={points}"
    )
    return lines
