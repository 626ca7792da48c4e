"""A small threaded HTTP server that plays the TLC source over a local directory.

Any file under `root` is served as it is, with the validators a downloader keys
its caching on (ETag, Last-Modified, Content-Length). Faults can be injected per
path so reliability tests can reproduce what real downloads do: 5xx bursts, cut
connections, stalls, lying lengths, HTML error pages, truncated gzip.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import shutil
import socket
import sys
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

COPY_CHUNK = 64 * 1024
URL_TEMPLATE_PATH = "/{dataset}/{dataset}_tripdata_{month}.csv.gz"
ZONES_PATH = "/misc/taxi_zone_lookup.csv"
SHAPES_PATH = "/misc/taxi_zones.zip"
# Where the `redirect` fault sends clients; served like root but never faulted,
# the way GitHub release assets bounce to a signed storage URL.
REDIRECT_PREFIX = "_redirected/"

FAULT_KINDS = (
    "status", "cut", "trickle", "wrong_length", "html", "empty", "truncated_gzip", "body", "redirect", "unsized",
    "chunked",
)  # fmt: skip


@dataclass
class Fault:
    """What to do instead of a normal response, for the first `times` requests.

    kind:
      status          respond `status` (500/503/404/429...) with a short text body
      cut             full headers, then close the connection after `nbytes` of body
                      (default: half the file)
      trickle         the whole body, `nbytes` (default 1024) every `delay` seconds
      wrong_length    advertise `extra_length` more bytes than the body, then close
      html            200 with an HTML page (`body` if given), Content-Type text/html
      empty           200 with a zero-byte body
      truncated_gzip  only the first `nbytes` (default: half) of the file, with a
                      matching Content-Length, as a corrupt upstream file would be
      body            200 with `body` instead of the file (`content_type` optional)
      redirect        302 to the same file under /_redirected/ (GitHub-style)
      unsized         200 with no Content-Length and `Connection: close`, then the first
                      `nbytes` (default: all) of the file: the end is only the close
      chunked         200 with Transfer-Encoding: chunked, the first `nbytes` (default:
                      all) of the file, then a proper last chunk (as a proxy whose
                      upstream ended early may send)

    times=None applies the fault to every request. `methods` defaults to GET and
    HEAD for `status`/`redirect` and to GET only for the others, so a HEAD probe
    does not use up a body fault meant for the download.
    """

    kind: str
    times: int | None = None
    status: int = 503
    nbytes: int | None = None
    delay: float = 0.1
    extra_length: int = 1000
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    methods: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.kind == "body" and self.body is None:
            raise ValueError("a 'body' fault needs body=bytes")
        if self.methods is None:
            self.methods = ("GET", "HEAD") if self.kind in ("status", "redirect") else ("GET",)


def content_type(path: str) -> str:
    if path.endswith(".gz"):
        return "application/gzip"
    if path.endswith(".csv"):
        return "text/csv"
    if path.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


def etag_for(size: int, mtime_ns: int) -> str:
    return f'"{size:x}-{mtime_ns:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2).
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Drops idle keep-alive connections instead of holding a thread forever.
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if self.server.mirror.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    # -------------------------------------------------------------- dispatch

    def _handle(self) -> None:
        mirror = self.server.mirror
        relpath = unquote(urlsplit(self.path).path).lstrip("/")
        fault = mirror._record(relpath, self.command, dict(self.headers.items()))
        if fault is not None and fault.kind in ("status", "redirect", "html", "body"):
            return self._fault_without_file(relpath, fault)
        file = mirror._resolve(relpath.removeprefix(REDIRECT_PREFIX))
        if file is None:
            return self._simple(404, b"Not Found\n", "text/plain")
        st = file.stat()
        size, etag = st.st_size, etag_for(st.st_size, st.st_mtime_ns)
        headers = {
            "Content-Type": content_type(relpath),
            "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
            "ETag": etag,
        }
        if fault is not None:
            headers.update(fault.headers)
        else:
            if self._not_modified(etag, st.st_mtime):
                return self._simple(304, None, None, headers)
            return self._send_file(file, 200, headers, size, size)
        assert fault is not None
        if fault.kind == "empty":
            return self._simple(200, b"", headers["Content-Type"], headers)
        if fault.kind == "truncated_gzip":
            n = min(size, size // 2 if fault.nbytes is None else fault.nbytes)
            headers["ETag"] = etag_for(n, st.st_mtime_ns)
            return self._send_file(file, 200, headers, n, n)
        if fault.kind == "cut":
            n = min(size, size // 2 if fault.nbytes is None else fault.nbytes)
            return self._send_file(file, 200, headers, size, n, close=True)
        if fault.kind == "unsized":
            n = size if fault.nbytes is None else min(size, fault.nbytes)
            return self._send_file(file, 200, headers, None, n, close=True)
        if fault.kind == "chunked":
            n = size if fault.nbytes is None else min(size, fault.nbytes)
            return self._send_chunked(file, headers, n)
        if fault.kind == "wrong_length":
            return self._send_file(file, 200, headers, size + fault.extra_length, size, close=True)
        # trickle
        return self._send_file(file, 200, headers, size, size, step=fault.nbytes or 1024, delay=fault.delay)

    def _fault_without_file(self, relpath: str, fault: Fault) -> None:
        if fault.kind == "status":
            reason = self.responses.get(fault.status, ("Error",))[0]
            return self._simple(fault.status, f"{fault.status} {reason}\n".encode(), "text/plain", fault.headers)
        if fault.kind == "redirect":
            location = f"{self.server.mirror.base_url}/{REDIRECT_PREFIX}{relpath}"
            return self._simple(302, b"", "text/plain", {"Location": location, **fault.headers})
        if fault.kind == "html":
            page = fault.body or (
                b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
                b"<body><h1>Sorry, something went wrong.</h1></body></html>\n"
            )
            return self._simple(200, page, "text/html; charset=utf-8", fault.headers)
        assert fault.body is not None  # kind == "body"
        headers = {"ETag": f'"{hashlib.sha256(fault.body).hexdigest()[:32]}"', **fault.headers}
        return self._simple(200, fault.body, fault.content_type or content_type(relpath), headers)

    # -------------------------------------------------------------- responses

    def _not_modified(self, etag: str, mtime: float) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return _etag_matches(inm, etag)
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                return int(mtime) <= email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _simple(
        self, status: int, body: bytes | None, ctype: str | None, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            if name != "Content-Type":
                self.send_header(name, value)
        if body is not None:  # 304 carries neither body nor length
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(
        self,
        file: Path,
        status: int,
        headers: dict[str, str],
        advertised: int | None,
        send: int,
        close: bool = False,
        step: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if advertised is not None:
            self.send_header("Content-Length", str(advertised))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(file, "rb") as fh:
            if step is None:
                _copy(fh, self.wfile, send)
            else:
                self._trickle(fh, send, step, delay)
        self.wfile.flush()
        if close:
            # The client must see EOF right here, not a hanging keep-alive socket.
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_chunked(self, file: Path, headers: dict[str, str], send: int) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(file, "rb") as fh:
            left = send
            while left > 0:
                data = fh.read(min(COPY_CHUNK, left))
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                left -= len(data)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _trickle(self, fh: BinaryIO, total: int, step: int, delay: float) -> None:
        stopping = self.server.mirror._stopping
        sent = 0
        while sent < total and not stopping.is_set():
            data = fh.read(min(step, total - sent))
            if not data:
                break
            self.wfile.write(data)
            self.wfile.flush()
            sent += len(data)
            if sent < total:
                stopping.wait(delay)
        if sent < total:
            self.close_connection = True


def _copy(src: BinaryIO, dst: BinaryIO, length: int) -> None:
    """Stream `length` bytes in chunks; never holds the file in memory."""
    if length >= _size(src):
        shutil.copyfileobj(src, dst, COPY_CHUNK)
        return
    left = length
    while left > 0:
        data = src.read(min(COPY_CHUNK, left))
        if not data:
            break
        dst.write(data)
        left -= len(data)


def _size(fh: BinaryIO) -> int:
    return os.fstat(fh.fileno()).st_size


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mirror: MirrorServer

    def __init__(self, address: tuple[str, int], mirror: MirrorServer):
        self.mirror = mirror
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-body is normal here (timeouts, cut tests).
        exc = sys.exc_info()[1]
        if self.mirror.verbose or not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class MirrorServer:
    """Serve `root` over HTTP in a background thread.

    >>> with MirrorServer(root) as server:
    ...     requests.get(server.url_template.format(dataset="yellow", month="2021-01"))
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: dict[str, Fault] | None = None,
        verbose: bool = False,
    ):
        self.root = Path(root).resolve()
        self.host = host
        self.verbose = verbose
        self._requested_port = port
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._fault_uses: Counter[str] = Counter()
        self._counts: Counter[tuple[str, str]] = Counter()
        # Bounded so a long-running `serve` does not grow without limit.
        self._log: deque[tuple[str, str, dict[str, str]]] = deque(maxlen=10_000)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for relpath, fault in (faults or {}).items():
            self.set_fault(relpath, fault)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> MirrorServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="mirror-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # releases trickling handlers
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url_template(self) -> str:
        """Format with dataset= and month= (YYYY-MM), like the course mirror URL."""
        return self.base_url + URL_TEMPLATE_PATH

    @property
    def zones_url(self) -> str:
        return self.base_url + ZONES_PATH

    @property
    def zone_shapes_url(self) -> str:
        return self.base_url + SHAPES_PATH

    def url(self, relpath: str) -> str:
        return f"{self.base_url}/{relpath.lstrip('/')}"

    # ------------------------------------------------------------ faults and counters

    def set_fault(self, relpath: str, fault: Fault) -> None:
        """Inject `fault` for the URL path `relpath` (relative to root, no leading slash)."""
        with self._lock:
            self._faults[relpath.lstrip("/")] = fault
            self._fault_uses[relpath.lstrip("/")] = 0

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fault_uses.clear()

    def request_count(self, relpath: str, method: str | None = None) -> int:
        """Requests seen for `relpath` (all methods, or only `method`, e.g. "GET")."""
        relpath = relpath.lstrip("/")
        with self._lock:
            if method is not None:
                return self._counts[(relpath, method.upper())]
            return sum(n for (p, _), n in self._counts.items() if p == relpath)

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """Recent requests (up to 10,000) as (method, relpath, request headers), oldest first."""
        with self._lock:
            return list(self._log)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()

    def _record(self, relpath: str, method: str, headers: dict[str, str]) -> Fault | None:
        """Count the request and return the fault to apply to it, if any."""
        with self._lock:
            self._counts[(relpath, method)] += 1
            self._log.append((method, relpath, headers))
            fault = self._faults.get(relpath)
            if fault is None or method not in (fault.methods or ()):
                return None
            if fault.times is not None and self._fault_uses[relpath] >= fault.times:
                return None
            self._fault_uses[relpath] += 1
            return fault

    def _resolve(self, relpath: str) -> Path | None:
        if not relpath:
            return None
        path = (self.root / relpath).resolve()
        # Never serve anything outside root (../ or symlinks pointing out).
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


__all__ = ["FAULT_KINDS", "Fault", "MirrorServer", "content_type", "etag_for"]
