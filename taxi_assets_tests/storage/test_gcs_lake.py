"""The GCS lake through the real google-cloud-storage client against the real fake-gcs-server
binary: raw -> lake -> (DuckDB) warehouse from the mirror, rematerialization, and
uploads or copies that break off half-way."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.storage.gcs import GCSLakeStore
from taxi_assets.storage.lake import lake_store_from_uri
from taxi_assets_tests.harness import MONTHS, Platform
from taxi_assets_tests.helpers import csv_data_rows, mirror_file


@dataclass
class GCSPlatform(Platform):
    """The platform with its lake in a fake-GCS bucket (warehouse still DuckDB)."""

    bucket: storage.Bucket | None = None

    @property
    def lake_uri(self) -> str:
        return f"gs://{self.bucket.name}/lake"

    def lake(self):
        return lake_store_from_uri(self.lake_uri)


@pytest.fixture
def gcs_platform(platform, gcs_bucket) -> GCSPlatform:
    return GCSPlatform(root=platform.root, source_url=platform.source_url, bucket=gcs_bucket)


def lake_names(dataset: str, month: str) -> tuple[str, str]:
    return (
        f"lake/raw/{dataset}/month={month}/{dataset}_tripdata_{month}.csv.gz",
        f"lake/{dataset}/month={month}/part-0.parquet",
    )


def test_two_months_go_from_the_mirror_through_gcs_into_the_warehouse(gcs_platform, mirror_root):
    spec = DATASETS["green"]
    expected = {m: csv_data_rows(mirror_file(mirror_root, "green", m)) for m in MONTHS}
    for month in MONTHS:
        result = gcs_platform.materialize(spec, month)
        assert result.success
        raw_name, lake_name = lake_names("green", month)
        lake_md = result.asset_materializations_for_node("lake__green_lake")[0].metadata
        assert lake_md["uri"].value == f"gs://{gcs_platform.bucket.name}/{lake_name}"
        assert lake_md["dagster/row_count"].value == expected[month]

    bucket = gcs_platform.bucket
    # Exactly the lake layout: nothing else (no temporary objects) is left in the bucket.
    assert sorted(b.name for b in bucket.list_blobs()) == sorted(n for m in MONTHS for n in lake_names("green", m))
    for month in MONTHS:
        raw_name, lake_name = lake_names("green", month)
        assert bucket.blob(raw_name).download_as_bytes() == mirror_file(mirror_root, "green", month).read_bytes()
        parquet = pq.read_table(io.BytesIO(bucket.blob(lake_name).download_as_bytes()))
        assert parquet.num_rows == expected[month]
    # DuckDB read the lake files out of GCS.
    assert gcs_platform.warehouse().month_row_counts(spec) == expected


def test_rematerializing_replaces_the_objects_in_place(gcs_platform, mirror_root):
    spec = DATASETS["yellow"]
    month = "2021-01"
    assert gcs_platform.materialize(spec, month).success
    bucket = gcs_platform.bucket
    first = {name: bucket.get_blob(name) for name in lake_names("yellow", month)}

    assert gcs_platform.materialize(spec, month).success
    second = {name: bucket.get_blob(name) for name in lake_names("yellow", month)}
    assert sorted(b.name for b in bucket.list_blobs()) == sorted(first)
    for name in first:
        assert second[name].generation != first[name].generation  # a new version was published
        assert second[name].crc32c == first[name].crc32c  # of the same content
    expected = csv_data_rows(mirror_file(mirror_root, "yellow", month))
    assert gcs_platform.warehouse().month_row_counts(spec) == {month: expected}


class BreakAfter(requests.adapters.HTTPAdapter):
    """The connection breaks at the `n+1`th request that matches (e.g. upload chunks)."""

    def __init__(self, match, n: int):
        super().__init__()
        self.match, self.n, self.seen = match, n, 0

    def send(self, request, **kwargs):
        if self.match(request):
            self.seen += 1
            if self.seen > self.n:
                raise ConnectionInterrupted(f"connection broken at request {self.seen}: {request.url}")
        return super().send(request, **kwargs)


class ConnectionInterrupted(RuntimeError):
    pass


@pytest.fixture
def store_with_session(gcs_bucket):
    """A store whose client sends through a requests session the test can break."""
    session = requests.Session()
    client = storage.Client(project="test", credentials=AnonymousCredentials(), _http=session)
    return GCSLakeStore(gcs_bucket.name, "lake", client=client, chunk_size=1024 * 1024), session


RELPATH = "yellow/month=2021-01/part-0.parquet"


def publish_breaking_at_fourth_chunk(store: GCSLakeStore, session: requests.Session, path) -> None:
    breaker = BreakAfter(lambda r: r.method == "PUT" and "upload_id=" in r.url, n=3)
    session.mount("http://", breaker)
    try:
        with pytest.raises(ConnectionInterrupted):
            store.publish(path, RELPATH)
    finally:
        session.mount("http://", requests.adapters.HTTPAdapter())
    assert breaker.seen == 4  # three 1 MiB chunks had reached the server


def test_an_upload_broken_half_way_leaves_no_object_and_the_previous_version(store_with_session, gcs_bucket, tmp_path):
    store, session = store_with_session
    # Over 8 MiB: a resumable upload in 1 MiB chunks.
    new = tmp_path / "new.parquet"
    new.write_bytes(os.urandom(9 * 1024 * 1024 + 123))

    publish_breaking_at_fourth_chunk(store, session, new)
    assert list(gcs_bucket.list_blobs()) == []  # nothing under the final name, nor anywhere

    old = tmp_path / "old.parquet"
    old.write_bytes(b"previous version " * 1000)
    store.publish(old, RELPATH)
    before = gcs_bucket.get_blob(f"lake/{RELPATH}")

    publish_breaking_at_fourth_chunk(store, session, new)
    after = gcs_bucket.get_blob(f"lake/{RELPATH}")
    assert after.generation == before.generation
    assert after.download_as_bytes() == old.read_bytes()
    assert [b.name for b in gcs_bucket.list_blobs()] == [f"lake/{RELPATH}"]  # no partial or temporary object
    assert store.list("yellow/month=2021-01") == [RELPATH]

    store.publish(new, RELPATH)
    assert gcs_bucket.blob(f"lake/{RELPATH}").download_as_bytes() == new.read_bytes()
    assert [b.name for b in gcs_bucket.list_blobs()] == [f"lake/{RELPATH}"]


def test_a_copy_that_fails_leaves_the_previous_version_and_no_temporary(store_with_session, gcs_bucket, tmp_path):
    store, session = store_with_session
    old = tmp_path / "old.parquet"
    old.write_bytes(b"previous version")
    store.publish(old, RELPATH)
    before = gcs_bucket.get_blob(f"lake/{RELPATH}")

    new = tmp_path / "new.parquet"
    new.write_bytes(b"new version")
    session.mount("http://", BreakAfter(lambda r: "/rewriteTo/" in r.url, n=0))
    with pytest.raises(ConnectionInterrupted):
        store.publish(new, RELPATH)

    after = gcs_bucket.get_blob(f"lake/{RELPATH}")
    assert (after.generation, after.download_as_bytes()) == (before.generation, b"previous version")
    assert [b.name for b in gcs_bucket.list_blobs()] == [f"lake/{RELPATH}"]


def test_local_path_is_a_downloaded_copy_with_the_object_name(gcs_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    store = lake_store_from_uri(f"gs://{gcs_bucket.name}/lake")
    src = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    src.write_bytes(b"\x1f\x8b not really gzip")
    store.publish(src, "raw/yellow/month=2021-01/yellow_tripdata_2021-01.csv.gz")

    with store.local_path("raw/yellow/month=2021-01/yellow_tripdata_2021-01.csv.gz") as path:
        assert path.name == "yellow_tripdata_2021-01.csv.gz"
        assert path.read_bytes() == src.read_bytes()
    assert not path.exists()

    with pytest.raises(FileNotFoundError, match=f"gs://{gcs_bucket.name}/lake/raw/yellow/month=2021-02/x.csv.gz"):
        with store.local_path("raw/yellow/month=2021-02/x.csv.gz"):
            pass
