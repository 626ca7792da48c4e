"""The TLC source as a Dagster resource: where a month's file is and how to fetch it."""

from __future__ import annotations

import logging
import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from taxi_assets.errors import ConfigError, NotPublishedError, SchemaError
from taxi_assets.source import drop_zone, http
from taxi_assets.source.drop_zone import GCSDropZone
from taxi_assets.source.http import Download, url_file_name
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.gcp import credentials_field

if TYPE_CHECKING:  # the Google client is imported when the drop zone is used
    from google.cloud import storage

COURSE_CSV_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/{dataset}/{dataset}_tripdata_{month}.csv.gz"
)
OFFICIAL_PARQUET_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data/{dataset}_tripdata_{month}.parquet"
# Sources in order, the first that has the month wins: the course's CSV mirror (2019-01 ..
# 2021-07, what users loaded before, byte for byte), then TLC's Parquet (every month).
DEFAULT_SOURCE_URL = f"{COURSE_CSV_URL} {OFFICIAL_PARQUET_URL}"
DEFAULT_ZONES_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/misc/taxi_zone_lookup.csv"
DEFAULT_ZONE_SHAPES_URL = "https://d37ci6vzurychx.cloudfront.net/misc/taxi_zones.zip"


SOURCE_SETTING = "TAXI_SOURCE_URL"
NOT_AT = "HTTP 404/403"  # why a source was passed over: it does not have the month
TEMPLATE_FIELDS = ("dataset", "month")


def check_url_template(text: str, setting: str = SOURCE_SETTING) -> str:
    """The setting if each of its templates (one, or several separated by white space)
    yields one URL per dataset and month, else ConfigError naming the setting and template.

    Without {month} every month would load the same file, silently.
    """
    templates = text.split()
    if not templates:
        raise ConfigError(f"{setting}={text!r} names no URL template; e.g. {DEFAULT_SOURCE_URL}")
    for i, template in enumerate(templates, 1):
        name = (
            f"{setting}={template!r}"
            if len(templates) == 1
            else (f"{setting}={text!r}, source {i} of {len(templates)} {template!r},")
        )
        _check_one_template(template, name)
    return text


def _check_one_template(template: str, name: str) -> None:
    usage = (
        "fields are {dataset} and {month} (YYYY-MM); several templates are separated by spaces, "
        f"the first that has the month wins, e.g. {DEFAULT_SOURCE_URL}"
    )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:  # a lone { or }
        raise ConfigError(f"{name} is not a URL template ({exc}; write {{{{ or }}}} for a brace): {usage}") from None
    unknown = [f for f in fields if f not in TEMPLATE_FIELDS]
    if unknown:
        raise ConfigError(f"{name}: unknown field(s) {', '.join('{' + f + '}' for f in unknown)}; {usage}")
    if "month" not in fields:
        raise ConfigError(f"{name} has no {{month}}: every month would load the same file; {usage}")
    try:
        url = template.format(dataset="yellow", month="2021-01")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:  # e.g. {month:%Y} or {month[1]}
        raise ConfigError(f"{name} cannot be filled in ({exc}); {usage}") from None
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"{name} is not an http(s) URL; {usage}")


def url_templates(text: str) -> list[str]:
    """One URL template or several separated by white space (a URL has none), in order."""
    templates = text.split()
    if not templates:
        raise ValueError("no source URL template given")
    return templates


def download_pool(url_template: str) -> str:
    """The Dagster concurrency pool of downloads from the (first) template's host.

    The instance limits each pool (deploy/dagster.yaml), so at most N downloads
    hit one host at once, however their runs were launched.
    """
    return f"source_host:{urlsplit(url_templates(url_template)[0]).hostname}"


class TaxiSource(dg.ConfigurableResource):
    """Monthly files at `url_template` ({dataset}, {month}=YYYY-MM); CSV(.gz) or Parquet.

    `url_template` may list several templates separated by spaces: the first that has the
    month wins. A 404 (or 403, as S3 answers for a missing key) moves on to the next one;
    any other failure stops there, so a flaky mirror never silently switches sources.

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
    gcs_drop_uri: str | None = Field(
        default=None,
        description="gs://bucket/prefix (TAXI_GCS_DROP_URI) where others drop month files; unset: no drop zone.",
    )
    gcp_credentials_json: str | None = credentials_field()

    def drop_zone(self) -> GCSDropZone | None:
        uri = (self.gcs_drop_uri or "").strip()
        return GCSDropZone.from_uri(uri) if uri else None

    def drop_zone_client(self) -> storage.Client:
        return drop_zone.client(self.gcp_credentials_json)

    def download_dropped(self, uri: str, dest: Path, label: str) -> Download:
        """The object at `uri` (a file of the drop zone) to `dest`, with the lake's credentials."""
        return drop_zone.download(uri, dest, label, self.gcp_credentials_json)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # At run start, before anything is fetched (an EnvVar is resolved only now).
        check_url_template(self.url_template)

    def urls(self, spec: DatasetSpec, month: str) -> list[str]:
        return [t.format(dataset=spec.name, month=normalize_month(month)) for t in url_templates(self.url_template)]

    def url(self, spec: DatasetSpec, month: str) -> str:
        """The first source's URL of the month."""
        return self.urls(spec, month)[0]

    def file_name(self, spec: DatasetSpec, month: str) -> str:
        return url_file_name(self.url(spec, month))

    def _session(self):
        return http.make_session(self.retries, self.backoff_s)

    def head(self, spec: DatasetSpec, month: str) -> http.FileVersion | None:
        """The month's version at the first source that has it; None when none has."""
        with self._session() as session:
            for url in self.urls(spec, month):
                version = http.head(session, url, self.timeout_s)
                if version is not None:
                    return version
        return None

    def head_url(self, url: str) -> http.FileVersion | None:
        with self._session() as session:
            return http.head(session, url, self.timeout_s)

    def download(self, spec: DatasetSpec, month: str, dest: Path, log: logging.Logger | None = None) -> http.Download:
        """The first source's file into dest (one source: see download_first for the list)."""
        return self._download(self.url(spec, month), dest, f"{spec.name} {normalize_month(month)}", log)

    def download_first(
        self,
        spec: DatasetSpec,
        month: str,
        new_dest: Callable[[str], Path],
        log: logging.Logger | None = None,
        accept: Callable[[Path], None] | None = None,
    ) -> tuple[http.Download, list[tuple[str, str]]]:
        """The month from the first source that has it, into new_dest(file name).

        `accept(path)` raises SchemaError for a file the product cannot read: while a later
        source remains, that one is tried instead (a refusal is not the end of the chain).
        Returns the download and the sources passed over before it, as (URL, why).
        Raises NotPublishedError naming every URL when no source has the month, and the
        first refusal (naming every source) when the others do not have it either.
        """
        label = f"{spec.name} {normalize_month(month)}"
        passed: list[tuple[str, str]] = []
        refused: SchemaError | None = None
        urls = self.urls(spec, month)
        for i, url in enumerate(urls):
            try:
                got = self._download(url, new_dest(url_file_name(url)), label, log)
            except NotPublishedError:
                if len(urls) == 1:
                    raise  # one source: its own message
                passed.append((url, NOT_AT))
                if log is not None:
                    log.info(f"{label}: not at {url}, trying the next source")
                continue
            if accept is None or i == len(urls) - 1:
                return got, passed
            try:
                accept(got.path)
            except SchemaError as exc:
                passed.append((url, str(exc)))
                refused = refused or exc
                if log is not None:
                    log.warning(f"{label}: the file at {url} cannot be read ({exc}); trying the next source")
                continue
            return got, passed
        if refused is not None:
            raise SchemaError(
                f"{label}: no source serves a file that can be read: "
                + "; ".join(f"{url}: {why}" for url, why in passed)
            )
        raise NotPublishedError(
            f"{label} is not published at any source: {', '.join(url for url, _ in passed)} (HTTP 404/403)"
        )

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
