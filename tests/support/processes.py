"""Start Lectern's services as real processes for end-to-end tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "planner", "content", "assessment", "prompts")


_GIVEN: set[int] = set()  # ports this process has handed out


def _ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a service to bind, below the ephemeral range.

    A port the kernel picked (bind to 0) is an ephemeral one, which the kernel may also
    give an outgoing connection (the suite opens thousands, to RabbitMQ and PostgreSQL)
    between this check and the service's own bind: the service then fails to start with
    "address already in use". Below that range only a listener can take it; the ports
    handed out here are not handed out twice."""
    floor = _ephemeral_floor()
    if floor > 10_000:
        for _ in range(200):
            port = random.randrange(10_000, floor)
            if port in _GIVEN:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _GIVEN.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **self.env, "LECTERN_HTTP_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout}s: {self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """kill -9: no graceful shutdown."""
        self.stop(signal.SIGKILL)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@dataclass
class Cluster:
    services: dict[str, Service] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    @property
    def gateway(self) -> str:
        return self.services["gateway"].url

    def start(self, names: tuple[str, ...] = SERVICES) -> None:
        try:
            for name in names:
                self.services[name].start()
            for name in names:
                self.services[name].wait_ready()
        except BaseException:
            self.stop()  # no orphan holding database connections into later sessions
            raise

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


def make_cluster(env: dict[str, str], log_dir: Path) -> Cluster:
    log_dir.mkdir(parents=True, exist_ok=True)
    return Cluster(
        {name: Service(name, free_port(), dict(env), log_dir / f"{name}.log") for name in SERVICES}
    )
