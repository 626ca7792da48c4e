"""Several sources in order: the first that has the month wins; a 404 moves on, nothing else does."""

from __future__ import annotations

import gzip

import pytest

from taxi_assets.source.resource import DEFAULT_SOURCE_URL, url_templates
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.harness import Platform
from taxi_tools.mirror import Fault, MirrorServer, generate
from taxi_tools.mirror.generator import relpath

SPEC = DATASETS["green"]


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    """CSV for 2021-01 only; Parquet for 2021-01 and 2021-02."""
    root = tmp_path_factory.mktemp("sources")
    generate(root, ["green"], ["2021-01"], rows=80, formats=("csv",))
    generate(root, ["green"], ["2021-01", "2021-02"], rows=90, formats=("parquet",))
    with MirrorServer(root) as server:
        csv = server.url_template
        yield server, f"{csv} {csv.replace('.csv.gz', '.parquet')}"


@pytest.fixture
def platform(two_sources, tmp_path, monkeypatch):
    server, templates = two_sources
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    server.clear_faults()
    return Platform(root=tmp_path, source_url=templates, zones_url=server.zones_url)


def raw_metadata(result):
    (event,) = result.asset_materializations_for_node("raw__green_raw")
    return {k: v.value for k, v in event.metadata.items()}


def test_the_first_source_that_has_the_month_wins_and_is_recorded(platform, two_sources):
    _, templates = two_sources
    first, second = url_templates(templates)
    january = platform.materialize(SPEC, "2021-01")
    md = raw_metadata(january)
    assert md["source_url_template"] == first and "not_at" not in md
    assert md["url"].endswith(relpath("green", "2021-01"))

    february = platform.materialize(SPEC, "2021-02")
    md = raw_metadata(february)
    assert md["source_url_template"] == second
    assert md["not_at"].endswith(relpath("green", "2021-02"))  # the CSV mirror's 404
    assert platform.lake().list("raw/green/month=2021-02") == ["raw/green/month=2021-02/green_tripdata_2021-02.parquet"]
    assert platform.warehouse().month_row_counts(SPEC) == {"2021-01": 80, "2021-02": 90}


def test_a_failure_other_than_404_does_not_move_to_the_next_source(platform, two_sources):
    server, _ = two_sources
    server.set_fault(relpath("green", "2021-01"), Fault("status", status=500))
    result = platform.materialize(SPEC, "2021-01", raise_on_error=False)
    assert not result.success
    assert platform.lake().list("raw/green/month=2021-01") == []
    assert "HTTP 500" in str(result.get_step_failure_events()[0].event_specific_data.error)


def test_no_source_has_the_month(platform):
    result = platform.materialize(SPEC, "2021-03", raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "green 2021-03 is not published at any source" in message
    assert message.count("green_tripdata_2021-03") == 2


def test_the_default_reaches_every_month():
    course, official = url_templates(DEFAULT_SOURCE_URL)
    assert "DataTalksClub" in course and official.startswith("https://d37ci6vzurychx.cloudfront.net/trip-data/")


# ---------------------------------------------------------------- a file the product cannot read


@pytest.fixture(scope="module")
def refused_first(tmp_path_factory):
    """fhvhv: the CSV source serves 2020-03 without its pickup time (no shape of the month
    lacks it) and does not have 2020-04; the Parquet source has both months."""
    root = tmp_path_factory.mktemp("refused")
    generate(root, ["fhvhv"], ["2020-03", "2020-04"], rows=70, formats=("parquet",))
    header = "hvfhs_license_num,dispatching_base_num,dropoff_datetime,PULocationID,DOLocationID,SR_Flag"
    csv = root / relpath("fhvhv", "2020-03")
    csv.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(csv, "wt") as f:
        f.write(header + "\n" + "HV0003,B02867,2020-03-01 00:14:57,245,251,\n" * 5)
    with MirrorServer(root) as server:
        first = server.url_template
        yield server, f"{first} {first.replace('.csv.gz', '.parquet')}", root


def test_a_file_the_lake_would_refuse_moves_to_the_next_source(refused_first, tmp_path, monkeypatch):
    server, templates, _ = refused_first
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    platform = Platform(root=tmp_path, source_url=templates, zones_url=server.zones_url)
    spec = DATASETS["fhvhv"]
    result = platform.materialize(spec, "2020-03")
    assert result.success
    (event,) = result.asset_materializations_for_node("raw__fhvhv_raw")
    md = {k: v.value for k, v in event.metadata.items()}
    assert md["source_url_template"] == url_templates(templates)[1] and "not_at" not in md
    ((url, why),) = md["skipped_sources"].items()
    assert url.endswith(relpath("fhvhv", "2020-03"))
    assert why.startswith("fhvhv 2020-03: required column(s) pickup_datetime missing")
    # raw is the Parquet file as published; the month loads from it.
    assert platform.lake().list("raw/fhvhv/month=2020-03") == ["raw/fhvhv/month=2020-03/fhvhv_tripdata_2020-03.parquet"]
    assert platform.warehouse().month_row_counts(spec) == {"2020-03": 70}


def test_a_refused_file_with_no_later_source_names_both(refused_first, tmp_path, monkeypatch):
    server, templates, root = refused_first
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    first = url_templates(templates)[0]
    # One more source after the refused CSV, which does not have the month.
    missing = first.replace("/{dataset}/", "/nowhere/{dataset}/")
    platform = Platform(root=tmp_path, source_url=f"{first} {missing}", zones_url=server.zones_url)
    result = platform.materialize(DATASETS["fhvhv"], "2020-03", raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "fhvhv 2020-03: no source serves a file that can be read" in message
    assert "required column(s) pickup_datetime missing" in message and "HTTP 404/403" in message
    assert platform.lake().list("raw/fhvhv/month=2020-03") == []
