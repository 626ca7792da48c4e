"""A BigQuery emulator for the tests: bqemulator (a BigQuery REST API on DuckDB and SQLGlot), in its
own environment made from deploy/ci/bqemulator.lock, since it pins a DuckDB other than the
project's. The environment is made once (pip from PyPI, about half a minute) under a cache folder
(pytest's, as for the zone index: CI makes it once per fresh clone) keyed by the lock file's
content; the DuckDB spatial extension the emulator loads at start comes from the lock's
duckdb-extension-spatial, installed into the environment's own HOME, so starting it downloads
nothing. A start takes a second or two.

What the emulator is known to get wrong (checked against its 1.4.0; docs/google-cloud.md):
load jobs into a partition decorator (`table$YYYYMM`) are refused; Parquet is inserted by column
position, not by name; `query_and_wait` reports a failed query as an empty success;
`tables.patch` of the schema changes its catalog but not the data, `ALTER TABLE ADD COLUMN` the
data but not the catalog.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = Path(__file__).parents[1] / "deploy" / "ci" / "bqemulator.lock"
START_TIMEOUT_S = 60


def environment(cache: Path) -> Path:
    """The emulator's environment under `cache` (made when missing): its folder, with `venv/`
    and the `home/` the emulator runs with (DuckDB's extension folder is $HOME/.duckdb)."""
    lock = LOCK_FILE.read_bytes()
    folder = cache / hashlib.sha256(lock).hexdigest()[:16]
    ready = folder / "ready"
    if ready.exists():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    # Two test processes (pytest-xdist) may both want it: one makes it, the other waits.
    with open(cache / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if ready.exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # a half-made one
        venv, home = folder / "venv", folder / "home"
        home.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(LOCK_FILE)], check=True)
        # INSTALL from the package's file: the emulator's own `INSTALL spatial` then finds it.
        install = "import duckdb_extensions; duckdb_extensions.import_extension('spatial')"
        subprocess.run([str(venv / "bin" / "python"), "-c", install], check=True, env=emulator_env(home))
        ready.write_text("ok\n")
    return folder


def emulator_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        # Avro support would be a download at start; the project loads Parquet only.
        "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
    }


@contextlib.contextmanager
def running_emulator(cache: Path, project: str) -> Iterator[str]:
    """A started emulator on free 127.0.0.1 ports (its REST API's URL), stopped on exit."""
    folder = environment(cache)
    command = [
        str(folder / "venv" / "bin" / "bqemulator"),
        "start",
        "--rest-host=127.0.0.1",
        "--rest-port=0",
        "--grpc-host=127.0.0.1",
        "--grpc-port=0",
        f"--project={project}",
        "--ephemeral",
        "--log-level=info",
        "--log-format=json",
    ]
    process = subprocess.Popen(
        command,
        env=emulator_env(folder / "home"),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = _wait_for_listen(process)
        # Its log goes on to a pipe: drained, or the emulator blocks once the pipe is full.
        threading.Thread(target=shutil.copyfileobj, args=(process.stdout, open(os.devnull, "w")), daemon=True).start()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_listen(process: subprocess.Popen) -> str:
    """The REST URL from the emulator's `rest.listen` log line (it picks the free port itself)."""
    seen: list[str] = []
    timer = threading.Timer(START_TIMEOUT_S, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            seen.append(line)
            if '"rest.listen"' in line:
                event = json.loads(line[line.index("{") :])
                return f"http://{event['host']}:{event['port']}"
    finally:
        timer.cancel()
    raise RuntimeError(f"bqemulator did not start (exit {process.wait()}):\n{''.join(seen[-20:])}")


class Emulator:
    """A running emulator: its URL and clients of it (the real google-cloud-bigquery client)."""

    def __init__(self, url: str, project: str):
        self.url, self.project = url, project

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def new_dataset(self, prefix: str = "t") -> str:
        """A new empty dataset (its name), so that tests sharing the emulator share no table."""
        import uuid

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.client().create_dataset(f"{self.project}.{name}")
        return name
