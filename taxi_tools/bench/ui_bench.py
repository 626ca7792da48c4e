"""How long the UI takes with the whole history materialized, in headless Chromium.

Three moments a user waits for: the asset graph with every trip asset's partition fill,
an asset's partitions view listing every month, and the launch dialog of a backfill
(which reads every partition's status). Each is timed from the navigation or click to
the element that says the page is complete. Chromium is Debian's (/usr/bin/chromium,
installed by deploy/ci/install-chromium.sh), driven by playwright, as in the
deployment tests.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import dagster as dg

from taxi_tools.bench.browser import CHROMIUM, launch_chromium

TIMEOUT_MS = 120_000


def _path(key: dg.AssetKey) -> str:
    return "/".join(key.path)


def _skip_welcome(page) -> None:
    """Close the first-visit 'Join the Dagster community' dialog (it covers the page)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    skip = page.get_by_role("dialog").get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=10_000)
    except PlaywrightTimeout:
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=10_000)


def _slowest_graphql(page) -> list[tuple[float, str]]:
    """(seconds from request to response end, operation name) of every GraphQL request the
    page makes from now on (the UI names each in its URL: /graphql?op=Name)."""
    seen: list[tuple[float, str]] = []

    def finished(request) -> None:
        if "/graphql" in request.url:
            timing = request.timing  # ms from startTime
            seen.append((timing["responseEnd"] / 1000, request.url.partition("op=")[2] or "?"))

    page.on("requestfinished", finished)
    return seen


def ui_timings(
    url: str,
    profile: Path,
    location: str,
    keys: list[tuple[str, list[dg.AssetKey]]],
    months: dict[str, list[str]],
) -> dict[str, float]:
    """{what: seconds} for the asset graph of the dataset with the most months (its group),
    that dataset's warehouse partitions view and its lake asset's backfill launch dialog.
    Prints the slowest GraphQL operations of each (what the page waited for)."""
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run deploy/ci/install-chromium.sh as root, or pass --no-ui")
    biggest = max(months, key=lambda name: len(months[name]))
    raw, lake, warehouse = dict(keys)[biggest]
    group = biggest  # the assets' group is their dataset (defs/assets)
    timings: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, profile)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            # Warm-up: the first page load fetches the UI's scripts; a user has them cached.
            page.goto(f"{url}/overview")
            page.wait_for_load_state("networkidle")
            _skip_welcome(page)
            requests = _slowest_graphql(page)

            started = time.monotonic()
            page.goto(f"{url}/locations/{location}/asset-groups/{group}/lineage")
            for key in (raw, lake, warehouse):
                # Each layer's node with its partitions' fill ("100% filled"): every month's status read.
                link = page.locator(f"a[href='/assets/{_path(key)}?view=partitions']")
                node = page.locator("[class*='AssetNode_assetNodeBox']", has=link)
                expect(node).to_contain_text("% filled", timeout=TIMEOUT_MS)
            timings["asset_graph"] = time.monotonic() - started
            _print_slowest("asset_graph", requests)

            requests.clear()
            started = time.monotonic()
            page.goto(f"{url}/assets/{_path(warehouse)}?view=partitions")
            expect(page.get_by_text(f"Materialized ({len(months[biggest])})")).to_be_visible(timeout=TIMEOUT_MS)
            timings["partitions_view"] = time.monotonic() - started
            _print_slowest("partitions_view", requests)

            page.goto(f"{url}/assets/{_path(lake)}")
            button = page.get_by_role("button", name=re.compile(r"Materialize…$")).first
            expect(button).to_be_enabled(timeout=TIMEOUT_MS)
            requests.clear()
            started = time.monotonic()
            button.click()
            # The dialog reads every partition's status; "All" selects the whole history.
            dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
            expect(dialog.get_by_text("Partition selection")).to_be_visible(timeout=TIMEOUT_MS)
            dialog.get_by_role("button", name="All", exact=True).click()
            launch = dialog.get_by_role("button", name="Launch backfill", exact=True)
            expect(launch).to_be_enabled(timeout=TIMEOUT_MS)
            timings["backfill_dialog"] = time.monotonic() - started
            _print_slowest("backfill_dialog", requests)
        finally:
            browser.close()
    return timings


def _print_slowest(what: str, requests: list[tuple[float, str]], top: int = 3) -> None:
    slowest = ", ".join(f"{name} {seconds:.2f}" for seconds, name in sorted(requests, reverse=True)[:top])
    print(f"  UI {what}: {len(requests)} GraphQL requests, slowest (s): {slowest}", flush=True)
