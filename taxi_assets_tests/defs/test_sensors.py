"""The source sensors against the real mirror over HTTP, evaluated with build_sensor_context.

A per-test mirror (yellow 2021-01..02, small files) that the tests change the way
the source does: a new month appears, a month is rewritten (new size and mtime,
so a new ETag).
"""

import json

import dagster as dg
import pytest
import requests

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.sensors.common import WatchLimits
from taxi_assets.defs.sensors.new_months import build_new_month_sensor
from taxi_assets.defs.sensors.republished import build_republished_sensor
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_tools.mirror import MirrorServer, generate
from taxi_tools.mirror.generator import relpath

YELLOW = DATASETS["yellow"]
ROWS = 40


@pytest.fixture
def source_mirror(tmp_path):
    root = tmp_path / "mirror"
    generate(root, ["yellow"], ["2021-01", "2021-02"], rows=ROWS)
    with MirrorServer(root) as server:
        yield server


def tick(sensor, server, instance, cursor):
    """One evaluation, as the daemon does it; returns the result and the HEADs it sent."""
    server.reset_counts()
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"source": TaxiSource(url_template=server.url_template, backoff_s=0.01)},
    )
    result = sensor(context)
    heads = [path for method, path, _ in server.requests if method == "HEAD"]
    assert all(method == "HEAD" for method, _, _ in server.requests), "a sensor only probes, never downloads"
    return result, heads


def head_headers(server, month):
    return requests.head(server.url(relpath("yellow", month)), timeout=10).headers


def materialize_raw(server, instance, month, tmp_path, monkeypatch):
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    raw = build_dataset_assets(YELLOW, "duckdb")[0]
    result = dg.materialize(
        [raw],
        partition_key=f"{month}-01",
        instance=instance,
        resources={
            "source": TaxiSource(url_template=server.url_template, backoff_s=0.01),
            "lake_io_manager": LakeIOManager(lake_uri=str(tmp_path / "lake"), staging_dir=str(tmp_path / "staging")),
        },
    )
    assert result.success


def test_new_month_sensor_requests_a_new_month_once(source_mirror):
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_new_month_sensor(YELLOW, WatchLimits(start_month="2020-12"))

    # First tick: nothing known yet, walks from the start month and finds the published months.
    first, heads = tick(sensor, source_mirror, instance, None)
    assert [r.partition_key for r in first.run_requests] == ["2021-01-01", "2021-02-01"]
    # 2020-12 (404), 2021-01, 2021-02, then three unpublished months in a row end the walk.
    assert heads == [relpath("yellow", m) for m in ("2020-12", "2021-01", "2021-02", "2021-03", "2021-04", "2021-05")]

    # Nothing changes: a skip that says what was probed, and no repeat of the two months.
    second, heads = tick(sensor, source_mirror, instance, first.cursor)
    assert second.run_requests == []
    assert second.skip_reason.skip_message == (
        "no new yellow month: 2021-03, 2021-04, 2021-05 not published yet (HEAD 404); "
        "below the latest, still not published: 2020-12"
    )
    # The lookahead after the latest month, and the unpublished month below it (it may come late).
    assert heads == [relpath("yellow", m) for m in ("2021-03", "2021-04", "2021-05", "2020-12")]

    # A new month appears: exactly one request, for that month, keyed by its version.
    generate(source_mirror.root, ["yellow"], ["2021-03"], rows=ROWS)
    third, heads = tick(sensor, source_mirror, instance, second.cursor)
    (request,) = third.run_requests
    etag = head_headers(source_mirror, "2021-03")["ETag"]
    assert request.partition_key == "2021-03-01"
    assert request.run_key == f"2021-03:{etag}"
    assert request.tags["taxi/trigger"] == "new_month"
    assert etag in request.tags["taxi/source_version"]
    assert json.loads(third.cursor)["requested"]["2021-03"] == etag

    # The next tick does not request it again.
    fourth, _ = tick(sensor, source_mirror, instance, third.cursor)
    assert fourth.run_requests == []
    assert "2021-04, 2021-05, 2021-06 not published" in fourth.skip_reason.skip_message


def test_new_month_sensor_starts_after_the_materialized_months(source_mirror, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    materialize_raw(source_mirror, instance, "2021-01", tmp_path, monkeypatch)
    sensor = build_new_month_sensor(YELLOW, WatchLimits(start_month="2019-01"))
    result, heads = tick(sensor, source_mirror, instance, None)
    assert [r.partition_key for r in result.run_requests] == ["2021-02-01"]
    assert heads[0] == relpath("yellow", "2021-02")


def test_new_month_sensor_bounds_probes_and_runs_per_tick(source_mirror):
    generate(source_mirror.root, ["yellow"], ["2021-03", "2021-04", "2021-05"], rows=ROWS)
    instance = dg.DagsterInstance.ephemeral()
    limits = WatchLimits(start_month="2020-01", max_probes=6, max_runs=2)
    sensor = build_new_month_sensor(YELLOW, limits)

    # 2020-01..2020-06 unpublished: the probe budget ends the tick, the cursor remembers where.
    first, heads = tick(sensor, source_mirror, instance, None)
    assert first.run_requests == [] and len(heads) == 6
    assert json.loads(first.cursor)["scan_from"] == "2020-07"
    assert "the next tick goes on from 2020-07" in first.skip_reason.skip_message

    second, heads = tick(sensor, source_mirror, instance, first.cursor)
    assert second.run_requests == [] and heads[0] == relpath("yellow", "2020-07")
    third, _ = tick(sensor, source_mirror, instance, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2021-01-01", "2021-02-01"]  # max_runs
    fourth, _ = tick(sensor, source_mirror, instance, third.cursor)
    assert [r.partition_key for r in fourth.run_requests] == ["2021-03-01", "2021-04-01"]
    fifth, _ = tick(sensor, source_mirror, instance, fourth.cursor)
    assert [r.partition_key for r in fifth.run_requests] == ["2021-05-01"]


def test_new_month_sensor_picks_up_a_month_published_late(tmp_path):
    """2021-02 is missing (404) while 2021-03 is there: the sensor keeps asking for 2021-02
    and requests it once it appears."""
    root = tmp_path / "mirror"
    generate(root, ["yellow"], ["2021-01", "2021-03"], rows=ROWS)
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_new_month_sensor(YELLOW, WatchLimits(start_month="2021-01"))
    with MirrorServer(root) as server:
        first, _ = tick(sensor, server, instance, None)
        assert [r.partition_key for r in first.run_requests] == ["2021-01-01", "2021-03-01"]

        second, heads = tick(sensor, server, instance, first.cursor)
        assert second.run_requests == []
        assert relpath("yellow", "2021-02") in heads
        assert second.skip_reason.skip_message.endswith("below the latest, still not published: 2021-02")

        generate(root, ["yellow"], ["2021-02"], rows=ROWS)  # published late
        third, _ = tick(sensor, server, instance, second.cursor)
        (request,) = third.run_requests
        assert request.partition_key == "2021-02-01"
        assert request.run_key == f"2021-02:{head_headers(server, '2021-02')['ETag']}"
        assert request.tags["taxi/trigger"] == "new_month"

        fourth, heads = tick(sensor, server, instance, third.cursor)
        assert fourth.run_requests == []
        assert relpath("yellow", "2021-02") not in heads


def test_new_month_sensor_probes_late_months_a_few_per_tick_in_turn(tmp_path):
    """Unknown months below the latest are probed `max_late_probes` per tick, oldest first,
    in turn, no further back than `lookback` months."""
    root = tmp_path / "mirror"
    generate(root, ["yellow"], ["2021-05"], rows=ROWS)
    instance = dg.DagsterInstance.ephemeral()
    limits = WatchLimits(start_month="2019-01", lookback=12, max_late_probes=2)
    sensor = build_new_month_sensor(YELLOW, limits)
    cursor = json.dumps({"requested": {"2021-12": "a-version"}})
    late_heads = []
    with MirrorServer(root) as server:
        for _ in range(3):
            result, heads = tick(sensor, server, instance, cursor)
            cursor = result.cursor
            after = [relpath("yellow", m) for m in ("2022-01", "2022-02", "2022-03")]
            assert heads[: limits.lookahead] == after
            late_heads.append(heads[limits.lookahead :])
        assert [r.partition_key for r in result.run_requests] == ["2021-05-01"]
    assert late_heads == [
        [relpath("yellow", m) for m in ("2020-12", "2021-01")],
        [relpath("yellow", m) for m in ("2021-02", "2021-03")],
        [relpath("yellow", m) for m in ("2021-04", "2021-05")],
    ]


def test_republished_sensor_requests_a_rematerialization_once(source_mirror, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_republished_sensor(YELLOW)
    nothing, heads = tick(sensor, source_mirror, instance, None)
    assert nothing.skip_reason.skip_message == "no month of raw/yellow_raw is materialized yet: nothing to compare"
    assert heads == []

    materialize_raw(source_mirror, instance, "2021-01", tmp_path, monkeypatch)
    materialize_raw(source_mirror, instance, "2021-02", tmp_path, monkeypatch)
    old = head_headers(source_mirror, "2021-01")

    unchanged, heads = tick(sensor, source_mirror, instance, None)
    assert unchanged.run_requests == []
    assert unchanged.skip_reason.skip_message == "yellow: 2 of 2 month(s) (2021-01..2021-02) unchanged at the source"
    assert sorted(heads) == [relpath("yellow", "2021-01"), relpath("yellow", "2021-02")]

    # The source re-publishes 2021-01 (other bytes, so a new size, mtime and ETag).
    generate(source_mirror.root, ["yellow"], ["2021-01"], rows=ROWS + 7)
    new = head_headers(source_mirror, "2021-01")
    assert new["ETag"] != old["ETag"]
    republished, _ = tick(sensor, source_mirror, instance, unchanged.cursor)
    (request,) = republished.run_requests
    assert request.partition_key == "2021-01-01"
    assert request.run_key == f"2021-01:{new['ETag']}"
    assert request.tags["taxi/trigger"] == "republished"
    assert old["ETag"] in request.tags["taxi/previous_version"]
    assert f"content_length={old['Content-Length']}" in request.tags["taxi/previous_version"]
    assert new["ETag"] in request.tags["taxi/new_version"]
    assert f"content_length={new['Content-Length']}" in request.tags["taxi/new_version"]

    # Not repeated while the run has not landed yet...
    again, _ = tick(sensor, source_mirror, instance, republished.cursor)
    assert again.run_requests == []
    assert "2021-01 re-publication already requested" in again.skip_reason.skip_message

    # ...nor once it has: the new version is what raw now records.
    materialize_raw(source_mirror, instance, "2021-01", tmp_path, monkeypatch)
    after, _ = tick(sensor, source_mirror, instance, again.cursor)
    assert after.run_requests == []
    assert after.skip_reason.skip_message.startswith("yellow: 2 of 2 month(s)")


def test_republished_sensor_probes_a_bounded_rotating_batch(source_mirror, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    for month in ("2021-01", "2021-02"):
        materialize_raw(source_mirror, instance, month, tmp_path, monkeypatch)
    sensor = build_republished_sensor(YELLOW, WatchLimits(max_probes=1))
    first, heads = tick(sensor, source_mirror, instance, None)
    second, heads2 = tick(sensor, source_mirror, instance, first.cursor)
    assert heads == [relpath("yellow", "2021-01")]
    assert heads2 == [relpath("yellow", "2021-02")]


def test_each_feeds_new_month_sensor_finds_its_first_demo_month_on_its_first_tick(tmp_path, monkeypatch):
    """`make demo DEMO_MONTHS=...`: green starts in 2013-08, fhvhv in 2019-02; each feed's sensor
    starts at its own first month the mirror serves, not at the earliest of all."""
    from taxi_assets.defs.resources import watch_limits
    from taxi_tools.demo import sensor_start_months

    months = ["2009-03", "2014-08", "2019-02"]
    root = tmp_path / "mirror"
    generate(root, list(DATASETS), months, rows=ROWS)
    monkeypatch.setenv("TAXI_SENSOR_START_MONTH", sensor_start_months(list(DATASETS), months))
    limits = watch_limits()
    first = {"yellow": "2009-03", "green": "2014-08", "fhv": "2019-02", "fhvhv": "2019-02"}
    with MirrorServer(root) as server, dg.instance_for_test() as instance:
        for name, month in first.items():
            result, _ = tick(build_new_month_sensor(DATASETS[name], limits), server, instance, None)
            assert [r.partition_key for r in result.run_requests][:1] == [f"{month}-01"], (name, result.skip_message)


def test_a_start_month_before_a_feeds_first_month_starts_at_its_first_month(monkeypatch):
    from taxi_assets.defs.resources import watch_limits

    monkeypatch.setenv("TAXI_SENSOR_START_MONTH", "2009-03")
    assert watch_limits().start_for(DATASETS["fhvhv"]) == "2019-02"
    monkeypatch.setenv("TAXI_SENSOR_START_MONTH", "2021-01, green=2014-08")
    limits = watch_limits()
    assert (limits.start_for(DATASETS["green"]), limits.start_for(DATASETS["yellow"])) == ("2014-08", "2021-01")
    monkeypatch.setenv("TAXI_SENSOR_START_MONTH", "purple=2014-08")
    with pytest.raises(ValueError, match="unknown dataset 'purple'"):
        watch_limits()
