"""The taxi zone lookup: raw -> lake -> warehouse over the real mirror, NA/NV kept as
text, and the zone check (in Arrow) stopping a broken file before it is published."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets.keys import zones_key
from taxi_assets_tests.harness import TEST_DATA, Platform
from taxi_tools.mirror import MirrorServer

ZONES_CSV = TEST_DATA / "taxi_zone_lookup.csv"
LAKE_FILE = Path("taxi_zone_lookup") / "part-0.parquet"
# The lookup's three layers (group:zones also holds the zone shapes).
LOOKUP = " or ".join(f"key:{zones_key(layer).to_user_string()}" for layer in ("raw", "lake", "warehouse"))


def csv_rows(path: Path) -> list[dict]:
    """The zones as the stdlib reads them: every field text, nothing turned into null."""
    with open(path, newline="") as f:
        return [{**row, "LocationID": int(row["LocationID"])} for row in csv.DictReader(f)]


def test_zones_land_in_every_layer_with_na_and_nv_as_text(platform, mirror_root):
    result = platform.materialize_selection("group:zones")
    assert result.success

    source = mirror_root / "misc" / "taxi_zone_lookup.csv"
    raw = platform.lake().root / "raw" / "taxi_zone_lookup" / "taxi_zone_lookup.csv"
    assert raw.read_bytes() == source.read_bytes()

    expected = csv_rows(source)
    assert len(expected) == 265
    lake = pq.read_table(platform.lake().root / LAKE_FILE)
    assert lake.schema.field("LocationID").type == "int32"
    assert lake.to_pylist() == expected
    warehouse = platform.warehouse().query("SELECT * FROM taxi_zone_lookup ORDER BY LocationID")
    assert warehouse.to_pylist() == expected

    by_id = {row["LocationID"]: row for row in warehouse.to_pylist()}
    assert (by_id[264]["Zone"], by_id[265]["Zone"]) == ("NV", "NA")
    assert by_id[265]["service_zone"] == "N/A"
    nulls = platform.warehouse().query(
        "SELECT count(*) AS n FROM taxi_zone_lookup "
        "WHERE LocationID IS NULL OR Borough IS NULL OR Zone IS NULL OR service_zone IS NULL"
    )
    assert nulls.to_pylist() == [{"n": 0}]

    lake_md = result.asset_materializations_for_node("lake__taxi_zone_lookup_lake")[0].metadata
    assert (lake_md["dagster/row_count"].value, lake_md["boroughs"].value) == (265, 7)
    wh_md = result.asset_materializations_for_node("warehouse__taxi_zone_lookup")[0].metadata
    assert wh_md["dagster/row_count"].value == 265


def test_zone_check_fails_on_a_missing_column_and_keeps_the_published_zones(tmp_path, monkeypatch):
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    served = tmp_path / "mirror" / "misc" / "taxi_zone_lookup.csv"
    served.parent.mkdir(parents=True)
    served.write_bytes(ZONES_CSV.read_bytes())
    with MirrorServer(tmp_path / "mirror") as mirror:
        platform = Platform(tmp_path / "platform", source_url=mirror.url_template, zones_url=mirror.zones_url)
        assert platform.materialize_selection(LOOKUP).success
        lake_file = platform.lake().root / LAKE_FILE
        published = lake_file.read_bytes()

        # The publisher drops a column.
        with open(ZONES_CSV, newline="") as f:
            rows = [row[:3] for row in csv.reader(f)]
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
        served.write_text(out.getvalue())

        result = platform.materialize_selection(LOOKUP, raise_on_error=False)

    assert not result.success
    failure = result.failure_data_for_node("lake__taxi_zone_lookup_lake")
    error = failure.error.cause
    assert error.cls_name == "ConversionError"
    assert "missing column service_zone" in error.message
    assert str(platform.lake().root / "raw" / "taxi_zone_lookup" / "taxi_zone_lookup.csv") in error.message
    assert not list((tmp_path / "staging").glob("stage-*/*")), "nothing left staged"
    # The warehouse step never ran; the lake and the warehouse keep the last good zones.
    assert zones_key("warehouse") not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert lake_file.read_bytes() == published
    assert not list(lake_file.parent.glob(".*.tmp"))
    kept = platform.warehouse().query("SELECT count(*) AS n, count(service_zone) AS s FROM taxi_zone_lookup")
    assert kept.to_pylist() == [{"n": 265, "s": 265}]


def test_zone_problems_name_nulls_range_and_duplicates():
    import pyarrow as pa

    from taxi_assets.transform.zones import ZONES_SCHEMA, read_zones_csv, zone_problems

    good = read_zones_csv(ZONES_CSV, "taxi_zone_lookup.csv").table
    assert zone_problems(good.cast(ZONES_SCHEMA)) == []
    bad = pa.table({"LocationID": [0, 2, 2], "Borough": ["a", None, "b"], "Zone": ["z", "z", "z"]})
    assert zone_problems(bad) == [
        "missing column service_zone",
        "1 empty Borough",
        "LocationID outside 1..265: 0",
        "LocationID not unique: 2",
        "264 of the 265 known LocationIDs missing (3 rows): 1, 3..265",
    ]


def zone_rows() -> list[list[str]]:
    with open(ZONES_CSV, newline="") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
    path.write_text(out.getvalue())


def edited(edit: Callable[[list[list[str]]], None]) -> Callable[[list[list[str]]], list[list[str]]]:
    def apply(rows: list[list[str]]) -> list[list[str]]:
        edit(rows)
        return rows

    return apply


def _set(rows, location_id: int, column: int, value: str) -> None:
    rows[location_id][column] = value


@pytest.fixture
def zones_platform(tmp_path, monkeypatch):
    """A mirror serving the real lookup, and a platform that has published it once."""
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    served = tmp_path / "mirror" / "misc" / "taxi_zone_lookup.csv"
    served.parent.mkdir(parents=True)
    served.write_bytes(ZONES_CSV.read_bytes())
    with MirrorServer(tmp_path / "mirror") as mirror:
        platform = Platform(tmp_path / "platform", source_url=mirror.url_template, zones_url=mirror.zones_url)
        assert platform.materialize_selection(LOOKUP).success
        yield platform, served


PLAUSIBILITY_CASES = {
    # id: (how the publisher's file changes, what the error says)
    "ten_rows": (lambda rows: rows[:11], "255 of the 265 known LocationIDs missing (10 rows): 11..265"),
    "one_zone_missing": (lambda rows: rows[:57] + rows[58:], "1 of the 265 known LocationIDs missing (264 rows): 57"),
    "unknown_location_id": (lambda rows: [*rows, ["9999", "Queens", "Nowhere", "Boro Zone"]], "LocationID outside 1..265: 9999"),
    "repeated_row": (lambda rows: [*rows, rows[5]], "LocationID not unique: 5"),
    "empty_zone": (edited(lambda rows: _set(rows, 100, 2, "")), "1 empty Zone"),
    "blank_borough": (edited(lambda rows: _set(rows, 7, 1, "   ")), "1 empty Borough"),
    "location_id_not_a_number": (edited(lambda rows: _set(rows, 3, 0, "3a")), "LocationID not a whole number: '3a'"),
}  # fmt: skip


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("edit,problem", PLAUSIBILITY_CASES.values(), ids=PLAUSIBILITY_CASES.keys())
def test_an_implausible_zone_table_fails_naming_the_file_and_the_warehouse_keeps_its_zones(
    zones_platform, edit, problem
):
    platform, served = zones_platform
    lake_file = platform.lake().root / LAKE_FILE
    published = lake_file.read_bytes()
    before = platform.warehouse().query("SELECT * FROM taxi_zone_lookup ORDER BY LocationID")
    write_rows(served, edit(zone_rows()))

    result = platform.materialize_selection(LOOKUP, raise_on_error=False)

    assert not result.success
    error = result.failure_data_for_node("lake__taxi_zone_lookup_lake").error.cause
    assert error.cls_name == "ConversionError"
    raw = platform.lake().root / "raw" / "taxi_zone_lookup" / "taxi_zone_lookup.csv"
    assert re.search(rf"ConversionError: taxi zones: {re.escape(str(raw))}\b.*{re.escape(problem)}", error.message), (
        error.message
    )
    assert lake_file.read_bytes() == published
    after = platform.warehouse().query("SELECT * FROM taxi_zone_lookup ORDER BY LocationID")
    assert after.equals(before) and after.num_rows == 265


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("quoted", [True, False], ids=["quoted_values", "plain_values"])
def test_a_zone_csv_with_blanks_after_the_commas_is_read(zones_platform, quoted):
    platform, served = zones_platform
    expected = csv_rows(ZONES_CSV)
    rows = zone_rows()
    header = ", ".join(rows[0])
    body = [", ".join(f'"{v}"' if i else v for i, v in enumerate(r)) if quoted else ", ".join(r) for r in rows[1:]]
    served.write_text("\n".join([header, *body]) + "\n")

    result = platform.materialize_selection(LOOKUP, raise_on_error=False)

    assert result.success
    assert pq.read_table(platform.lake().root / LAKE_FILE).to_pylist() == expected
    assert platform.warehouse().query("SELECT * FROM taxi_zone_lookup ORDER BY LocationID").to_pylist() == expected


def test_a_zone_csv_sent_gzip_encoded_is_read(zones_platform):
    import gzip

    platform, served = zones_platform
    served.write_bytes(gzip.compress(ZONES_CSV.read_bytes()))

    assert platform.materialize_selection(LOOKUP).success
    assert pq.read_table(platform.lake().root / LAKE_FILE).to_pylist() == csv_rows(ZONES_CSV)
