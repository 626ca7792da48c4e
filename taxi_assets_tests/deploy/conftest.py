"""Fixtures of the deployment tests: the PostgreSQL server and a fresh database per test
(helpers in harness.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from taxi_assets_tests.deploy.harness import REPO, START_POSTGRES, PgDatabase, fresh_database


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """TAXI_TEST_PG_URL, or the local Debian cluster started by deploy/ci/start-postgres.sh."""
    url = os.environ.get("TAXI_TEST_PG_URL")
    if url:
        return url
    started = subprocess.run([str(START_POSTGRES), "--no-install"], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(
            "the deployment tests need PostgreSQL: TAXI_TEST_PG_URL is not set and "
            f"{START_POSTGRES.relative_to(REPO)} could not start one:\n{started.stderr.strip()}",
            pytrace=False,
        )
    return started.stdout.strip()


@pytest.fixture
def pg_database(pg_server_url) -> Iterator[PgDatabase]:
    with fresh_database(pg_server_url) as db:
        yield db
