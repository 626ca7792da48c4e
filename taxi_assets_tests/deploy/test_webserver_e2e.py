"""End to end as a service: the real code server, webserver and daemon on the production
instance (PostgreSQL, run queue, pools, run retries), the mirror as the source, driven
through GraphQL and looked at in headless Chromium.

The tests share one deployment (module fixture) and run in file order: backfill, UI,
then the sensor test, which adds a fourth month.
"""

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from taxi_assets.analytics.month_metadata import MAP_METADATA_KEY
from taxi_assets.defs.assets.keys import lake_key, mart_key, raw_key, warehouse_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets_tests.deploy.graphql import TaxiGraphQL
from taxi_assets_tests.deploy.harness import PgDatabase, fresh_database, install_instance
from taxi_assets_tests.deploy.services import LOCATION, Deployment, wait_for
from taxi_assets_tests.harness import Platform
from taxi_assets_tests.helpers import csv_data_rows
from taxi_tools.bench.browser import launch_chromium
from taxi_tools.mirror import Fault, MirrorServer, generate, relpath

MART_TABLE = "trips_by_zone"  # the dbt mart (taxi_assets/analytics/dbt_project/models/marts)
SPEC = DATASETS["yellow"]
MART = mart_key("trips_by_zone")
KEYS = [raw_key(SPEC), lake_key(SPEC), warehouse_key(SPEC)]
MONTHS = ["2021-01", "2021-02", "2021-03"]
NEW_MONTH = "2021-04"
SENSOR = f"{SPEC.name}_new_month_sensor"
RETRIED_MONTH = "2021-02"  # its first download is served broken: a run retry must fix it
BACKFILL_TIMEOUT_S = 240
RUN_TIMEOUT_S = 120
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
# Screenshots a person looks at after the run (git-ignored).
ARTIFACTS = Path(os.environ.get("TAXI_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))

# dagster-graphql's client calls gql in a way gql 4 deprecates; not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")


@dataclass
class E2E:
    root: Path
    mirror: MirrorServer
    mirror_root: Path
    deployment: Deployment
    client: TaxiGraphQL
    db: PgDatabase
    warehouse_file: Path
    backfill_id: str = ""
    backfill_status: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    def instance(self) -> dg.DagsterInstance:
        """The same instance the services use, opened from this process."""
        return dg.DagsterInstance.from_config(str(self.deployment.home))

    def diagnostics(self) -> str:
        return self.deployment.tails()


def _trickle(mirror: MirrorServer, root: Path, month: str) -> None:
    size = (root / relpath(SPEC.name, month)).stat().st_size
    # About 3 s per download, whatever the generated file's size.
    mirror.set_fault(relpath(SPEC.name, month), Fault(kind="trickle", nbytes=max(1, size // 12), delay=0.25))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, pg_server_url) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("e2e")
    mirror_root = root / "mirror"
    generate(mirror_root, [SPEC.name], MONTHS)
    warehouse_file = root / "warehouse.duckdb"
    # One download at a time per host in this deployment (production: 2).
    home = install_instance(root / "dagster_home", {"concurrency": {"pools": {"default_limit": 1}}})
    with (
        fresh_database(pg_server_url) as db,
        MirrorServer(mirror_root) as mirror,
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in db.dagster_env().items():
            env.setenv(name, value)  # for opening the instance from this process
        mirror.set_fault(relpath(SPEC.name, RETRIED_MONTH), Fault(kind="truncated_gzip", times=1))
        deployment = Deployment(
            home=home,
            logs=root / "logs",
            env={
                **db.dagster_env(),
                "TAXI_SOURCE_URL": mirror.url_template,
                "TAXI_LAKE_URI": str(root / "lake"),
                "TAXI_WAREHOUSE_URI": f"duckdb:///{warehouse_file}",
                "TAXI_STAGING_DIR": str(root / "staging"),
            },
        )
        figures: dict[str, float] = {}
        try:
            started = time.monotonic()
            deployment.start()
            client = TaxiGraphQL("127.0.0.1", deployment.webserver_port)
            status = wait_for(
                "the code location to load", lambda: client.location_status(LOCATION), 120,
                on_timeout=deployment.tails,
            )  # fmt: skip
            assert status == "LOADED", f"{status}\n{deployment.tails()}"
            e2e = E2E(root, mirror, mirror_root, deployment, client, db, warehouse_file, figures=figures)
            e2e.figures["services_up_s"] = time.monotonic() - started

            started = time.monotonic()
            e2e.backfill_id = client.launch_backfill(
                [partition_key(m) for m in MONTHS], KEYS, title="e2e: three months of yellow"
            )
            e2e.backfill_status = wait_for(
                f"backfill {e2e.backfill_id} to finish",
                lambda: (s := client.backfill_status(e2e.backfill_id)) in TERMINAL_BACKFILL and s,
                BACKFILL_TIMEOUT_S,
                every=1.0,
                on_timeout=deployment.tails,
            )
            e2e.figures["backfill_s"] = time.monotonic() - started
            yield e2e
        finally:
            deployment.stop()
            _write_figures(root, figures)


def _write_figures(root: Path, figures: dict[str, float]) -> None:
    (root / "figures.json").write_text(json.dumps({k: round(v, 2) for k, v in figures.items()}, indent=2))
    print(f"\ne2e figures ({root / 'figures.json'}): {figures}")


def _mirror_vs_warehouse(e2e: E2E, months: list[str]) -> list[tuple]:
    """Rows in one and not the other (as multisets), per month: the mirror's CSV read by
    DuckDB's own reader against the warehouse table. Empty when they hold the same trips."""
    mirror_rows = " UNION ALL ".join(
        f"""SELECT CAST(tpep_pickup_datetime AS TIMESTAMP), CAST(tpep_dropoff_datetime AS TIMESTAMP),
                   TRY_CAST(PULocationID AS INTEGER), TRY_CAST(DOLocationID AS INTEGER),
                   CAST(total_amount AS DOUBLE), '{month}'
            FROM read_csv('{e2e.mirror_root / relpath(SPEC.name, month)}', all_varchar = true)"""
        for month in months
    )
    warehouse_rows = f"""
        SELECT CAST(tpep_pickup_datetime AS TIMESTAMP), CAST(tpep_dropoff_datetime AS TIMESTAMP),
               CAST(PULocationID AS INTEGER), CAST(DOLocationID AS INTEGER),
               CAST(total_amount AS DOUBLE), strftime(source_month, '%Y-%m')
        FROM {SPEC.table}"""
    with contextlib.closing(duckdb.connect(str(e2e.warehouse_file), read_only=True)) as conn:
        only_mirror = f"({mirror_rows}) EXCEPT ALL ({warehouse_rows})"
        only_warehouse = f"({warehouse_rows}) EXCEPT ALL ({mirror_rows})"
        return conn.execute(f"({only_mirror}) UNION ALL ({only_warehouse})").fetchall()


def _month_counts(e2e: E2E) -> dict[str, int]:
    with contextlib.closing(duckdb.connect(str(e2e.warehouse_file), read_only=True)) as conn:
        rows = conn.execute(f"SELECT strftime(source_month, '%Y-%m'), count(*) FROM {SPEC.table} GROUP BY 1").fetchall()
    return dict(rows)


def _step_windows(instance: dg.DagsterInstance, run_ids: list[str], step_key: str) -> list[tuple[float, float]]:
    """(start, end) timestamps of `step_key` in each run that ran it."""
    windows = []
    for run_id in run_ids:
        events = instance.all_logs(
            run_id,
            of_type={
                dg.DagsterEventType.STEP_START,
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            },
        )
        times = [e.timestamp for e in events if e.step_key == step_key]
        if times:
            windows.append((min(times), max(times)))
    return sorted(windows)


def test_backfill_of_three_months_lands_in_every_layer_with_exactly_the_mirror_rows(e2e):
    assert e2e.backfill_status == "COMPLETED_SUCCESS", e2e.diagnostics()
    for key in KEYS:
        stats = e2e.client.materialized_partitions(key)
        assert stats["numMaterialized"] == len(MONTHS), (key, stats)
        assert stats["materialized_ranges"] == [(partition_key(MONTHS[0]), partition_key(MONTHS[-1]))], key

    expected = {m: csv_data_rows(e2e.mirror_root / relpath(SPEC.name, m)) for m in MONTHS}
    assert _month_counts(e2e) == expected
    assert _mirror_vs_warehouse(e2e, MONTHS) == []

    runs = e2e.client.runs({"dagster/backfill": e2e.backfill_id})
    with e2e.instance() as instance:
        # Every run went through the queue.
        for run in runs:
            enqueued = instance.all_logs(run["runId"], of_type=dg.DagsterEventType.RUN_ENQUEUED)
            assert enqueued, f"run {run['runId']} skipped the queue"
    # The broken download failed its run (whichever months it held), and the automatic
    # retry of that run succeeded.
    (failed,) = [r for r in runs if r["status"] == "FAILURE"]
    retries = e2e.client.runs({"dagster/parent_run_id": failed["runId"]})
    assert [(r["status"], r["tags"]["dagster/retry_number"]) for r in retries] == [("SUCCESS", "1")]
    assert e2e.mirror.request_count(relpath(SPEC.name, RETRIED_MONTH), "GET") == 2


def test_after_the_backfill_every_month_shows_its_own_figures_and_checks(e2e, tmp_path):
    """The backfill was one run over three months (single-run policy): what the UI shows
    per month (row counts, each lake check's Partitions tab) is each month's own."""
    from playwright.sync_api import expect

    assert e2e.backfill_status == "COMPLETED_SUCCESS", e2e.diagnostics()
    expected = _month_counts(e2e)
    assert len(set(expected.values())) == len(MONTHS)  # months of different sizes
    keys = [partition_key(m) for m in MONTHS]
    for key in (lake_key(SPEC), warehouse_key(SPEC)):
        metadata = e2e.client.partition_metadata(key, keys)
        assert {p[:7]: m["dagster/row_count"] for p, m in metadata.items()} == expected, key
        for partition, month_metadata in metadata.items():  # its own files only
            files = [v for k, v in month_metadata.items() if k in ("uri", "quarantine_uri", "source_file")]
            assert files and all(f"month={partition[:7]}" in f for f in files), (key, month_metadata)

    lake_checks = set(e2e.client.check_partition_statuses(lake_key(SPEC)))
    assert len(lake_checks) >= 5
    every_month_passed = [("SUCCEEDED", keys[0], keys[-1])]
    statuses = wait_for(
        "every lake check's partition statuses",
        lambda: (
            (s := e2e.client.check_partition_statuses(lake_key(SPEC))) and all(s[name] for name in lake_checks) and s
        ),
        60,
        on_timeout=e2e.diagnostics,
    )
    assert {name: statuses[name] for name in lake_checks} == {name: every_month_passed for name in lake_checks}

    # The check's Partitions tab, as a person sees it; the screenshot is kept as an artifact.
    check = "has_rows"
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(f"{e2e.deployment.url}/assets/{'/'.join(lake_key(SPEC).path)}?view=checks&checkDetail={check}")
        page.locator("button[role=tab]", has_text="Partitions").click()
        expect(page.get_by_text(f"Passed ({len(MONTHS)})")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        for status in ("Skipped", "Failed", "Execution Failed", "In Progress"):
            expect(page.get_by_text(f"{status} (0)", exact=True)).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"check-{check}-partitions.png"
        page.screenshot(path=shot)
    print(f"\nscreenshot: {shot}")


def test_downloads_from_one_host_take_turns_in_its_pool(e2e):
    """Two runs launched at once, each downloading a slow month: with the host's pool at
    one slot, the second download starts only when the first has ended."""
    months = [MONTHS[0], MONTHS[-1]]
    for month in months:
        size = (e2e.mirror_root / relpath(SPEC.name, month)).stat().st_size
        # About 6 s per download, so that two runs started together would overlap.
        trickle = Fault(kind="trickle", nbytes=max(1, size // 24), delay=0.25)
        e2e.mirror.set_fault(relpath(SPEC.name, month), trickle)
    try:
        run_ids = [e2e.client.launch_asset_run(LOCATION, [raw_key(SPEC)], partition_key(m)) for m in months]
        for run_id in run_ids:
            status = wait_for(
                f"run {run_id} to finish",
                lambda run_id=run_id: (s := e2e.client.get_run_status(run_id).value) in TERMINAL_RUN and s,
                RUN_TIMEOUT_S,
                every=1.0,
                on_timeout=e2e.diagnostics,
            )
            assert status == "SUCCESS", e2e.diagnostics()
    finally:
        e2e.mirror.clear_faults()
    with e2e.instance() as instance:
        (first, second) = _step_windows(instance, run_ids, "raw__yellow_raw")
        pool = instance.event_log_storage.get_concurrency_info(f"source_host:{e2e.mirror.host}")
    assert second[0] >= first[1], f"downloads overlapped: {first} and {second}"
    assert (pool.slot_count, pool.active_slot_count) == (1, 0)


PAGE_TIMEOUT_MS = 60_000


def _node(page, key: dg.AssetKey):
    """The graph node of `key`: the node box holding the link to its partitions."""
    link = page.locator(f"a[href='/assets/{'/'.join(key.path)}?view=partitions']")
    return page.locator("[class*='AssetNode_assetNodeBox']", has=link)


@contextlib.contextmanager
def chromium(tmp_path: Path):
    """Headless Chromium with a fresh profile, as a person's browser on this machine."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, tmp_path / "chromium-profile")  # a fresh --user-data-dir
        try:
            yield browser
        finally:
            browser.close()


def test_the_asset_graph_and_a_partitions_page_in_headless_chromium(e2e, tmp_path):
    from playwright.sync_api import expect

    shots = tmp_path / "screenshots"
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)

        started = time.monotonic()
        page.goto(f"{e2e.deployment.url}/locations/{LOCATION}/asset-groups/{SPEC.name}/lineage")
        for key in KEYS:
            # Each layer's node, with its name and its partitions' fill (3 of 94 months).
            node = _node(page, key)
            expect(node).to_contain_text(key.path[-1], timeout=PAGE_TIMEOUT_MS)
            expect(node).to_contain_text("% filled", timeout=PAGE_TIMEOUT_MS)
        e2e.figures["asset_graph_load_s"] = time.monotonic() - started
        page.screenshot(path=shots / "asset-graph.png")
        # Selecting a node names the asset in full in the side panel (right to left, as
        # the panel covers the right of the graph).
        for key in reversed(KEYS):
            _node(page, key).get_by_text(key.path[-1], exact=True).click()
            expect(page.get_by_text(" / ".join(key.path), exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # The raw asset's download pool, named after the mirror's host.
        expect(page.get_by_role("link", name="source_host:127.0.0.1")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.screenshot(path=shots / "asset-graph-raw-selected.png")

        started = time.monotonic()
        page.goto(f"{e2e.deployment.url}/assets/{'/'.join(warehouse_key(SPEC).path)}?view=partitions")
        expect(page.get_by_text(f"Materialized ({len(MONTHS)})")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        e2e.figures["partitions_page_load_s"] = time.monotonic() - started
        expect(page.get_by_text(SPEC.table).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.screenshot(path=shots / "warehouse-partitions.png")
    print(f"\nscreenshots: {shots}")
    assert sorted(p.name for p in shots.iterdir()) == [
        "asset-graph-raw-selected.png", "asset-graph.png", "warehouse-partitions.png",
    ]  # fmt: skip


def test_the_pickup_map_of_a_mart_month_shows_on_the_asset_page(e2e, tmp_path, monkeypatch):
    """The other feeds, the zones and the mart of one month, materialized in this process on
    the deployment's instance, lake and warehouse; then the mart's page in Chromium: the
    month's pickup map (Markdown metadata with the PNG inline) opens and shows."""
    from playwright.sync_api import expect, sync_playwright

    month = MONTHS[0]
    others = [name for name in DATASETS if name != SPEC.name]
    generate(e2e.mirror_root, others, [month])
    monkeypatch.setenv("TAXI_STAGING_DIR", str(e2e.root / "staging"))
    platform = Platform(
        root=e2e.root,  # lake/ and warehouse.duckdb: the deployment's
        source_url=e2e.mirror.url_template,
        zones_url=e2e.mirror.zones_url,
        zone_shapes_url=e2e.mirror.zone_shapes_url,
    )
    assert platform.warehouse_uri == f"duckdb:///{e2e.warehouse_file}"
    with e2e.instance() as instance:
        # Feeds have their own partitions: one run per feed, then the zones and the mart.
        for name in others:
            assert platform.materialize(DATASETS[name], month, instance=instance).success
        zones_and_mart = dg.AssetSelection.assets(MART).upstream() - dg.AssetSelection.groups(*DATASETS)
        result = platform.materialize_selection(zones_and_mart, month, instance=instance)
    assert result.success

    shots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, tmp_path / "chromium-profile", height=1200)
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{e2e.deployment.url}/assets/{'/'.join(MART.path)}")
            show = page.locator("tr", has_text=MAP_METADATA_KEY).get_by_text("[Show Markdown]")
            expect(show).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            skip = page.get_by_role("button", name="Skip")  # the UI's first-visit newsletter dialog
            if skip.count():
                skip.click()
            show.click()
            image = page.get_by_role("img", name=f"Pickups by taxi zone, {month}")
            expect(image).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            # Decoded and laid out: a real picture, not a broken-image icon.
            width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 300, width
            assert image.get_attribute("src").startswith("data:image/png;base64,")
            page.screenshot(path=shots / "mart-pickup-map.png")
        finally:
            browser.close()
    print(f"\nscreenshot: {shots / 'mart-pickup-map.png'}")
    assert (shots / "mart-pickup-map.png").stat().st_size > 10_000


def test_a_new_month_on_the_mirror_starts_the_source_sensor_run(e2e):
    generate(e2e.mirror_root, [SPEC.name], [NEW_MONTH])
    sensor = e2e.client.sensor_state(LOCATION, SENSOR)
    assert sensor is not None, f"sensor {SENSOR} is not in the definitions"
    started = time.monotonic()
    if sensor["sensorState"]["status"] != "RUNNING":
        assert e2e.client.start_sensor(LOCATION, SENSOR) == "RUNNING"

    tags = {"dagster/sensor_name": SENSOR, "dagster/partition": partition_key(NEW_MONTH)}
    run = wait_for(
        f"{SENSOR} to start a run for {NEW_MONTH}",
        lambda: next(iter(e2e.client.runs(tags)), None),
        RUN_TIMEOUT_S,
        every=1.0,
        on_timeout=e2e.diagnostics,
    )
    e2e.figures["sensor_run_requested_s"] = time.monotonic() - started
    status = wait_for(
        f"the sensor's run {run['runId']} to finish",
        lambda: (s := e2e.client.get_run_status(run["runId"]).value) in TERMINAL_RUN and s,
        RUN_TIMEOUT_S,
        every=1.0,
        on_timeout=e2e.diagnostics,
    )
    assert status == "SUCCESS", e2e.diagnostics()
    for key in KEYS:
        assert e2e.client.materialized_partitions(key)["numMaterialized"] == len(MONTHS) + 1, key
    months = [*MONTHS, NEW_MONTH]
    assert _month_counts(e2e) == {m: csv_data_rows(e2e.mirror_root / relpath(SPEC.name, m)) for m in months}
    assert _mirror_vs_warehouse(e2e, months) == []
