"""A private RabbitMQ node and PostgreSQL cluster, for tests that restart their broker or
database (chaos tests): restarting these disturbs nobody else's tests or ``make run``.

Each lives in its own temporary directory on free ports. RabbitMQ runs as a separate
Erlang node (its own name, AMQP and distribution ports, data, logs, config and cookie,
no plugins); PostgreSQL is a fresh ``initdb`` cluster (as the ``postgres`` user when
run as root), listening on 127.0.0.1 only, with durability switched off for speed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import free_port

RABBIT_BIN_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin")
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class InfraUnavailable(RuntimeError):
    """A binary the private infrastructure needs is missing, or it would not start."""


def _rabbit_tool(name: str) -> str:
    # The Debian wrappers in /usr/sbin switch to the rabbitmq user and reset HOME (the
    # Erlang cookie's place); the scripts they call honour our environment as it is.
    for directory in RABBIT_BIN_DIRS:
        path = Path(directory, name)
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise InfraUnavailable(
            f"{name} not found (looked in {', '.join(RABBIT_BIN_DIRS)} and PATH): "
            "install rabbitmq-server (make infra does, as root)"
        )
    return found


def _pg_bin(name: str) -> str:
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), reverse=True)
    for directory in candidates:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise InfraUnavailable(
            f"{name} not found (looked in {PG_BIN_GLOB} and PATH): install postgresql"
        )
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateRabbit:
    """A RabbitMQ node of its own: ``start``, ``stop``, ``restart``, ``url``."""

    def __init__(self, base: Path | None = None) -> None:
        self.server = _rabbit_tool("rabbitmq-server")
        self.ctl = _rabbit_tool("rabbitmqctl")
        self.dir = Path(base or tempfile.mkdtemp(prefix="lectern-chaos-rabbit-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.node = f"lectern-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.pid_file = self.dir / "pid"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "log.console = false\n"
            # a restart must not wait for a disk check on a busy test machine
            "disk_free_limit.absolute = 50MB\n"
        )

    @property
    def url(self) -> str:
        """The AMQP URL of the node's default virtual host."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        d = self.dir
        return {
            **os.environ,
            "HOME": str(d),  # the node's and the CLI's Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.ctl, "-n", self.node, *args],
            env=self._env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 90) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        self.pid_file.unlink(missing_ok=True)
        subprocess.run(
            [self.server, "-detached"],
            env=self._env(),
            cwd=self.dir,  # where the VM writes crash dumps
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists():
            if time.monotonic() > deadline:
                raise InfraUnavailable(f"RabbitMQ node {self.node} wrote no pid file: {self.log()}")
            time.sleep(0.1)
        waited = self._run("wait", str(self.pid_file), "--timeout", str(int(timeout)))
        if waited.returncode != 0 or not _port_open(self.port):
            raise InfraUnavailable(f"RabbitMQ node {self.node} did not start: {waited.stderr}")

    def stop(self) -> None:
        """Stop the node (clients see their connections closed)."""
        if not self.pid_file.exists():
            return
        try:
            stopped = self._run("stop", str(self.pid_file), timeout=60)
        except subprocess.TimeoutExpired:
            stopped = None
        if stopped is None or stopped.returncode != 0:
            self.kill()
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill the node's Erlang VM (no goodbye to clients)."""
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)

    def restart(self, down_s: float = 2.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def queues(self) -> list[str]:
        """The queues of the default virtual host."""
        listed = self._run("list_queues", "-q", "--no-table-headers", "name")
        return [line.strip() for line in listed.stdout.splitlines() if line.strip()]

    def consumers(self) -> dict[str, int]:
        """Consumers per queue on the default virtual host (queues without any: absent).

        From ``list_consumers``: ``list_queues``' consumer count of a quorum queue can
        read 0 for a while after a restart although consumers are attached.
        """
        listed = self._run("list_consumers", "-q", "--no-table-headers", "queue_name")
        if listed.returncode != 0:
            raise InfraUnavailable(f"list_consumers failed: {listed.stderr}")
        out: dict[str, int] = {}
        for line in listed.stdout.splitlines():
            name = line.strip()
            if name:
                out[name] = out.get(name, 0) + 1
        return out

    def log(self) -> str:
        logs = sorted((self.dir / "log").glob("*.log")) if (self.dir / "log").exists() else []
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs) or "(no log)"

    def cleanup(self) -> None:
        """Stop the node and delete its files."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``start``, ``stop``, ``restart``, ``pg``."""

    def __init__(self) -> None:
        self.initdb = _pg_bin("initdb")
        self.pg_ctl = _pg_bin("pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="lectern-chaos-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        if self._as_postgres:
            try:
                shutil.chown(self.dir, user="postgres")
            except (LookupError, PermissionError) as exc:
                raise InfraUnavailable(f"cannot hand {self.dir} to user postgres: {exc}") from exc
        self.dir.chmod(0o755)

    @property
    def pg(self) -> str:
        """``user@host:port`` as tests.support.infra.reset_database takes it."""
        return f"postgres@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``."""
        return f"postgresql+asyncpg://{self.pg}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise InfraUnavailable(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}")

    def init(self) -> None:
        """Create the cluster (trust authentication, user postgres)."""
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=400 "
            # no fsync: only the OS crashing could lose data, and this cluster is thrown
            # away; commits stay synchronous, so an immediate stop loses no commit
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.dir / "postgres.log")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (disconnect clients) or ``immediate`` (a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_s: float = 2.0, mode: str = "immediate") -> None:
        """Stop (``immediate``: as if it crashed), stay down ``down_s`` seconds, start again."""
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and delete its files."""
        with contextlib.suppress(InfraUnavailable, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres(database: str) -> Iterator[PrivatePostgres]:
    """A started private cluster with an empty ``database``, removed afterwards."""
    import asyncio

    from tests.support.infra import reset_database

    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        asyncio.run(reset_database(pg.pg, database))
        yield pg
    finally:
        pg.cleanup()
