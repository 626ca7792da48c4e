"""Nothing is published from a download whose completeness cannot be shown: a server on
127.0.0.1 that sends no Content-Length and closes the connection part-way (or at the end)
against a plain CSV, a Parquet file, the zone lookup and the zone shapes zip."""

from __future__ import annotations

import gzip
import re

import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets.keys import shapes_key, zones_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.reliability import State, failure, materialize
from taxi_tools.mirror import Fault, MirrorServer, generate
from taxi_tools.mirror.generator import relpath

SPEC = DATASETS["yellow"]
MONTH = "2021-01"
ROWS = 300
CSV = "yellow/yellow_tripdata_2021-01.csv"
PARQUET = relpath("yellow", MONTH, "parquet")
LOOKUP = " or ".join(f"key:{zones_key(layer).to_user_string()}" for layer in ("raw", "lake", "warehouse"))


def split_point(text: bytes) -> int:
    """Just after the line break nearest the middle."""
    return text.index(b"\n", len(text) // 2) + 1


@pytest.fixture(scope="module")
def plain_mirror(tmp_path_factory):
    """yellow 2021-01 as a plain (uncompressed) CSV, as gzip of two members (split at the
    line break split_point gives) and as Parquet; the zone lookup and shapes."""
    root = tmp_path_factory.mktemp("plain")
    generate(root, ["yellow"], [MONTH], rows=ROWS, formats=("csv", "parquet"))
    gz = root / relpath("yellow", MONTH)
    text = gzip.decompress(gz.read_bytes())
    (root / CSV).write_bytes(text)
    half = split_point(text)
    gz.write_bytes(gzip.compress(text[:half], mtime=0) + gzip.compress(text[half:], mtime=0))
    with MirrorServer(root) as server:
        yield server


@pytest.fixture
def served(plain_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    plain_mirror.clear_faults()
    plain_mirror.reset_counts()
    yield plain_mirror
    plain_mirror.clear_faults()


def platform_for(server: MirrorServer, root, suffix: str) -> Platform:
    return Platform(
        root=root,
        source_url=server.base_url + "/{dataset}/{dataset}_tripdata_{month}" + suffix,
        zones_url=server.zones_url,
        zone_shapes_url=server.zone_shapes_url,
    )


def cut_at(data: bytes, fraction: float, at_line_break: bool) -> int:
    """A byte count near `fraction` of data: just after a line break, or in the middle of a line."""
    n = data.rindex(b"\n", 0, int(len(data) * fraction)) + 1
    return n if at_line_break else n + 20


def assert_refused(result, step: str, pattern: str) -> None:
    got_step, cls, message = failure(result)
    assert (got_step, cls) == (step, "SourceError")
    assert re.fullmatch(pattern, message), message


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("at_line_break", [True, False], ids=["at_a_line_break", "mid_line"])
def test_a_plain_csv_cut_without_a_length_is_not_published(served, tmp_path, at_line_break):
    platform = platform_for(served, tmp_path, ".csv")
    assert materialize(platform, SPEC, MONTH).success
    good = State.of(platform, SPEC)
    assert good.warehouse.num_rows == ROWS

    size = (served.root / CSV).stat().st_size
    n = cut_at((served.root / CSV).read_bytes(), 0.7, at_line_break)
    served.reset_counts()  # the good run's GET
    served.set_fault(CSV, Fault("unsized", nbytes=n))  # GET only: HEAD still declares the length
    result = materialize(platform, SPEC, MONTH, body_attempts=2)
    url = re.escape(served.url(CSV))
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: connection closed after {n:,} of the {size:,} bytes a HEAD request announced "
        f"from {url} \\(after 2 attempts\\)",
    )
    good.assert_same(State.of(platform, SPEC))
    assert served.request_count(CSV, "GET") == 2  # a cut is worth another attempt


def test_a_plain_csv_with_no_length_anywhere_is_refused(served, tmp_path):
    # Whole, but nothing can show it: neither the GET nor a HEAD declares a length.
    platform = platform_for(served, tmp_path, ".csv")
    served.set_fault(CSV, Fault("unsized", methods=("GET", "HEAD")))
    result = materialize(platform, SPEC, MONTH)
    size = (served.root / CSV).stat().st_size
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: {re.escape(served.url(CSV))} was sent without a length \\(no Content-Length, not "
        f"chunked\\) and a plain file has no end marker, so the {size:,} bytes received cannot be shown to be "
        "the whole file; nothing is published. Serve it with a Content-Length, or gzip it \\(its trailer "
        "proves the end\\)",
    )
    assert platform.lake().list("raw/yellow") == [] and platform.lake().list("yellow") == []
    assert served.request_count(CSV, "GET") == 1  # not retried: another attempt cannot tell more


def test_a_plain_csv_without_a_length_loads_when_a_head_declares_it(served, tmp_path):
    platform = platform_for(served, tmp_path, ".csv")
    served.set_fault(CSV, Fault("unsized"))
    assert materialize(platform, SPEC, MONTH).success
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: ROWS}
    # The HEAD asks for the representation the GET got (a compressed one has another length).
    heads = [headers.get("Accept-Encoding") for method, path, headers in served.requests if method == "HEAD"]
    assert heads == ["identity"]


def test_a_parquet_file_missing_its_middle_is_not_published(served, tmp_path):
    # The footer is intact and ends in PAR1, but the column chunks it lists are not all there.
    platform = platform_for(served, tmp_path, ".parquet")
    data = (served.root / PARQUET).read_bytes()
    footer = pq.read_metadata(served.root / PARQUET).serialized_size + 8
    spliced = data[: len(data) // 2] + data[-footer:]
    served.set_fault(PARQUET, Fault("body", body=spliced))
    result = materialize(platform, SPEC, MONTH)
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: Parquet file from {re.escape(served.url(PARQUET))} is incomplete: row group 0 column "
        f"\\w+ lies outside the file's {len(spliced):,} bytes",
    )
    assert platform.lake().list("raw/yellow") == []


def test_a_parquet_file_cut_without_a_length_is_not_published(served, tmp_path):
    platform = platform_for(served, tmp_path, ".parquet")
    served.set_fault(PARQUET, Fault("unsized", nbytes=(served.root / PARQUET).stat().st_size * 7 // 10))
    result = materialize(platform, SPEC, MONTH)
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: Parquet file from {re.escape(served.url(PARQUET))} has no footer \\(truncated\\?\\)",
    )
    assert platform.lake().list("raw/yellow") == []


def test_a_zone_lookup_cut_without_a_length_keeps_the_published_zones(served, tmp_path):
    platform = platform_for(served, tmp_path, ".csv")
    assert platform.materialize_selection(LOOKUP).success
    lookup = "misc/taxi_zone_lookup.csv"
    data = (served.root / lookup).read_bytes()
    n = cut_at(data, 0.7, at_line_break=True)
    served.set_fault(lookup, Fault("unsized", nbytes=n))
    result = platform.materialize_selection(LOOKUP, raise_on_error=False)
    assert_refused(
        result,
        "raw__taxi_zone_lookup_raw",
        f"taxi zones: connection closed after {n:,} of the {len(data):,} bytes a HEAD request announced "
        f"from {re.escape(served.zones_url)} \\(after 3 attempts\\)",
    )
    kept = platform.warehouse().query("SELECT count(*) AS n FROM taxi_zone_lookup")
    assert kept.to_pylist() == [{"n": 265}]


def test_a_zone_shapes_zip_cut_without_a_length_is_not_published(served, tmp_path):
    platform = platform_for(served, tmp_path, ".csv")
    shapes = "misc/taxi_zones.zip"
    served.set_fault(shapes, Fault("unsized", nbytes=(served.root / shapes).stat().st_size * 7 // 10))
    selection = " or ".join(f"key:{shapes_key(layer).to_user_string()}" for layer in ("raw", "lake"))
    result = platform.materialize_selection(selection, raise_on_error=False)
    assert_refused(
        result,
        "raw__taxi_zone_shapes_raw",
        f"taxi zone shapes: {re.escape(served.zone_shapes_url)} is not a zip file: .*",
    )
    assert not (platform.lake().root / "raw" / "taxi_zone_shapes").exists()


def test_a_gzip_file_of_two_members_cut_between_them_without_a_length_is_not_published(served, tmp_path):
    # The first member ends with a valid trailer: cut there, the file looks whole to gzip;
    # the HEAD request's length shows the cut.
    platform = platform_for(served, tmp_path, ".csv.gz")
    gz = relpath("yellow", MONTH)
    data = (served.root / gz).read_bytes()
    text = (served.root / CSV).read_bytes()
    first = len(data) - len(gzip.compress(text[split_point(text) :], mtime=0))
    assert gzip.decompress(data[:first]) == text[: split_point(text)]
    served.set_fault(gz, Fault("unsized", nbytes=first))
    result = materialize(platform, SPEC, MONTH, body_attempts=2)
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: connection closed after {first:,} of the {len(data):,} bytes a HEAD request announced "
        f"from {re.escape(served.url(gz))} \\(after 2 attempts\\)",
    )
    assert platform.lake().list("raw/yellow") == []


def test_a_gzip_file_without_any_length_loads_on_its_trailer(served, tmp_path):
    platform = platform_for(served, tmp_path, ".csv.gz")
    served.set_fault(relpath("yellow", MONTH), Fault("unsized", methods=("GET", "HEAD")))
    assert materialize(platform, SPEC, MONTH).success
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: ROWS}


def test_a_chunked_plain_csv_ended_early_with_a_proper_last_chunk_is_not_published(served, tmp_path):
    # A proxy whose upstream broke off may still close the chunked body properly.
    platform = platform_for(served, tmp_path, ".csv")
    data = (served.root / CSV).read_bytes()
    n = cut_at(data, 0.7, at_line_break=True)
    served.set_fault(CSV, Fault("chunked", nbytes=n))
    result = materialize(platform, SPEC, MONTH, body_attempts=2)
    assert_refused(
        result,
        "raw__yellow_raw",
        f"yellow 2021-01: connection closed after {n:,} of the {len(data):,} bytes a HEAD request announced "
        f"from {re.escape(served.url(CSV))} \\(after 2 attempts\\)",
    )
    assert platform.lake().list("raw/yellow") == []


@pytest.mark.parametrize("head_declares", [True, False], ids=["head_declares_the_length", "no_length_anywhere"])
def test_a_whole_chunked_plain_csv_loads(served, tmp_path, head_declares):
    platform = platform_for(served, tmp_path, ".csv")
    served.set_fault(CSV, Fault("chunked", methods=("GET",) if head_declares else ("GET", "HEAD")))
    assert materialize(platform, SPEC, MONTH).success
    assert platform.warehouse().month_row_counts(SPEC) == {MONTH: ROWS}
