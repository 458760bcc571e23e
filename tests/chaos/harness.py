"""The chaos stage: private RabbitMQ and PostgreSQL, the fault-injecting LLM server, and
Lectern's services as real processes with several replicas, which can be killed (-9),
replaced, and cut off from a restarted broker or database.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.fault_llm import read_log
from tests.support.infra import reset_database
from tests.support.private_infra import PrivatePostgres, PrivateRabbit
from tests.support.processes import ROOT, Service, free_port

DATABASE = "lectern"
DEFAULT_REPLICAS = {"gateway": 2, "planner": 1, "content": 2, "assessment": 2, "prompts": 1}


@dataclass
class FaultLLM:
    """The fault server (``tests.support.fault_llm``) as a child process."""

    workdir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "fault-llm.jsonl"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        port_file = self.workdir / "fault-llm.port"
        port_file.unlink(missing_ok=True)
        out = (self.workdir / "fault-llm.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fault_llm", "--port-file", str(port_file),
             "--log", str(self.log_path), *self.args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fault LLM server exited: {self.output()}")
            if port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text())
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"fault LLM server did not start: {self.output()}")

    def set_faults(self, **changes: object) -> None:
        httpx.post(f"{self.url}/_faults", json=changes, timeout=5).raise_for_status()

    def records(self) -> list[dict[str, object]]:
        return read_log(self.log_path)

    def output(self) -> str:
        return (self.workdir / "fault-llm.out").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Slot:
    """One replica's place: a service name and a fixed port; its process is replaceable."""

    name: str
    index: int
    port: int
    service: Service
    generation: int = 0
    ready_once: bool = False


@dataclass
class Stage:
    """Everything a chaos test runs on; ``close`` tears it all down."""

    workdir: Path
    rabbit: PrivateRabbit
    postgres: PrivatePostgres
    llm: FaultLLM
    env: dict[str, str]
    slots: list[Slot] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)  # processes that stopped by themselves

    # -- services
    def add_replicas(self, replicas: dict[str, int]) -> None:
        for name, count in replicas.items():
            for _ in range(count):
                index = sum(1 for s in self.slots if s.name == name)
                port = free_port()
                self.slots.append(Slot(name, index, port, self._service(name, index, port, 0)))

    def _service(self, name: str, index: int, port: int, generation: int) -> Service:
        log = self.workdir / "logs" / f"{name}-{index}-{generation}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return Service(name, port, dict(self.env), log)

    def start_all(self, timeout: float = 120) -> None:
        for slot in self.slots:
            slot.service.start()
        for slot in self.slots:
            slot.service.wait_ready(timeout)
            slot.ready_once = True

    def of(self, name: str) -> list[Slot]:
        return [s for s in self.slots if s.name == name]

    @property
    def gateways(self) -> list[str]:
        return [s.service.url for s in self.of("gateway")]

    def replace(self, slot: Slot) -> None:
        """kill -9 the slot's process and start a new one on the same port."""
        slot.service.kill()
        slot.generation += 1
        slot.ready_once = False
        slot.service = self._service(slot.name, slot.index, slot.port, slot.generation)
        slot.service.start()
        self.kills.append(f"{slot.name}-{slot.index}")

    def poll_ready(self) -> None:
        """Note which replacements have become ready (they may be killed from then on)."""
        for slot in self.slots:
            if not slot.ready_once and readyz(slot.service.url)[0] == 200:
                slot.ready_once = True

    def restart_stopped(self) -> None:
        """Start again any process that exited by itself, as Kubernetes would (noted)."""
        for slot in self.slots:
            proc = slot.service.proc
            if proc is not None and proc.poll() is not None:
                self.exits.append(f"{slot.name}-{slot.index} exited {proc.returncode}")
                slot.generation += 1
                slot.service = self._service(slot.name, slot.index, slot.port, slot.generation)
                slot.service.start()

    async def kill_loop(self, every: float, until: float, rng: random.Random) -> None:
        """kill -9 a random ready replica every ``every`` seconds (±30 %) until ``until``."""
        while time.monotonic() < until:
            pause = every * rng.uniform(0.7, 1.3)
            await asyncio.sleep(max(0.0, min(pause, until - time.monotonic())))
            await asyncio.to_thread(self.restart_stopped)
            await asyncio.to_thread(self.poll_ready)
            candidates = [s for s in self.slots if s.ready_once]
            if candidates and time.monotonic() < until:
                await asyncio.to_thread(self.replace, rng.choice(candidates))

    def wait_all_ready(self, timeout: float = 120) -> dict[str, str]:
        """Wait until every replica answers /readyz 200; the problems of those that do not."""
        deadline = time.monotonic() + timeout
        problems: dict[str, str] = {}
        while time.monotonic() < deadline:
            self.restart_stopped()
            problems = {}
            for slot in self.slots:
                status, body = readyz(slot.service.url)
                if status != 200:
                    problems[f"{slot.name}-{slot.index}"] = f"{status} {body}"
            if not problems:
                return {}
            time.sleep(0.5)
        return problems

    def close(self) -> None:
        for slot in self.slots:
            slot.service.stop(timeout=10)
        self.llm.stop()
        self.rabbit.cleanup()
        self.postgres.cleanup()


def readyz(url: str) -> tuple[int, str]:
    """The service's /readyz status and body (0 when it does not answer)."""
    try:
        resp = httpx.get(f"{url}/readyz", timeout=3)
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__
    return resp.status_code, resp.text


def service_env(stage_db_url: str, amqp_url: str, llm_url: str) -> dict[str, str]:
    """The environment every service of the stage runs with."""
    return {
        "DATABASE_URL": stage_db_url,
        "AMQP_URL": amqp_url,
        "LECTERN_ENVIRONMENT": "test",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LLM_MODEL": "openai/chaos",
        "LLM_API_BASE": f"{llm_url}/v1",
        "LLM_API_KEY": "chaos",
        # a hung provider is given up on after 5 s (the default 120 s fits real models)
        "LLM_TIMEOUT_S": "5",
        "OTEL_SDK_DISABLED": "true",
        # every client comes from 127.0.0.1: per-address limits are not under test here
        "LECTERN_RATE_LIMIT_GUEST_IP": "0/hour",
        "LECTERN_RATE_LIMIT_GENERATE_IP": "0/hour",
        "LECTERN_LOG_LEVEL": "INFO",
    }


def build_stage(workdir: Path, llm_args: list[str]) -> Stage:
    """Start private RabbitMQ and PostgreSQL (migrated) and the fault LLM server."""
    workdir.mkdir(parents=True, exist_ok=True)
    rabbit, postgres = PrivateRabbit(workdir / "rabbit"), PrivatePostgres()
    llm = FaultLLM(workdir, llm_args)
    try:
        rabbit.start()
        postgres.init()
        postgres.start()
        asyncio.run(reset_database(postgres.pg, DATABASE))
        migrated = subprocess.run(
            [sys.executable, "-m", "shared.migrate"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": postgres.url(DATABASE)},
            capture_output=True,
            text=True,
            check=False,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"migrations failed: {migrated.stderr[-2000:]}")
        llm.start()
    except BaseException:
        llm.stop()
        rabbit.cleanup()
        postgres.cleanup()
        raise
    env = service_env(postgres.url(DATABASE), rabbit.url, llm.url)
    return Stage(workdir, rabbit, postgres, llm, env)
