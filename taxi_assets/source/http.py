"""Streaming, verified downloads of a month's file from the TLC source.

Transient failures are retried by libraries: urllib3's Retry for 5xx/429 answers
and connection set-up, tenacity for a body that breaks off mid-stream. What is
accepted is verified first (byte count, gzip integrity, content sniffing), so a
bad file never reaches the lake.

Completeness: a body with a Content-Length is complete when the bytes match. Without
one, a HEAD request's length must match when it declares one; if none, the file must
prove its own end (gzip trailer, Parquet footer, zip central directory) or, for a plain
file, HTTP must (a chunked body's last chunk); a plain file whose end is only the
connection closing could be cut anywhere, and is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tenacity

from taxi_assets.errors import NotPublishedError, SourceError, StagingError

if TYPE_CHECKING:
    import requests

# requests and urllib3 are imported in the functions that talk HTTP: the definitions import
# this module (its Download and FileVersion) and would otherwise pay for them at every load.

CHUNK = 1 << 20
PROGRESS_EVERY_S = 5.0
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip, an empty zip
# File name endings the loaders recognise (the format is also told by the content).
DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet", ".zip")


def url_file_name(url: str) -> str:
    """The file's name in url: the path's last part, or, when that names no data file
    (`/get?f=yellow_tripdata_2021-01.parquet`), the name a query value gives."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[-1]
    if name.lower().endswith(DATA_SUFFIXES):
        return name
    for _, value in parse_qsl(parts.query):
        candidate = value.rsplit("/", 1)[-1]
        if candidate.lower().endswith(DATA_SUFFIXES):
            return candidate
    return name


class TransientBodyError(Exception):
    """The body broke off or came short: worth another attempt."""


@dataclass(frozen=True)
class FileVersion:
    """What the server says about a file without sending it (HEAD)."""

    url: str
    etag: str | None
    last_modified: str | None
    content_length: int | None

    @property
    def token(self) -> str:
        """A short identity of this version of the file, for run keys and cursors."""
        return self.etag or f"{self.last_modified}|{self.content_length}"

    def differs_from(self, other: FileVersion) -> bool:
        """True when a validator both versions carry has changed (ETag, Last-Modified, Content-Length)."""
        pairs = [
            (self.etag, other.etag),
            (self.last_modified, other.last_modified),
            (self.content_length, other.content_length),
        ]
        return any(a is not None and b is not None and a != b for a, b in pairs)


@dataclass(frozen=True)
class Download:
    url: str
    path: Path
    bytes: int
    sha256: str
    etag: str | None
    last_modified: str | None
    seconds: float


def make_session(retries: int, backoff: float) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


IDENTITY = {"Accept-Encoding": "identity"}


def head(session: requests.Session, url: str, timeout: float, headers: dict | None = None) -> FileVersion | None:
    """The file's version at the source, or None when it is not published (404/403)."""
    response = session.head(url, allow_redirects=True, timeout=timeout, headers=headers)
    if response.status_code in (403, 404):
        return None
    response.raise_for_status()
    length = response.headers.get("Content-Length")
    return FileVersion(
        url=url,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_length=int(length) if length is not None else None,
    )


class _Verifier:
    """Checks the stream while it is written: gzip integrity and content type.

    The name says what the file must be (.gz, .parquet); the first bytes say what it is,
    so a gzip file under another name is checked to its trailer all the same."""

    def __init__(self, label: str, url: str, is_gzip: bool, is_parquet: bool):
        self.label, self.url = label, url
        self.is_gzip, self.is_parquet = is_gzip, is_parquet
        self.inflater = None
        self.first = b""
        self.last = b""
        self._held: list[bytes] = []  # chunks before the first 4 bytes told the format

    def feed(self, chunk: bytes) -> None:
        if len(self.first) < 4:
            self.first += chunk[:512]
            self._held.append(chunk)
            if len(self.first) >= 4:
                self._decide()
            return
        if len(self.first) < 512:
            self.first += chunk[: 512 - len(self.first)]
        self._inflate(chunk)
        self.last = (self.last + chunk)[-8:]

    def _decide(self) -> None:
        """The first bytes are in: check them, then verify what was held back."""
        self._sniff()
        if self.first.startswith(GZIP_MAGIC):
            self.inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        held, self._held = b"".join(self._held), []
        self._inflate(held)
        self.last = held[-8:]

    @property
    def kind(self) -> str:
        """What the content is, by its first bytes: gzip, parquet, zip or plain."""
        if self.first.startswith(GZIP_MAGIC):
            return "gzip"
        if self.first.startswith(PARQUET_MAGIC):
            return "parquet"
        if self.first.startswith(ZIP_MAGIC):
            return "zip"
        return "plain"

    def _inflate(self, chunk: bytes) -> None:
        if self.inflater is not None:
            try:
                # Inflate and throw away: only integrity matters here.
                self.inflater.decompress(chunk, 0)
                while self.inflater.unconsumed_tail:
                    self.inflater.decompress(self.inflater.unconsumed_tail, 0)
                if self.inflater.eof and self.inflater.unused_data:
                    # Concatenated gzip members are valid gzip.
                    rest = self.inflater.unused_data
                    self.inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                    self.inflater.decompress(rest, 0)
            except zlib.error as exc:
                raise SourceError(f"{self.label}: corrupt gzip stream from {self.url}: {exc}") from None

    def _sniff(self) -> None:
        head = self.first.lstrip()[:15].lower()
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
            raise SourceError(f"{self.label}: {self.url} sent an HTML/XML page, not the data file")
        if self.is_gzip and not self.first.startswith(GZIP_MAGIC):
            raise SourceError(f"{self.label}: {self.url} is not gzip (starts with {self.first[:8]!r})")
        if self.is_parquet and not self.first.startswith(PARQUET_MAGIC):
            raise SourceError(f"{self.label}: {self.url} is not Parquet (starts with {self.first[:8]!r})")

    def finish(self, nbytes: int) -> None:
        if nbytes == 0:
            raise SourceError(f"{self.label}: {self.url} sent an empty file")
        if len(self.first) < 4:
            self._decide()
        if self.inflater is not None and not self.inflater.eof:
            raise SourceError(f"{self.label}: gzip stream truncated after {nbytes:,} bytes from {self.url}")
        if (self.is_parquet or self.kind == "parquet") and not self.last.endswith(PARQUET_MAGIC):
            raise SourceError(f"{self.label}: Parquet file from {self.url} has no footer (truncated?)")

    def check_whole(self, path: Path, nbytes: int) -> None:
        """The file's own end marker, read back: a Parquet footer that parses and whose
        column chunks lie inside the file; a zip's central directory and every CRC."""
        if self.kind == "parquet":
            problem = parquet_incomplete(path, nbytes)
            if problem:
                raise SourceError(f"{self.label}: Parquet file from {self.url} is incomplete: {problem}")
        elif self.kind == "zip":
            import zipfile

            try:
                with zipfile.ZipFile(path) as zf:
                    broken = zf.testzip()
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise SourceError(f"{self.label}: {self.url} is not a zip file: {exc}") from None
            if broken:
                raise SourceError(f"{self.label}: {broken} in the zip from {self.url} is corrupt")
        elif self.is_gzip or self.is_parquet:
            return
        elif url_file_name(self.url).lower().endswith(".zip"):
            raise SourceError(f"{self.label}: {self.url} is not a zip file (starts with {self.first[:8]!r})")


def parquet_incomplete(path: Path, nbytes: int) -> str | None:
    """Why the Parquet file at path is not whole (None: its footer parses and every
    column chunk it lists lies before the footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        return f"its footer does not parse ({exc})"
    end = nbytes - 8 - meta.serialized_size
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for c in range(group.num_columns):
            chunk = group.column(c)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                start = min(start, chunk.dictionary_page_offset)
            if start < 4 or start + chunk.total_compressed_size > end:
                return f"row group {rg} column {chunk.path_in_schema} lies outside the file's {nbytes:,} bytes"
    return None


def _chunked(response) -> bool:
    return "chunked" in response.headers.get("Transfer-Encoding", "").lower()


def _check_unframed(
    session, url: str, label: str, timeout: float, verifier: _Verifier, nbytes: int, chunked: bool
) -> str:
    """A body without a Content-Length: how its completeness is shown.

    First a HEAD request: a length it declares must be the bytes received (else the body
    was cut, worth another attempt). Without one, gzip, Parquet and zip are taken on the
    structure that ends them (checked by the verifier), and a chunked body on its last
    chunk (a proxy whose upstream broke off may still send one, hence the HEAD first);
    anything else, a plain CSV above all, ended only by the connection closing, looks the
    same cut at a line break as whole, and is refused.
    """
    import requests

    try:
        # The representation the GET asked for: a compressed one would declare another length.
        version = head(session, url, timeout, headers=IDENTITY)
        declared, head_failed = (version.content_length if version is not None else None), ""
    except requests.RequestException as exc:
        declared, head_failed = None, f" (a HEAD request for it failed: {exc})"
    if declared is not None:
        if declared != nbytes:
            raise TransientBodyError(
                f"connection closed after {nbytes:,} of the {declared:,} bytes a HEAD request announced"
            )
        return "Content-Length of a HEAD request"
    if verifier.kind in ("gzip", "parquet", "zip"):
        return f"{verifier.kind} end marker"
    if chunked:
        return "last chunk of its chunked transfer"
    raise SourceError(
        f"{label}: {url} was sent without a length (no Content-Length, not chunked){head_failed} and a plain "
        f"file has no end marker, so the {nbytes:,} bytes received cannot be shown to be the whole file; nothing "
        "is published. Serve it with a Content-Length, or gzip it (its trailer proves the end)"
    )


def download(
    session: requests.Session,
    url: str,
    dest: Path,
    label: str,
    timeout: float,
    attempts: int,
    log: logging.Logger | None = None,
    *,
    backoff: float = 0.5,
    deadline: float | None = None,
) -> Download:
    """Stream url into dest (never fully in memory), verified; retried on broken bodies.

    `timeout` bounds the connection set-up and every single read (a stalled body);
    `deadline` bounds one whole attempt (a body that trickles without ever stalling).
    """

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff, max=max(backoff, 30)),
        retry=tenacity.retry_if_exception_type(TransientBodyError),
        reraise=True,
    )
    try:
        return retrying(_download_once, session, url, dest, label, timeout, deadline, log)
    except TransientBodyError as exc:
        raise SourceError(f"{label}: {exc} from {url} (after {attempts} attempts)") from None


def _broken_body(exc: Exception, nbytes: int, expected: int | None, timeout: float) -> TransientBodyError:
    """Say in words how a body broke off (urllib3 wraps the cause in ProtocolError)."""
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    cause = exc.args[1] if isinstance(exc, ProtocolError) and len(exc.args) > 1 else exc
    if isinstance(exc, ReadTimeoutError) or isinstance(cause, (ReadTimeoutError, TimeoutError)):
        return TransientBodyError(f"no data for {timeout:g} s after {nbytes:,} bytes (read timeout)")
    if isinstance(cause, http.client.IncompleteRead) and expected is not None:
        return TransientBodyError(
            f"connection closed after {nbytes:,} of the {expected:,} bytes its Content-Length announced"
        )
    return TransientBodyError(f"download broke off after {nbytes:,} bytes ({cause})")


class _staged_file:
    """dest opened for writing, where an OSError (disk full, no permission) is a StagingError:
    our side's problem, so it is neither retried nor reported as the source breaking off."""

    def __init__(self, dest: Path, label: str):
        self.dest, self.label = dest, label

    def _fail(self, exc: OSError) -> StagingError:
        return StagingError(f"{self.label}: cannot write the download to {self.dest} (TAXI_STAGING_DIR): {exc}")

    def __enter__(self):
        try:
            self.file = open(self.dest, "wb")
        except OSError as exc:
            raise self._fail(exc) from None
        return self

    def write(self, chunk: bytes) -> None:
        try:
            self.file.write(chunk)
        except OSError as exc:
            raise self._fail(exc) from None

    def __exit__(self, *exc_info) -> None:
        try:
            self.file.close()
        except OSError as exc:
            if exc_info[0] is None:
                raise self._fail(exc) from None


def _download_once(session, url, dest: Path, label, timeout, deadline, log) -> Download:
    import requests

    started = time.monotonic()
    try:
        # identity: store the bytes as published, so Content-Length describes them.
        response = session.get(
            url,
            stream=True,
            allow_redirects=True,
            timeout=timeout,
            headers=IDENTITY,
        )
    except requests.RequestException as exc:
        raise SourceError(f"{label}: cannot reach {url}: {exc}") from None
    with response:
        if response.status_code in (403, 404):
            raise NotPublishedError(f"{label} is not published yet: HTTP {response.status_code} from {url}")
        if response.status_code >= 400:
            retried = len(response.raw.retries.history) if response.raw.retries else 0
            raise SourceError(
                f"{label}: HTTP {response.status_code} {response.reason} from {url} (after {retried} retries)"
            )
        expected = response.headers.get("Content-Length")
        expected_bytes = int(expected) if expected is not None else None
        lower = url_file_name(url).lower()
        verifier = _Verifier(label, url, lower.endswith(".gz"), lower.endswith(".parquet"))
        sha = hashlib.sha256()
        nbytes, last_log = 0, started
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _staged_file(dest, label) as out:
                # read1: whatever has arrived (up to CHUNK), so a trickle is written,
                # hashed and timed as it comes instead of blocking for a full chunk.
                for chunk in iter(lambda: response.raw.read1(CHUNK, decode_content=False), b""):
                    out.write(chunk)
                    sha.update(chunk)
                    verifier.feed(chunk)
                    nbytes += len(chunk)
                    now = time.monotonic()
                    if deadline is not None and now - started > deadline:
                        raise TransientBodyError(
                            f"too slow: {nbytes:,} bytes in {now - started:.1f} s (limit {deadline:g} s per attempt)"
                        )
                    if log and now - last_log >= PROGRESS_EVERY_S:
                        rate = nbytes / (now - started) / 1e6
                        total = f" of {expected_bytes:,}" if expected_bytes else ""
                        log.info(f"{label}: {nbytes:,}{total} bytes, {rate:.1f} MB/s")
                        last_log = now
        except Exception as exc:
            dest.unlink(missing_ok=True)
            if isinstance(exc, (SourceError, TransientBodyError, StagingError)):
                raise
            # urllib3 ProtocolError / ReadTimeoutError / IncompleteRead: the body broke off.
            raise _broken_body(exc, nbytes, expected_bytes, timeout) from None
        if expected_bytes is not None and nbytes != expected_bytes:
            dest.unlink(missing_ok=True)
            raise TransientBodyError(f"got {nbytes:,} bytes but Content-Length said {expected_bytes:,}")
        try:
            verifier.finish(nbytes)
            verifier.check_whole(dest, nbytes)
            complete_by = (
                "declared length"
                if expected_bytes is not None
                else _check_unframed(session, url, label, timeout, verifier, nbytes, _chunked(response))
            )
        except (SourceError, TransientBodyError):
            dest.unlink(missing_ok=True)
            raise
        if log and complete_by != "declared length":
            log.info(f"{label}: sent without a length; the {nbytes:,} bytes are shown whole by the {complete_by}")
        return Download(
            url=url,
            path=dest,
            bytes=nbytes,
            sha256=sha.hexdigest(),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            seconds=time.monotonic() - started,
        )
