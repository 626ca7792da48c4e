"""Several sources in order: the first that has the month wins; a 404 moves on, nothing else does."""

from __future__ import annotations

import pytest

from taxi_assets.datasets import DATASETS
from taxi_assets.mirror import Fault, MirrorServer, generate
from taxi_assets.mirror.generator import relpath
from taxi_assets.source.resource import DEFAULT_SOURCE_URL, url_templates
from taxi_assets_tests.conftest import Platform

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
