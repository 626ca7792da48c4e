"""The zone shapes through raw and lake over the real mirror: the zip kept byte for byte,
the lake GeoParquet in lon/lat with the three mislabelled records fixed, and a broken
zip refused with the URL named."""

from __future__ import annotations

import hashlib

import geopandas
import pyarrow.parquet as pq
import pytest
import shapely

from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.geo.stored import INDEX_FILE_NAME, read_index, shapes_version
from taxi_assets.storage.io_manager import published as published_file
from taxi_assets_tests.harness import TEST_DATA
from taxi_tools.mirror import Fault

SHAPES_ZIP = TEST_DATA / "taxi_zones.zip"
SHAPES = " or ".join(f"key:{shapes_key(layer).to_user_string()}" for layer in ("raw", "lake"))


def test_shapes_land_in_raw_as_published_and_in_the_lake_in_lon_lat(platform, mirror_root):
    result = platform.materialize_selection(SHAPES)
    assert result.success
    raw = platform.lake().root / "raw" / "taxi_zone_shapes" / "taxi_zones.zip"
    assert raw.read_bytes() == (mirror_root / "misc" / "taxi_zones.zip").read_bytes() == SHAPES_ZIP.read_bytes()

    lake_file = platform.lake().root / "taxi_zone_shapes" / "part-0.parquet"
    table = pq.read_table(lake_file)
    assert table.column_names == ["LocationID", "zone", "borough", "OBJECTID", "geometry"]
    ids = table.column("LocationID").to_pylist()
    assert ids == sorted(set(ids)) and len(ids) == 263
    assert set(range(1, 264)) == set(ids)  # 264 and 265 (unknown) have no shape
    by_object = {r["OBJECTID"]: r for r in table.drop(["geometry"]).to_pylist()}
    assert all(r["LocationID"] == r["OBJECTID"] for r in by_object.values())
    assert (by_object[57]["zone"], by_object[104]["zone"]) == (
        "Corona",
        "Governor's Island/Ellis Island/Liberty Island",
    )

    # A GeoParquet file others read as geometries; lon/lat around New York City.
    frame = geopandas.read_parquet(lake_file)
    assert frame.crs.to_string() == "OGC:CRS84"
    x0, y0, x1, y1 = frame.total_bounds
    assert -74.3 < x0 < x1 < -73.6 and 40.4 < y0 < y1 < 41.0
    # Same zones as the published file, projected: areas agree to a millionth.
    published = geopandas.read_file(f"zip://{SHAPES_ZIP}", engine="pyogrio").sort_values("OBJECTID")
    ours = frame.sort_values("OBJECTID").to_crs(published.crs)
    ratio = shapely.area(ours.geometry.to_numpy()) / shapely.area(published.geometry.to_numpy())
    assert abs(ratio - 1).max() < 1e-6

    # Beside it, the zone index of exactly these shapes, which the lake steps load.
    index_file = lake_file.with_name(INDEX_FILE_NAME)
    assert sorted(p.name for p in lake_file.parent.iterdir()) == [INDEX_FILE_NAME, "part-0.parquet"]
    index, why = read_index(index_file, shapes_version(lake_file))
    assert why == "stored" and index.locate([-73.9855], [40.7580]).tolist() == [230]  # Times Square
    assert ZoneIndex.stored_meta(index_file)["shapes_sha256"] == hashlib.sha256(lake_file.read_bytes()).hexdigest()
    # Readers of the shapes (the pickup map) still get the GeoParquet file.
    assert published_file(platform.lake(), shapes_key("lake"), None).name == "part-0.parquet"

    materialization = result.asset_materializations_for_node(shapes_key("lake").to_python_identifier())[0]
    assert materialization.metadata["dagster/row_count"].value == 263
    assert materialization.metadata["zone_index_mib"].value > 1
    assert materialization.metadata["location_ids_without_shape"].value == [264, 265]


@pytest.mark.parametrize("fault", [Fault("body", body=b"PK\x03\x04 not really a zip"), Fault("html")])
def test_a_broken_zip_is_refused_naming_the_url_and_the_lake_keeps_nothing(platform, mirror, fault):
    mirror.set_fault("misc/taxi_zones.zip", fault)
    try:
        result = platform.materialize_selection(SHAPES, raise_on_error=False)
    finally:
        mirror.clear_faults()
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    message = error.cause.message if error.cause else error.message
    assert "taxi zone shapes" in message and mirror.zone_shapes_url in message
    assert not (platform.lake().root / "raw" / "taxi_zone_shapes").exists()
    assert not (platform.lake().root / "taxi_zone_shapes").exists()


def rezipped(tmp_path, prj: str | None = None, records: int | None = None):
    """The test data's shapefile zipped again, with another .prj or only its first `records` records."""
    import io
    import zipfile

    import shapefile  # pyshp

    with zipfile.ZipFile(SHAPES_ZIP) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    by_ext = {name.rsplit(".", 1)[-1].lower(): name for name in files}
    if prj is not None:
        files[by_ext["prj"]] = prj.encode()
    if records is not None:
        shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
        source = {ext: io.BytesIO(files[by_ext[ext]]) for ext in ("shp", "shx", "dbf")}
        with shapefile.Reader(**source) as reader, shapefile.Writer(shp=shp, shx=shx, dbf=dbf) as writer:
            writer.fields = reader.fields[1:]
            for sr in list(reader.iterShapeRecords())[:records]:
                writer.shape(sr.shape)
                writer.record(*sr.record)
        for ext, buf in (("shp", shp), ("shx", shx), ("dbf", dbf)):
            files[by_ext[ext]] = buf.getvalue()
    path = tmp_path / "taxi_zones.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_a_prj_that_lies_about_the_crs_is_named_not_a_memory_error(tmp_path):
    import pyproj

    from taxi_assets.errors import ConversionError
    from taxi_assets.geo.shapes import read_shapefile_zip

    # WGS84 declared on coordinates in state-plane feet (x about 1e6, y about 2e5).
    path = rezipped(tmp_path, prj=pyproj.CRS("EPSG:4326").to_wkt("WKT1_ESRI"))
    with pytest.raises(ConversionError) as raised:
        read_shapefile_zip(path, "zones.zip")
    message = str(raised.value)
    assert message.startswith("taxi zone shapes: zones.zip: its .prj declares 'WGS 84', but read so the zones")
    assert "not in New York City: the .prj does not describe the coordinates" in message


def test_a_lying_prj_fails_the_lake_step_with_that_message_and_publishes_no_shapes(platform, mirror, tmp_path):
    import pyproj

    path = rezipped(tmp_path, prj=pyproj.CRS("EPSG:4326").to_wkt("WKT1_ESRI"))
    mirror.set_fault("misc/taxi_zones.zip", Fault("body", body=path.read_bytes()))
    try:
        result = platform.materialize_selection(SHAPES, raise_on_error=False)
    finally:
        mirror.clear_faults()
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "lake__taxi_zone_shapes_lake"
    error = failure.event_specific_data.error
    assert (error.cause or error).cls_name == "ConversionError"
    assert "not in New York City: the .prj does not describe the coordinates" in (error.cause or error).message
    assert not (platform.lake().root / "taxi_zone_shapes").exists()


def test_a_shapefile_of_50_zones_is_refused_naming_what_is_missing(tmp_path):
    from taxi_assets.errors import ConversionError
    from taxi_assets.geo.shapes import read_shapefile_zip

    path = rezipped(tmp_path, records=50)
    with pytest.raises(ConversionError) as raised:
        read_shapefile_zip(path, "zones.zip")
    assert str(raised.value) == (
        "taxi zone shapes: zones.zip has 50 zones, not the taxi zones (TLC's file has a shape for each of "
        "LocationIDs 1..263, 263 records): no shape for 213 of LocationIDs 1..263: 51..263"
    )
