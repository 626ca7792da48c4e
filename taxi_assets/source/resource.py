"""The TLC source as a Dagster resource: where a month's file is and how to fetch it."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from taxi_assets.datasets import DatasetSpec
from taxi_assets.months import normalize_month
from taxi_assets.source import http

DEFAULT_SOURCE_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/"
    "{dataset}/{dataset}_tripdata_{month}.csv.gz"
)
DEFAULT_ZONES_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/misc/taxi_zone_lookup.csv"
DEFAULT_ZONE_SHAPES_URL = "https://d37ci6vzurychx.cloudfront.net/misc/taxi_zones.zip"


def url_file_name(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[-1]


def download_pool(url_template: str) -> str:
    """The Dagster concurrency pool of downloads from the template's host.

    The instance limits each pool (deploy/dagster.yaml), so at most N downloads
    hit one host at once, however their runs were launched.
    """
    return f"source_host:{urlsplit(url_template).hostname}"


class TaxiSource(dg.ConfigurableResource):
    """Monthly files at `url_template` ({dataset}, {month}=YYYY-MM); CSV.gz or Parquet.

    The zone lookup CSV comes from the same publisher, so it shares the download
    policy (timeouts, retries, verification) rather than duplicating it elsewhere.
    """

    url_template: str = Field(default=DEFAULT_SOURCE_URL)
    zones_url: str = Field(default=DEFAULT_ZONES_URL, description="The taxi zone lookup CSV.")
    zone_shapes_url: str = Field(default=DEFAULT_ZONE_SHAPES_URL, description="The taxi zone shapefile (zip).")
    timeout_s: float = Field(
        default=60.0, description="Connect timeout, and the longest wait for the next bytes of a body."
    )
    retries: int = Field(default=5, description="Retries of 5xx/429 answers and connection errors.")
    backoff_s: float = Field(default=0.5, description="Base of the exponential backoff (both retry kinds).")
    body_attempts: int = Field(default=3, description="Attempts when a body breaks off mid-stream.")
    deadline_s: float = Field(
        default=3600.0, description="Longest one download attempt may take (a trickle that never stalls)."
    )

    def url(self, spec: DatasetSpec, month: str) -> str:
        return self.url_template.format(dataset=spec.name, month=normalize_month(month))

    def file_name(self, spec: DatasetSpec, month: str) -> str:
        return url_file_name(self.url(spec, month))

    def _session(self):
        return http.make_session(self.retries, self.backoff_s)

    def head(self, spec: DatasetSpec, month: str) -> http.FileVersion | None:
        with self._session() as session:
            return http.head(session, self.url(spec, month), self.timeout_s)

    def download(
        self, spec: DatasetSpec, month: str, dest: Path, log: logging.Logger | None = None
    ) -> http.Download:
        return self._download(self.url(spec, month), dest, f"{spec.name} {normalize_month(month)}", log)

    def zones_file_name(self) -> str:
        return url_file_name(self.zones_url)

    def download_zones(self, dest: Path, log: logging.Logger | None = None) -> http.Download:
        return self._download(self.zones_url, dest, "taxi zones", log)

    def zone_shapes_file_name(self) -> str:
        return url_file_name(self.zone_shapes_url)

    def download_zone_shapes(self, dest: Path, log: logging.Logger | None = None) -> http.Download:
        return self._download(self.zone_shapes_url, dest, "taxi zone shapes", log)

    def _download(self, url: str, dest: Path, label: str, log: logging.Logger | None) -> http.Download:
        with self._session() as session:
            return http.download(
                session,
                url,
                dest,
                label,
                self.timeout_s,
                self.body_attempts,
                log,
                backoff=self.backoff_s,
                deadline=self.deadline_s,
            )
