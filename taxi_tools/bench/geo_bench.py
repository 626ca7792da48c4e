"""Coordinates -> LocationID: ours (taxi_assets.geo.locate) against geopandas' sjoin, same points.

    python -m taxi_tools.bench geo [--points N] [--repeats R]

Two sets of points (taxi_tools.bench.geo_points): "border-heavy", the reference test's
(a third within 30 m of a zone border, some in the water, outside, junk), harder than
trips; and "trip-like", as the mirror's 2009-shaped months have them (normal around
Midtown, 5% at 0,0).
Both sides start from the same lon/lat arrays and end with one LocationID per point
(the smallest where a point is in two zones); medians of R interleaved repetitions:
- ours: `ZoneIndex.locate` (its one-off build is timed apart; two threads, see locate);
- geopandas: points_from_xy -> to_crs(EPSG:2263) -> sjoin(predicate="within") with the
  shapefile as geopandas reads it -> smallest LocationID per point;
- sjoin alone: only the sjoin call, on points already projected (the floor of any
  geopandas pipeline).
Wall and CPU time (time.process_time, all threads) of each. The last two lines are
`geo SET: ours_mpts_s=A geopandas/ours=R sjoin_only/ours=S sjoin_only/ours_cpu=C points=N`.

    python -m taxi_tools.bench zones [--zones-rows N] [--repeats R]

times the lake step's conversion of a 2009-shaped yellow month with and without the
mapping (run_zones_bench).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

# The bench's own helpers are imported where they are used: a zones variant runs in a
# process of its own (main below) whose peak must be the lake step's, not the bench's
# (convert_bench and geo_points pull in the mirror generator, pyproj: ~75 MiB more).


def shapes_zip() -> Path:
    """The real shapefile the mirror serves (shipped with the package)."""
    return Path(str(resources.files("taxi_tools.mirror").joinpath("taxi_zones.zip")))


def run_geo_bench(points: int, repeats: int) -> list[str]:
    import tempfile

    from taxi_assets.geo.locate import ZoneIndex
    from taxi_assets.geo.shapes import read_shapefile_zip
    from taxi_tools.bench.convert_bench import load, machine
    from taxi_tools.bench.geo_points import city_points, trip_points

    path = shapes_zip()
    print(machine())
    print(f"start: {load()}", flush=True)
    started, cpu = time.perf_counter(), time.process_time()
    built = ZoneIndex.from_table(read_shapefile_zip(path, str(path)))
    build, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    with tempfile.TemporaryDirectory() as folder:  # stored and loaded back, as the lake step gets it
        stored = Path(folder) / "_zone_index.npz"
        built.save(stored)
        started = time.perf_counter()
        index = ZoneIndex.load(stored)
        loaded, size = time.perf_counter() - started, stored.stat().st_size
    del built
    lines = [
        f"ours: zone index built in {build:.2f} s ({build_cpu:.1f} CPU-s; once per shapes version), "
        f"stored in {size / 2**20:.1f} MiB, loaded in {loaded:.2f} s; {len(index.line_of_leaf):,} line leaves, "
        f"{len(index.offsets) - 1:,} other leaves, {len(index.pieces_wkb):,} pieces"
    ]
    summaries = []
    for name, (lon, lat) in (("border-heavy", city_points(path, points)), ("trip-like", trip_points(points))):
        table, summary = _geo_set(index, path, name, lon, lat, repeats)
        lines += table
        summaries.append(summary)
    print(f"end: {load()}")
    return [*lines, *summaries]


def _geo_set(index, path: Path, name: str, lon: np.ndarray, lat: np.ndarray, repeats: int) -> tuple[list[str], str]:
    import geopandas
    import pyproj

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
    cpu_times: dict[str, list[float]] = {variant: [] for variant in timings}
    work = {
        "ours": lambda: index.locate(lon, lat),
        "geopandas": geopandas_pipeline,
        "sjoin only": lambda: geopandas.sjoin(projected, zones, predicate="within", how="inner"),
    }
    results = {}
    for rep in range(repeats):
        names = list(work)
        for variant in names[rep % 3 :] + names[: rep % 3]:
            started, cpu = time.perf_counter(), time.process_time()
            results[variant] = work[variant]()
            timings[variant].append(time.perf_counter() - started)
            cpu_times[variant].append(time.process_time() - cpu)
            print(f"  {name} rep {rep + 1} {variant:<11} {timings[variant][-1]:7.3f} s "
                  f"{cpu_times[variant][-1]:7.3f} CPU-s", flush=True)  # fmt: skip
    same = float((results["ours"] == results["geopandas"]).mean())
    median = {variant: statistics.median(t) for variant, t in timings.items()}
    cpu_median = {variant: statistics.median(t) for variant, t in cpu_times.items()}
    n = len(lon)
    lines = [f"{name} points ({n:,}): {'variant':<11} {'s (median)':>10} {'M points/s':>11} {'vs ours':>8} "
             f"{'CPU-s':>7} {'CPU vs ours':>11}"]  # fmt: skip
    for variant, seconds in median.items():
        lines.append(f"  {variant:<11} {seconds:10.3f} {n / seconds / 1e6:11.2f} {seconds / median['ours']:8.1f} "
                     f"{cpu_median[variant]:7.3f} {cpu_median[variant] / cpu_median['ours']:11.1f}")  # fmt: skip
    lines.append(
        f"  same LocationID as geopandas for {same:.4%} of the points (the rest: on or within a hair of a border)"
    )
    last = (
        f"geo {name}: ours_mpts_s={n / median['ours'] / 1e6:.2f} geopandas/ours={median['geopandas'] / median['ours']:.1f} "
        f"sjoin_only/ours={median['sjoin only'] / median['ours']:.1f} "
        f"sjoin_only/ours_cpu={cpu_median['sjoin only'] / cpu_median['ours']:.1f} points={n}"
    )
    return lines, last


# ---------------------------------------------------------------- the lake step with and without mapping

ZONES_MONTH = "2009-01"  # yellow's first era: coordinates, no location IDs (published as Parquet)
ZONES_VARIANTS = ("without-zones", "with-zones")


def zones_variant(variant: str, src: Path, dst: Path, month: str, index_file: Path) -> int:
    """The lake step's conversion of a yellow month, with the zone filling or without
    (coordinates kept, IDs left null). With: the zone index is loaded inside the timing
    from the file `lake/taxi_zone_shapes_lake` stores (geo/stored.py), as the lake step
    loads it once per run."""
    from taxi_assets.spec.datasets import get_spec
    from taxi_assets.transform.convert import convert

    spec = get_spec("yellow")
    if variant == "without-zones":
        return convert(spec, month, src, dst).rows
    from taxi_assets.geo.fill import ZoneFill
    from taxi_assets.geo.locate import ZoneIndex

    result = convert(spec, month, src, dst, zones=ZoneFill(lambda: ZoneIndex.load(index_file)))
    print(json.dumps({"zones": result.zones}), file=sys.stderr)
    return result.rows


def run_zones_bench(root: Path, rows: int, repeats: int) -> list[str]:
    """Wall and peak memory of the conversion of a 2009-shaped yellow month (generated by the
    mirror, Parquet) with and without mapping coordinates to zones, interleaved, each run in
    its own process. Last line: `zones: with/without_wall=R peak_mib=M rows=N`."""
    from taxi_assets.geo.shapes import read_shapefile_zip, write_shapes_parquet
    from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, write_index
    from taxi_tools.bench.convert_bench import load, machine
    from taxi_tools.bench.variants import run_fresh
    from taxi_tools.mirror import generate
    from taxi_tools.mirror.generator import relpath

    folder = root / f"yellow-{ZONES_MONTH}-rows-{rows}"
    src = folder / relpath("yellow", ZONES_MONTH, "parquet")
    if not src.exists():
        print(f"generating {src} ({rows:,} rows) ...", flush=True)
        generate(folder, ["yellow"], [ZONES_MONTH], rows=rows, formats=("parquet",))
    out = folder / "out.parquet"
    # The shapes and their index as lake/taxi_zone_shapes_lake stores them (once per shapes version).
    shapes_file, index_file = folder / "taxi_zone_shapes.parquet", folder / INDEX_FILE_NAME
    write_shapes_parquet(read_shapefile_zip(shapes_zip(), "taxi_zones.zip"), shapes_file)
    write_index(shapes_file, index_file, os.environ.get(CACHE_ENV))
    print(machine())
    print(f"start: {load()}", flush=True)
    runs: list[dict] = []  # the JSON line of each run
    for rep in range(repeats):
        for variant in ZONES_VARIANTS[rep % 2 :] + ZONES_VARIANTS[: rep % 2]:
            args = [variant, src, out, ZONES_MONTH, index_file]
            m, stderr = run_fresh("taxi_tools.bench.geo_bench", args, out)
            runs.append(m)
            print(f"  rep {rep + 1} {variant:<14} {m['wall']:7.2f} s {m['cpu']:6.2f} CPU-s {m['peak_mib']:6.0f} MiB "
                  f"(base {m['base_mib']:.0f})", flush=True)  # fmt: skip
            if variant == "with-zones":
                figures = json.loads(stderr.strip().splitlines()[-1])["zones"]
    print(f"end: {load()}")
    wall = {v: statistics.median(r["wall"] for r in runs if r["variant"] == v) for v in ZONES_VARIANTS}
    peak = {v: max(r["peak_mib"] for r in runs if r["variant"] == v) for v in ZONES_VARIANTS}
    cpu = {v: statistics.median(r["cpu"] for r in runs if r["variant"] == v) for v in ZONES_VARIANTS}
    return [
        f"2009-shaped yellow month, {rows:,} rows ({src.stat().st_size / 2**20:,.0f} MiB Parquet)",
        *(
            f"  {v:<14} wall {wall[v]:6.2f} s (median)  CPU {cpu[v]:6.2f} s  peak {peak[v]:5.0f} MiB"
            for v in ZONES_VARIANTS
        ),
        f"  with zones: {figures}",
        f"zones: with/without_wall={wall['with-zones'] / wall['without-zones']:.2f} "
        f"with/without_cpu={cpu['with-zones'] / cpu['without-zones']:.2f} "
        f"peak_mib={peak['with-zones']:.0f} peak_without_mib={peak['without-zones']:.0f} rows={rows}",
    ]


def main(argv: list[str]) -> None:
    """One run of a zones variant in this process (as variants.py): prints a JSON line."""
    from taxi_tools.bench.variants import measure

    variant, src, dst, month, index_file = argv
    import taxi_assets.transform.convert  # noqa: F401  (the lake step's imports, before the base is read)

    if variant == "with-zones":
        import taxi_assets.geo.fill  # noqa: F401
    measure(variant, lambda: zones_variant(variant, Path(src), Path(dst), month, Path(index_file)))


if __name__ == "__main__":
    main(sys.argv[1:])
