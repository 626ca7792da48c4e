"""The taxi zone shapes: the shapefile zip as published, and the polygons in lon/lat as
GeoParquet, which the lake step of months with coordinates reads to map them to zones.

Unpartitioned, refreshed by hand like the zone lookup (same group). Why lon/lat and
which LocationIDs the three mislabelled records get: taxi_assets/geo/shapes.py.
"""

import time

import dagster as dg

from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.defs.assets.metadata import arrow_table_schema, download_metadata
from taxi_assets.defs.assets.raw import download_staged
from taxi_assets.defs.assets.zones import ZONES_GROUP
from taxi_assets.geo.shapes import (
    LOCATION_ID_FIXES,
    SHAPES_CRS,
    SHAPES_SCHEMA,
    read_shapefile_zip,
    write_shapes_parquet,
)
from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, ZoneIndexResource
from taxi_assets.source.resource import TaxiSource
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import LakeObject
from taxi_assets.storage.staging import StagedFile

SHAPES_FILE_NAME = "part-0.parquet"


@dg.asset(
    key=shapes_key("raw"),
    io_manager_key="lake_io_manager",
    group_name=ZONES_GROUP,
    kinds={"file"},
    description="The taxi zone shapefile (zip: .shp/.shx/.dbf/.prj, EPSG:2263) as published, unchanged.",
    metadata={"layer": "raw"},
)
def raw_taxi_zone_shapes(
    context: dg.AssetExecutionContext, source: TaxiSource, lake_io_manager: dg.ResourceParam[LakeIOManager]
) -> dg.Output[StagedFile]:
    # The download checks the zip whole (central directory, every CRC): source/http.py.
    staged, got = download_staged(
        lake_io_manager, source.zone_shapes_file_name(), lambda dest: source.download_zone_shapes(dest, context.log)
    )
    context.log.info(f"taxi zone shapes: {got.bytes:,} bytes from {got.url}")
    return dg.Output(staged, metadata=download_metadata(got))


@dg.asset(
    key=shapes_key("lake"),
    ins={"raw": dg.AssetIn(shapes_key("raw"))},
    io_manager_key="lake_io_manager",
    group_name=ZONES_GROUP,
    kinds={"parquet", "geoparquet"},
    description=(
        "The taxi zones' polygons in lon/lat (EPSG:4326) as GeoParquet (WKB), one row per LocationID with zone "
        "and borough. OBJECTIDs 57, 104 and 105, which the published file labels 56, 103 and 103, get LocationIDs "
        "57, 104 and 105. Beside it, _zone_index.npz: the coordinates -> zone index the lake steps of months with "
        "coordinates load."
    ),
    metadata={"layer": "lake", "dagster/column_schema": arrow_table_schema(SHAPES_SCHEMA), "crs": SHAPES_CRS},
)
def lake_taxi_zone_shapes(
    context: dg.AssetExecutionContext,
    raw: LakeObject,
    lake_io_manager: dg.ResourceParam[LakeIOManager],
    zone_index: ZoneIndexResource,
) -> dg.Output[StagedFile]:
    with raw.local_path() as path:
        shapes = read_shapefile_zip(path, raw.uri)
    staged = lake_io_manager.stage(SHAPES_FILE_NAME)
    index_path = staged.path.with_name(INDEX_FILE_NAME)
    try:
        write_shapes_parquet(shapes, staged.path)
        # The zone index of these shapes, once, for every month's lake step (geo/stored.py).
        started = time.monotonic()
        cached = zone_index.write(staged.path, index_path)
        index_seconds = time.monotonic() - started
    except BaseException:
        staged.discard()
        raise
    ids = shapes.column("LocationID").to_pylist()
    context.log.info(
        f"taxi zone shapes: {len(ids)} zones, LocationIDs {min(ids)}..{max(ids)}; zone index "
        f"({index_path.stat().st_size / 2**20:.1f} MiB) "
        + (f"copied from {cached} ({CACHE_ENV})" if cached else f"built in {index_seconds:.1f}s")
    )
    return dg.Output(
        StagedFile(staged.path, sidecars=(index_path,)),
        metadata={
            "zone_index_mib": round(index_path.stat().st_size / 2**20, 2),
            "zone_index_seconds": round(index_seconds, 1),
            # Not built in this step but taken from TAXI_ZONE_INDEX_CACHE (geo/stored.py): which file.
            "zone_index_from_cache": str(cached) if cached else "",
            "dagster/row_count": len(ids),
            "crs": SHAPES_CRS,
            "fixed_location_ids": {
                str(obj): f"{said} -> {assigned}" for obj, (said, assigned) in LOCATION_ID_FIXES.items()
            },
            "location_ids_without_shape": [i for i in range(1, 266) if i not in set(ids)],
            "source_file": raw.uri,
        },
    )


def build_zone_shape_assets() -> list[dg.AssetsDefinition]:
    return [raw_taxi_zone_shapes, lake_taxi_zone_shapes]


@dg.definitions
def zone_shapes() -> dg.Definitions:
    return dg.Definitions(assets=build_zone_shape_assets())
