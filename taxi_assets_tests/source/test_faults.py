"""Network faults against the real mirror: transient ones are retried and land the
same data as a clean run; permanent ones fail the run with an error naming dataset,
month, URL and what was wrong, and leave the lake and the warehouse exactly as the
previous good run left them (no half-written or temporary file, no staging left)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.helpers import mirror_file
from taxi_assets_tests.reliability import State, failure, materialize
from taxi_tools.mirror import Fault

SPEC = DATASETS["yellow"]
MONTH = "2021-01"
FILE = "yellow/yellow_tripdata_2021-01.csv.gz"


def staging_leftovers() -> list[Path]:
    return list(Path(os.environ["TAXI_STAGING_DIR"]).iterdir())


def assert_failed_cleanly(platform, good: State, result, error: str, message: str) -> None:
    step, cls, got = failure(result)
    assert (step, cls) == ("raw__yellow_raw", error)
    assert re.fullmatch(message, got), got
    good.assert_same(State.of(platform, SPEC))
    assert staging_leftovers() == []


# ---------------------------------------------------------------- transient: retried, then success


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_a_few_times_is_retried_then_lands_like_a_clean_run(platform, source, clean_state, status):
    source.set_fault(FILE, Fault("status", status=status, times=3))
    assert materialize(platform, SPEC, MONTH, retries=3).success
    assert source.request_count(FILE, "GET") == 4
    clean_state.assert_same(State.of(platform, SPEC))


@pytest.mark.parametrize("kind", ["cut", "wrong_length"])
def test_body_broken_once_is_fetched_again_then_lands_like_a_clean_run(platform, source, clean_state, kind):
    source.set_fault(FILE, Fault(kind, times=1, nbytes=1000))
    assert materialize(platform, SPEC, MONTH, body_attempts=2).success
    assert source.request_count(FILE, "GET") == 2
    clean_state.assert_same(State.of(platform, SPEC))
    assert staging_leftovers() == []


def test_slow_trickle_lands_like_a_clean_run(platform, source, clean_state):
    # Slow but never silent for a whole read timeout: patience, not an error.
    source.set_fault(FILE, Fault("trickle", nbytes=4096, delay=0.02))
    assert materialize(platform, SPEC, MONTH, timeout_s=5).success
    assert source.request_count(FILE, "GET") == 1
    clean_state.assert_same(State.of(platform, SPEC))


# ---------------------------------------------------------------- permanent: clear error, nothing changed


def test_unpublished_month_says_so(platform, good, source):
    source.set_fault(FILE, Fault("status", status=404))
    result = materialize(platform, SPEC, MONTH)
    url = re.escape(source.url(FILE))
    message = f"yellow 2021-01 is not published yet: HTTP 404 from {url}"
    assert_failed_cleanly(platform, good, result, "NotPublishedError", message)
    assert source.request_count(FILE, "GET") == 1  # not retried


def test_5xx_that_persists_fails_after_the_retries(platform, good, source):
    source.set_fault(FILE, Fault("status", status=503))
    result = materialize(platform, SPEC, MONTH, retries=2)
    url = re.escape(source.url(FILE))
    message = f"yellow 2021-01: HTTP 503 Service Unavailable from {url} \\(after 2 retries\\)"
    assert_failed_cleanly(platform, good, result, "SourceError", message)
    assert source.request_count(FILE, "GET") == 3


@pytest.mark.parametrize("kind", ["cut", "wrong_length"])
def test_body_that_keeps_breaking_fails_with_the_byte_counts(platform, good, source, mirror_root, kind):
    size = mirror_file(mirror_root, "yellow", MONTH).stat().st_size
    source.set_fault(FILE, Fault(kind, nbytes=1000, extra_length=1000))
    result = materialize(platform, SPEC, MONTH, body_attempts=2)
    got, announced = (1000, size) if kind == "cut" else (size, size + 1000)
    url = re.escape(source.url(FILE))
    message = (
        f"yellow 2021-01: connection closed after {got:,} of the {announced:,} bytes its "
        f"Content-Length announced from {url} \\(after 2 attempts\\)"
    )
    assert_failed_cleanly(platform, good, result, "SourceError", message)
    assert source.request_count(FILE, "GET") == 2


def test_stalled_trickle_hits_the_read_timeout(platform, good, source):
    source.set_fault(FILE, Fault("trickle", nbytes=1024, delay=3.0))
    result = materialize(platform, SPEC, MONTH, timeout_s=0.2, body_attempts=2)
    url = re.escape(source.url(FILE))
    message = (
        f"yellow 2021-01: no data for 0.2 s after [\\d,]+ bytes \\(read timeout\\) from {url} \\(after 2 attempts\\)"
    )
    assert_failed_cleanly(platform, good, result, "SourceError", message)
    assert source.request_count(FILE, "GET") == 2


def test_endless_trickle_hits_the_attempt_deadline(platform, good, source):
    # Never silent long enough for the read timeout, but it would take forever.
    source.set_fault(FILE, Fault("trickle", nbytes=256, delay=0.02))
    result = materialize(platform, SPEC, MONTH, timeout_s=5, deadline_s=0.3, body_attempts=1)
    url = re.escape(source.url(FILE))
    message = (
        f"yellow 2021-01: too slow: [\\d,]+ bytes in [\\d.]+ s \\(limit 0.3 s per attempt\\) "
        f"from {url} \\(after 1 attempts\\)"
    )
    assert_failed_cleanly(platform, good, result, "SourceError", message)


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "fault,what",
    [
        (Fault("html"), "{url} sent an HTML/XML page, not the data file"),
        (Fault("empty"), "{url} sent an empty file"),
        (Fault("truncated_gzip", nbytes=5000), "gzip stream truncated after 5,000 bytes from {url}"),
        (Fault("body", body=b"VendorID,total_amount\n1,2.5\n"), "{url} is not gzip \\(starts with b'VendorID'\\)"),
    ],
    ids=["html", "empty", "truncated_gzip", "not_gzip"],
)
def test_bad_file_is_rejected_before_it_reaches_the_lake(platform, good, source, fault, what):
    source.set_fault(FILE, fault)
    result = materialize(platform, SPEC, MONTH)
    message = "yellow 2021-01: " + what.format(url=re.escape(source.url(FILE)))
    assert_failed_cleanly(platform, good, result, "SourceError", message)
    assert source.request_count(FILE, "GET") == 1  # a bad file is not fetched again


# ---------------------------------------------------------------- our side: disk full


@pytest.fixture
def small_staging(platform, tmp_path, monkeypatch, request):
    """TAXI_STAGING_DIR on a real filesystem (tmpfs) of request.param KiB (default 16: smaller
    than the month's 30 KB file)."""
    staging = tmp_path / "small-staging"
    staging.mkdir()
    size = getattr(request, "param", 16)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(staging)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root here: {mounted.stderr.decode().strip()}")
    monkeypatch.setenv("TAXI_STAGING_DIR", str(staging))
    yield staging
    subprocess.run(["umount", str(staging)], check=True)


def test_a_full_staging_disk_is_named_and_not_retried(platform, good, source, small_staging):
    result = materialize(platform, SPEC, MONTH)
    message = (
        rf"yellow 2021-01: cannot write the download to {small_staging}/stage-pid\d+-\w+/yellow_tripdata_2021-01.csv.gz "
        r"\(TAXI_STAGING_DIR\): \[Errno 28\] No space left on device"
    )
    assert_failed_cleanly(platform, good, result, "StagingError", message)
    assert [m for m, path, _ in source.requests if path == FILE] == ["GET"]  # once: not retried


@pytest.mark.parametrize("small_staging", [36], indirect=True)  # the raw file fits, its Parquet (39 KB) does not
def test_a_staging_disk_that_fills_during_conversion_is_named(platform, good, source, small_staging):
    result = materialize(platform, SPEC, MONTH)
    step, cls, message = failure(result)
    assert (step, cls) == ("lake__yellow_lake", "StagingError")
    assert re.fullmatch(
        rf"yellow 2021-01: cannot write {small_staging}/stage-pid\d+-\w+/part-0.parquet: .*No space left on device.* \(TAXI_STAGING_DIR\)",
        message,
        re.S,
    ), message
    good.assert_same(State.of(platform, SPEC))  # raw is the same file again; lake and warehouse untouched
    assert staging_leftovers() == []
