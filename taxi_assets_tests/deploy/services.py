"""The production topology as real processes: a gRPC code server, the webserver and the
daemon, all on 127.0.0.1 with free ports, sharing one DAGSTER_HOME (deploy/dagster.yaml)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import requests
from grpc_health.v1 import health_pb2
from grpc_health.v1.health_pb2_grpc import HealthStub

from taxi_assets_tests.deploy.harness import DEPLOY

BIN = Path(sys.executable).parent
LOCATION = "taxi_assets"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_serving(port: int) -> bool:
    """The code server's gRPC health service says SERVING (its code is loaded)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    every: float = 0.5,
    on_timeout: Callable[[], str] = lambda: "",
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{on_timeout()}")
        time.sleep(every)


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} (pid {self.process.pid}, exit {self.process.poll()}) {self.log}\n" + "\n".join(text)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to this process, SIGKILL after `grace` s; then whatever is left in its own
        process group (its run workers and code-server children)."""
        pid = self.process.pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        try:
            os.killpg(pid, signal.SIGKILL)  # the group this process led (start_new_session)
        except ProcessLookupError:
            pass


@dataclass
class Deployment:
    """Code server + webserver + daemon. `env` holds DAGSTER_PG_* and TAXI_* settings."""

    home: Path
    env: dict[str, str]
    logs: Path
    services: list[Service] = field(default_factory=list)
    webserver_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def _start(self, name: str, args: list[str]) -> Service:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                args,
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def start(self, timeout: float = 120.0) -> Deployment:
        self.logs.mkdir(parents=True, exist_ok=True)
        code_port, self.webserver_port = free_port(), free_port()
        self.env = {
            **os.environ,
            **self.env,
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
            "DAGSTER_CODE_SERVER_PORT": str(code_port),
            "PYTHONUNBUFFERED": "1",
        }
        workspace = str(DEPLOY / "workspace.yaml")
        self._start(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-m", "taxi_assets.definitions",
             "--location-name", LOCATION, "-h", "127.0.0.1", "-p", str(code_port)],
        )  # fmt: skip
        # The webserver and daemon load the location once at start: give them a loaded one.
        wait_for(
            "the code server",
            lambda: self._alive() and grpc_serving(code_port),
            timeout,
            on_timeout=self.tails,
        )
        self._start(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.webserver_port),
                "-w",
                workspace,
            ],
        )
        self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        wait_for("the webserver", self._answers, timeout, on_timeout=self.tails)
        return self

    def _alive(self) -> bool:
        for service in self.services:
            if service.process.poll() is not None:
                raise AssertionError(f"{service.name} exited early\n{self.tails()}")
        return True

    def _answers(self) -> bool:
        self._alive()
        try:
            return requests.get(f"{self.url}/server_info", timeout=2).ok
        except requests.ConnectionError:
            return False

    def tails(self) -> str:
        return "\n".join(service.tail() for service in self.services)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
