"""The taxi zone shapes: TLC's shapefile (a zip) -> polygons in lon/lat, as Parquet.

The shapefile is read with pyshp, straight from the zip, and projected with pyproj
from the CRS its `.prj` declares (NAD83 / New York Long Island, US feet, EPSG:2263)
to lon/lat (EPSG:4326), which is what trip records carry.

Why lon/lat in the lake: the mapping then tests trip coordinates as they are, with
no projection per point (the lake step maps tens of millions of points a month).
Before projecting, every edge is cut into pieces of at most `SEGMENT_FT` feet
(shapely.segmentize): a straight edge in the state plane is a slightly curved line in
lon/lat, and a 100 ft piece strays from it by well under a millimetre, so points
more than a centimetre from a border fall in the same zone either way (the reference
test compares with geopandas in EPSG:2263).

Three records of the published file carry a wrong LocationID (docs/data.md, "Facts about the source"): OBJECTID 57
says 56 (both "Corona", Queens), OBJECTIDs 104 and 105 say 103 (Governor's/Ellis/
Liberty Island). Every other record has LocationID == OBJECTID, and the lookup lists
56/57 and 103/104/105 separately with the same names, so these records get their
OBJECTID: 57, 104 and 105. Each LocationID then has exactly one shape; 264 and 265
(unknown) have none.

The lake file is GeoParquet 1.0 (WKB in a binary column plus the `geo` schema
metadata), one row per zone: LocationID, zone, borough, OBJECTID, geometry.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from taxi_assets.errors import ConversionError
from taxi_assets.transform.zones import id_ranges

SHAPES_TABLE = "taxi_zone_shapes"
SHAPES_CRS = "EPSG:4326"
SEGMENT_FT = 100.0
# OBJECTID -> (LocationID the file says, LocationID the pipeline assigns). See the docstring.
LOCATION_ID_FIXES = {57: (56, 57), 104: (103, 104), 105: (103, 105)}
# The zones that have a shape (264 and 265, the unknown zones, have none): a file missing
# any would leave trips in those zones unmapped, so it is refused rather than published.
SHAPED_LOCATION_IDS = range(1, 264)
# Lon/lat box around New York City with a margin: shapes projected outside it were
# projected from a CRS (.prj) that does not describe their coordinates.
NYC_LON = (-75.0, -73.0)
NYC_LAT = (40.0, 41.5)

SHAPES_SCHEMA = pa.schema(
    [
        pa.field("LocationID", pa.int32(), nullable=False),
        pa.field("zone", pa.string(), nullable=False),
        pa.field("borough", pa.string(), nullable=False),
        pa.field("OBJECTID", pa.int32(), nullable=False),
        pa.field("geometry", pa.binary(), nullable=False),
    ]
)


def _members(zf: zipfile.ZipFile, source: str) -> dict[str, str]:
    """{extension: member name} of the zip's one shapefile."""
    by_ext: dict[str, str] = {}
    for name in zf.namelist():
        ext = Path(name).suffix.lower().lstrip(".")
        if ext in ("shp", "shx", "dbf", "prj") and not name.endswith("/"):
            if ext in by_ext:
                raise ConversionError(f"taxi zone shapes: {source} holds more than one .{ext}")
            by_ext[ext] = name
    missing = [ext for ext in ("shp", "dbf", "prj") if ext not in by_ext]
    if missing:
        raise ConversionError(
            f"taxi zone shapes: {source} is not a zipped shapefile (no {', '.join('.' + m for m in missing)} "
            f"among {', '.join(zf.namelist()) or 'no files'})"
        )
    return by_ext


def read_shapefile_zip(path: Path, source: str) -> pa.Table:
    """The zip's zones in lon/lat (SHAPES_SCHEMA), LocationIDs fixed, sorted by LocationID."""
    # Only here: their import (pyproj's PROJ database above all) is a cost every definitions load would pay.
    import pyproj
    import shapefile  # pyshp

    try:
        with zipfile.ZipFile(path) as zf:
            names = _members(zf, source)
            files = {ext: io.BytesIO(zf.read(name)) for ext, name in names.items()}
    except zipfile.BadZipFile as exc:
        raise ConversionError(f"taxi zone shapes: {source} is not a zip file: {exc}") from None
    try:
        crs = pyproj.CRS.from_wkt(files["prj"].getvalue().decode("utf-8", "replace"))
        with shapefile.Reader(shp=files["shp"], shx=files.get("shx"), dbf=files["dbf"]) as reader:
            fields = [f.name for f in reader.fields[1:]]
            wanted = {"OBJECTID", "LocationID", "zone", "borough"}
            if not wanted <= set(fields):
                raise ConversionError(
                    f"taxi zone shapes: {source} lacks field(s) {', '.join(sorted(wanted - set(fields)))} "
                    f"(has {', '.join(fields)})"
                )
            records = [(sr.record.as_dict(), sr.shape.__geo_interface__) for sr in reader.iterShapeRecords()]
    except (shapefile.ShapefileException, pyproj.exceptions.CRSError, ValueError, KeyError) as exc:
        raise ConversionError(f"taxi zone shapes: cannot read {source}: {exc}") from None
    if not records:
        raise ConversionError(f"taxi zone shapes: {source} has no records")
    rows = []
    for record, geo in records:
        object_id, location_id = int(record["OBJECTID"]), int(record["LocationID"])
        said, assigned = LOCATION_ID_FIXES.get(object_id, (location_id, location_id))
        rows.append((assigned if location_id == said else location_id, record, geo))
    ids = [r[0] for r in rows]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConversionError(f"taxi zone shapes: {source}: LocationID(s) {duplicated} have more than one shape")
    _check_zone_ids(ids, source)
    rows.sort(key=lambda r: r[0])
    geoms = np.array([shapely.geometry.shape(geo) for _, _, geo in rows], dtype=object)
    to_lonlat = pyproj.Transformer.from_crs(crs, SHAPES_CRS, always_xy=True)
    # Before anything is built from them: the shapes, projected, must lie in New York City.
    _check_in_nyc(shapely.total_bounds(geoms), to_lonlat, crs, source)
    # The state plane is in US feet: pieces of SEGMENT_FT (see the docstring).
    unit = crs.axis_info[0].unit_conversion_factor if crs.is_projected else None
    if unit is not None:
        geoms = shapely.segmentize(geoms, SEGMENT_FT * 0.3048006096012192 / unit)
    lonlat = shapely.transform(geoms, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    lonlat = shapely.make_valid(lonlat) if not shapely.is_valid(lonlat).all() else lonlat
    return pa.table(
        {
            "LocationID": pa.array([r[0] for r in rows], pa.int32()),
            "zone": pa.array([str(r[1]["zone"]) for r in rows], pa.string()),
            "borough": pa.array([str(r[1]["borough"]) for r in rows], pa.string()),
            "OBJECTID": pa.array([int(r[1]["OBJECTID"]) for r in rows], pa.int32()),
            "geometry": pa.array(shapely.to_wkb(lonlat), pa.binary()),
        },
        schema=SHAPES_SCHEMA,
    )


def _check_zone_ids(ids: list[int], source: str) -> None:
    expected = set(SHAPED_LOCATION_IDS)
    missing = sorted(expected - set(ids))
    unknown = sorted(set(ids) - expected - {264, 265})
    lo, hi = SHAPED_LOCATION_IDS[0], SHAPED_LOCATION_IDS[-1]
    if missing or unknown:
        what = [f"no shape for {len(missing)} of LocationIDs {lo}..{hi}: {id_ranges(missing)}"] if missing else []
        what += [f"LocationID(s) that are no TLC zone: {id_ranges(unknown[:20])}"] if unknown else []
        raise ConversionError(
            f"taxi zone shapes: {source} has {len(ids)} zones, not the taxi zones (TLC's file has a shape for each "
            f"of LocationIDs {lo}..{hi}, {len(expected)} records): {'; '.join(what)}"
        )


def _check_in_nyc(bounds, to_lonlat, crs, source: str) -> None:
    x0, y0, x1, y1 = (float(v) for v in bounds)
    xs, ys = to_lonlat.transform([x0, x0, x1, x1], [y0, y1, y0, y1])
    lon, lat = (min(xs), max(xs)), (min(ys), max(ys))
    inside = (
        np.isfinite([*lon, *lat]).all()
        and NYC_LON[0] <= lon[0] <= lon[1] <= NYC_LON[1]
        and NYC_LAT[0] <= lat[0] <= lat[1] <= NYC_LAT[1]
    )
    if not inside:
        raise ConversionError(
            f"taxi zone shapes: {source}: its .prj declares {crs.name!r}, but read so the zones lie at "
            f"lon {lon[0]:.6g}..{lon[1]:.6g}, lat {lat[0]:.6g}..{lat[1]:.6g}, not in New York City: the .prj "
            f"does not describe the coordinates (x {x0:.6g}..{x1:.6g}, y {y0:.6g}..{y1:.6g}; TLC's file is "
            "EPSG:2263, NAD83 / New York Long Island in US feet)"
        )


def geoparquet_metadata(table: pa.Table) -> dict[bytes, bytes]:
    """GeoParquet 1.0 `geo` metadata: geopandas, DuckDB spatial and GDAL read the file as geometries."""
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    types = sorted(set(shapely.get_type_id(geoms).tolist()))
    names = {3: "Polygon", 6: "MultiPolygon"}
    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": [names.get(t, "Geometry") for t in types],
                "bbox": [round(v, 7) for v in shapely.total_bounds(geoms).tolist()],
                # No "crs": GeoParquet's default, OGC:CRS84 (lon/lat).
            }
        },
    }
    return {b"geo": json.dumps(geo).encode()}


def write_shapes_parquet(table: pa.Table, dest: Path) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **geoparquet_metadata(table)})
    pq.write_table(table, dest, compression="zstd")


def read_shapes_parquet(path: Path) -> pa.Table:
    return pq.read_table(path, schema=SHAPES_SCHEMA)


def geometries(table: pa.Table) -> np.ndarray:
    """The shapes as shapely geometries (lon/lat), in the table's order."""
    # to_pylist, not to_numpy: the latter imports pandas (pyarrow's shim), which the lake step does not need.
    return shapely.from_wkb(np.array(table.column("geometry").to_pylist(), dtype=object))
