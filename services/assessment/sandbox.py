"""Run untrusted Python (learner code, LLM-generated exercises) against tests, out of process.

Each run starts ``sandbox_runner.py`` in a fresh child (``python -I -S``, own session, minimal
environment, fresh working directory). The runner confines itself before any untrusted code
runs: a private network namespace, rlimits (CPU, memory, file size, files, processes), uid
``nobody`` when started as root, and an audit hook that blocks and reports forbidden
operations. This side enforces the wall clock by killing the process group, caps what it
reads, and turns whatever happened into a :class:`RunResult`; ``run()`` never raises because
of what the code did.

    sandbox = Sandbox(Limits(cpu_seconds=2))
    result = await sandbox.run(code, {"visible": visible_tests, "hidden": hidden_tests})
    result.status, result.reason, [t.status for t in result.tests]
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RUNNER_PATH = str(Path(__file__).with_name("sandbox_runner.py"))
# a runner's whole environment (plus HOME and TMPDIR: its working directory)
RUNNER_ENV = types.MappingProxyType(
    {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
)
RUNNER_FAILED = "The exercise runner failed unexpectedly; please try again"
FORK_SERVER_START_TIMEOUT = 10.0
FORK_REPLY_TIMEOUT = 5.0
MAX_SOURCE_BYTES = 100_000
MAX_SUITES = 20
MAX_TESTS = 50
MAX_PROTOCOL_BYTES = 4 * 1024 * 1024
MAX_OUTPUT_FLOOD = 16 * 1024 * 1024  # raw writes past the capped writer, before we kill
CPU_EXIT = 152  # the runner's exit code after SIGXCPU (sandbox_runner.CPU_EXIT)
MESSAGE_CHARS = 500

STATUSES = (
    "completed",
    "syntax_error",
    "timeout",
    "cpu_limit",
    "memory_limit",
    "blocked",
    "crashed",
)

BLOCKED_REASONS = {
    "process": "Your code tried to start a new process ({what}), which is not allowed in exercises",
    "network": "Your code tried to open a network connection ({what}), "
    "which is not allowed in exercises",
    "native": "Your code tried to load native code ({what}), which is not allowed in exercises",
    "signal": "Your code tried to send a signal to a process ({what}), "
    "which is not allowed in exercises",
    "write": "Your code tried to write outside its working directory ({what}), "
    "which is not allowed in exercises",
    "read": "Your code tried to read a file outside its working directory ({what}), "
    "which is not allowed in exercises",
    "files": "Your code tried {what}, which is not allowed in exercises",
    "tamper": "Your code tried to inspect or change the exercise runner ({what}), "
    "which is not allowed in exercises",
}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run."""

    cpu_seconds: int = 2  # RLIMIT_CPU
    memory_mb: int = 256  # RLIMIT_AS
    wall_seconds: float = 5.0  # then the whole process group is killed
    output_bytes: int = 16_000  # captured stdout/stderr of the code, truncated beyond this
    max_processes: int = 0  # extra processes the code may start (0 = none)


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test function."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    suite: str
    status: str  # "passed" | "failed" (AssertionError) | "error" (anything else)
    message: str  # "" when passed, else one human-readable line
    duration_ms: float


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run: overall status, learner-facing reason, per-test results."""

    status: str  # one of STATUSES
    reason: str  # words a learner understands; "" when completed
    tests: list[TestResult]
    output: str  # the code's stdout+stderr, truncated to Limits.output_bytes
    duration_ms: float  # wall time of the child process
    isolation: tuple[str, ...] = field(default=())  # layers that were active in the child

    @property
    def passed(self) -> int:
        """Number of passed tests."""
        return sum(t.status == "passed" for t in self.tests)

    @property
    def all_passed(self) -> bool:
        """Completed, at least one test, and every test passed."""
        return self.status == "completed" and bool(self.tests) and self.passed == len(self.tests)

    def to_json(self) -> dict:
        """A plain JSON-able dict (tests as a list of dicts, isolation as a list)."""
        data = asdict(self)
        data["isolation"] = list(self.isolation)
        return data


def discover(suites: dict[str, str]) -> dict[str, list[str]]:
    """Test function names per suite, from the source (nothing is executed).

    Raises ValueError naming the suite when one does not parse."""
    found: dict[str, list[str]] = {}
    for name, source in suites.items():
        try:
            tree = ast.parse(source, filename=f"<tests:{name}>")
        except SyntaxError as exc:
            raise ValueError(
                f"test suite {name!r} has a syntax error on line {exc.lineno}: {exc.msg}"
            ) from exc
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ValueError(f"test suite {name!r} cannot be parsed: {exc}") from exc
        names: list[str] = []
        for node in tree.body:
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function and node.name.startswith("test") and node.name not in names:
                names.append(node.name)
        found[name] = names
    return found


class Sandbox:
    """Runs code against test suites in confined child processes, a bounded number at once."""

    def __init__(
        self,
        limits: Limits = Limits(),
        *,
        concurrency: int | None = None,
        python: str = sys.executable,
        fork_server: bool = True,
    ) -> None:
        """``concurrency``: at most this many children at once (default: the CPU count).
        ``fork_server``: fork runners from a warm runner process (see :class:`_ForkServer`)
        rather than start each one; a run falls back to starting its own runner whenever
        the fork server cannot be had."""
        self.limits = limits
        self.concurrency = concurrency or os.cpu_count() or 2
        self.python = python
        self.fork_server = fork_server
        self._slots = asyncio.Semaphore(self.concurrency)
        self._server: _ForkServer | None = None
        self._server_lock = asyncio.Lock()
        self._server_retry_at = 0.0

    async def start(self) -> None:
        """Start the fork server now rather than at the first run (a service's startup)."""
        if self.fork_server:
            await self._forks()

    async def aclose(self) -> None:
        """Stop the fork server (and with it any runner still running)."""
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def _forks(self) -> _ForkServer | None:
        """The running fork server, started if need be; None when it cannot be had."""
        server = self._server
        if server is not None and server.usable():
            return server
        async with self._server_lock:
            server = self._server
            if server is not None and server.usable():
                return server
            if time.monotonic() < self._server_retry_at:
                return None
            self._server = None
            if server is not None:
                await server.close()
            try:
                self._server = await _ForkServer.start(self.python)
            except OSError as exc:
                log.warning("sandbox: no fork server (%s); runners start one by one", exc)
                self._server_retry_at = time.monotonic() + 30
            return self._server

    def discover(self, suites: dict[str, str]) -> dict[str, list[str]]:
        """Test function names per suite (see :func:`discover`)."""
        return discover(suites)

    async def run(
        self, code: str, suites: dict[str, str], *, limits: Limits | None = None
    ) -> RunResult:
        """Run ``code`` as module ``solution``, then every ``test*`` function of every suite
        (suite order, then source order).

        Raises ValueError for caller errors (sizes, too many tests, bad limits) before any
        process starts; whatever the code does ends up in the returned RunResult."""
        limits = limits or self.limits
        _check_limits(limits)
        _check_sources(code, suites)
        try:
            names = discover(suites)
        except ValueError as exc:
            reason = str(exc)
            return RunResult("syntax_error", reason[0].upper() + reason[1:], [], "", 0.0)
        count = sum(len(n) for n in names.values())
        if count > MAX_TESTS:
            raise ValueError(f"{count} tests given, at most {MAX_TESTS} per run")
        async with self._slots:
            return await self._run_child(code, suites, limits)

    async def _run_child(self, code: str, suites: dict[str, str], limits: Limits) -> RunResult:
        nonce = secrets.token_hex(16)
        # a root-owned, traversable but unlistable directory holding the working dir, so
        # other sandboxes (the same uid nobody) cannot find this one's files
        scratch = tempfile.mkdtemp(prefix="lectern-sandbox-")
        try:
            os.chmod(scratch, 0o711)
            workdir = os.path.join(scratch, secrets.token_hex(16))
            os.mkdir(workdir, 0o700)
            job = {
                "nonce": nonce,
                "code": code,
                "suites": list(suites.items()),
                "limits": asdict(limits),
                # RLIMIT_NPROC counts every process of uid nobody, siblings included
                "nproc": 0
                if limits.max_processes == 0
                else self.concurrency * (1 + limits.max_processes),
            }
            return await self._supervise(json.dumps(job).encode(), workdir, nonce, limits)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def _start(self, workdir: str) -> _Child:
        if self.fork_server:
            server = await self._forks()
            if server is not None:
                try:
                    return await _Child.fork(server, workdir)
                except OSError as exc:
                    log.warning("sandbox: fork server failed (%s); starting the runner", exc)
                    server.fail()
        # nothing from the service's environment (secrets, proxies) reaches the child
        env = {**RUNNER_ENV, "HOME": workdir, "TMPDIR": workdir}
        return await _Child.spawn([self.python, "-I", "-S", RUNNER_PATH], cwd=workdir, env=env)

    async def _supervise(self, job: bytes, workdir: str, nonce: str, limits: Limits) -> RunResult:
        started = time.monotonic()
        try:
            child = await self._start(workdir)
        except OSError as exc:
            log.exception("sandbox: could not start the runner")
            reason = f"The exercise runner could not be started ({exc.strerror}); try again"
            return RunResult("crashed", reason, [], "", 0.0)

        protocol = _Protocol(nonce)
        output = bytearray()
        keep = limits.output_bytes + 128  # room for the runner's truncation marker
        watched = False
        try:
            returncode, killed, flooded = await _watch(child, job, protocol, output, keep, limits)
            watched = True
        except RunnerLost:
            log.error("sandbox: the fork server ended during a run")
            if protocol.final is None:
                duration_ms = (time.monotonic() - started) * 1000
                text = _decode(bytes(output[: limits.output_bytes]))
                return RunResult(
                    "crashed", RUNNER_FAILED, list(protocol.tests), text, round(duration_ms, 3)
                )
            returncode, killed, flooded = 0, False, False  # it had finished: its results stand
        finally:
            if not watched:
                # this call was cancelled: neither the child nor its pipes outlive it
                child.kill_group()
                child.close_pipes()
        duration_ms = (time.monotonic() - started) * 1000

        # the runner truncates what the code prints and appends its own marker; more than
        # that means raw writes to the fds, which we cut here
        text = _decode(bytes(output))
        if len(output) > keep:
            text = _decode(bytes(output[: limits.output_bytes]))
            text += f"\n[output truncated: more than {limits.output_bytes} bytes]\n"
        status, reason = _classify(
            protocol,
            returncode,
            timed_out=killed and not flooded,
            flooded=flooded,
            duration_ms=duration_ms,
            limits=limits,
        )
        tests = list(protocol.tests)
        if protocol.running is not None and status != "completed":
            suite, name, since = protocol.running
            elapsed = (time.monotonic() - since) * 1000
            tests.append(TestResult(name, suite, "error", _cap(f"Stopped: {reason}"), elapsed))
        return RunResult(
            status, reason, tests, text, round(duration_ms, 3), tuple(protocol.isolation)
        )


Stdio = tuple[socket.socket, socket.socket, socket.socket]


def _stdio() -> tuple[Stdio, Stdio]:
    """A runner's stdin, stdout and stderr: (our ends, its ends).

    Connected sockets, not pipes: uvloop closes a transport's descriptor itself and then
    closes the file object it was given, so a pipe's number was closed twice, the second
    time possibly as another thread's newly opened file (``rmtree`` of an earlier run failed
    with EBADF). A socket object it detaches instead."""
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
    ours = (pairs[0][0], pairs[1][0], pairs[2][0])
    theirs = (pairs[0][1], pairs[1][1], pairs[2][1])
    return ours, theirs


def _close_all(ends: Stdio) -> None:
    for end in ends:
        end.close()


class _Child:
    """A runner process whose stdio and exit the running event loop watches.

    Either forked by the fork server (:meth:`fork`), which reports its exit, or started with
    ``subprocess`` (:meth:`spawn`: vfork then exec, about 1 ms) rather than the event loop's
    own subprocess support: uvloop forks, which copies the page tables of the whole service
    (about 14 ms for 250 MB, with the loop blocked and every LLM stream of the process
    waiting). A started child's exit is read from a pidfd, so no thread or SIGCHLD handler
    is involved."""

    def __init__(
        self,
        pid: int,
        pipes: Stdio,
        exited: asyncio.Future[int],
    ) -> None:
        self.pid = pid
        self.exited = exited
        self.stdin: asyncio.WriteTransport | None = None
        self.stdout = asyncio.StreamReader(limit=65536)
        self.stderr = asyncio.StreamReader(limit=65536)
        self._pipes = pipes
        self._transports: list[asyncio.BaseTransport] = []
        # pipes not yet handed to a transport (which then owns and closes them)
        self._unconnected = list(pipes)

    @classmethod
    async def spawn(cls, argv: list[str], *, cwd: str, env: dict[str, str]) -> _Child:
        """Start a runner process of our own."""
        ours, theirs = _stdio()
        try:
            popen = subprocess.Popen(  # noqa: ASYNC220 (vfork + exec: see the class docstring)
                argv,
                cwd=cwd,
                env=env,
                stdin=theirs[0].fileno(),
                stdout=theirs[1].fileno(),
                stderr=theirs[2].fileno(),
                start_new_session=True,
            )
        except BaseException:
            _close_all(ours)
            raise
        finally:
            _close_all(theirs)
        exited = asyncio.get_running_loop().create_future()
        return await cls(popen.pid, ours, exited)._connected(popen)

    @classmethod
    async def fork(cls, server: _ForkServer, workdir: str) -> _Child:
        """A runner forked by ``server`` in ``workdir``; OSError when the server fails."""
        pid, pipes, exited = await server.fork(workdir)
        return await cls(pid, pipes, exited)._connected()

    async def _connected(self, popen: subprocess.Popen[bytes] | None = None) -> _Child:
        """Watch its stdio (and its exit, when started here); if that fails, end it."""
        try:
            if popen is not None:
                self._watch_exit(popen)
            await self._connect()
        except BaseException:
            self.kill_group()
            self.close_pipes()
            raise
        return self

    def _watch_exit(self, popen: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: a thread waits instead
            waiter = asyncio.ensure_future(asyncio.to_thread(popen.wait))
            waiter.add_done_callback(lambda w: self._set_exit(w.result()))
            return

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._set_exit(popen.wait())  # exited already: waitpid returns at once

        loop.add_reader(pidfd, on_exit)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        stdin, stdout, stderr = self._pipes
        self.stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, stdin)
        self._transports.append(self.stdin)
        self._unconnected.remove(stdin)
        for reader, pipe in ((self.stdout, stdout), (self.stderr, stderr)):
            transport, _ = await loop.connect_read_pipe(
                lambda r=reader: asyncio.StreamReaderProtocol(r), pipe
            )
            self._transports.append(transport)
            self._unconnected.remove(pipe)

    def _set_exit(self, returncode: int) -> None:
        if not self.exited.done():
            self.exited.set_result(returncode)

    def kill_group(self) -> None:
        """SIGKILL the child's process group (its own session: the child and what it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def close_pipes(self) -> None:
        """Close our ends of its stdio: readers see EOF (the exit is still reaped)."""
        for transport in self._transports:
            transport.close()
        for pipe in self._unconnected:
            pipe.close()


class RunnerLost(OSError):
    """The fork server ended while one of its runners ran: that runner's end is unknown."""


class _ForkServer:
    """``sandbox_runner.py --fork-server``: a warm runner process that forks each run's runner.

    Starting a runner costs about 20 ms of CPU (the interpreter's start and the runner's
    imports; confining it, 2 ms); a fork of this small process costs well under 1 ms, and
    the child confines itself exactly as a started runner does. Requests and replies are
    JSON messages on a ``SOCK_SEQPACKET`` socket; each fork request carries the runner's
    three stdio sockets, and the server reports each runner's exit code (it is their parent).
    When the server dies, the exits of its runners can no longer be known: their groups
    are killed, and their runs end as the runner's failure (unless a run had already
    reported its final result). The server process ends when this side closes the socket,
    so it does not outlive the service."""

    def __init__(self, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.popen = popen
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[int] = self.loop.create_future()
        self.failed = False
        self._ids = 0
        # a fork's reply: the runner's pid and the future its exit code will resolve
        self._replies: dict[int, asyncio.Future[tuple[int, asyncio.Future[int]]]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self.loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def start(cls, python: str) -> _ForkServer:
        """Start the server and wait until it can fork; OSError when it cannot be had."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            popen = subprocess.Popen(  # noqa: ASYNC220 (vfork + exec, as for a runner)
                [python, "-I", "-S", RUNNER_PATH, "--fork-server"],
                cwd="/",
                env=dict(RUNNER_ENV),
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        server = cls(popen, ours)
        try:
            await asyncio.wait_for(server.ready, FORK_SERVER_START_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            await server.close()
            raise OSError(f"the fork server did not start: {exc or 'timed out'}") from exc
        except BaseException:
            await server.close()
            raise
        return server

    def usable(self) -> bool:
        """Running, on the running event loop, and not given up on."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return not self.failed and self.sock.fileno() >= 0 and loop is self.loop

    async def fork(self, workdir: str) -> tuple[int, Stdio, asyncio.Future[int]]:
        """Fork a runner in ``workdir``: (pid, our ends of its stdio, its exit code to come)."""
        if not self.usable():
            raise OSError("the fork server is gone")
        self._ids += 1
        ident = self._ids
        reply = self._replies[ident] = self.loop.create_future()
        ours, theirs = _stdio()
        try:
            request = json.dumps({"id": ident, "workdir": workdir}).encode()
            socket.send_fds(self.sock, [request], [end.fileno() for end in theirs])
        except BaseException:
            self._replies.pop(ident, None)
            _close_all(ours)
            raise
        finally:
            _close_all(theirs)
        try:
            pid, exited = await asyncio.wait_for(reply, FORK_REPLY_TIMEOUT)
        except BaseException as exc:
            self._replies.pop(ident, None)
            _close_all(ours)
            if isinstance(exc, TimeoutError):
                raise OSError("the fork server did not answer") from exc
            raise
        return pid, ours, exited

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost("the fork server ended")
                return
            try:
                message = json.loads(data)
            except ValueError:
                log.warning("sandbox: fork server said %.200r", data)
                continue
            if "ready" in message:
                if not self.ready.done():
                    self.ready.set_result(int(message["ready"]))
            elif "exit" in message:
                exited = self._exits.pop(int(message["exit"]), None)
                if exited is not None and not exited.done():
                    exited.set_result(int(message["code"]))
            elif "pid" in message:
                pid = int(message["pid"])
                # handed over with the pid: its exit may be read before the caller resumes
                exited = self._exits[pid] = self.loop.create_future()
                reply = self._replies.pop(message.get("id"), None)
                if reply is not None and not reply.done():
                    reply.set_result((pid, exited))
                else:  # nobody waits for it any more (timed out): stop it
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
            else:
                reply = self._replies.pop(message.get("id"), None)
                if reply is not None and not reply.done():
                    reply.set_exception(OSError(f"fork failed: {message.get('error')}"))

    def fail(self) -> None:
        """Give up on this server: the next run starts a new one."""
        self._lost("given up")

    def _lost(self, why: str) -> None:
        self.failed = True
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # RuntimeError: closed
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if not self.ready.done():
            self.ready.set_exception(OSError(why))
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(OSError(why))
        self._replies.clear()
        for pid, exited in self._exits.items():
            # their parent is gone, and with it their exit codes: end them
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            if not exited.done():
                exited.set_exception(RunnerLost(why))
        self._exits.clear()

    async def close(self) -> None:
        """Close the socket (the server kills its runners and exits) and reap it."""
        if not self.failed:
            self._lost("closed")
        try:
            await asyncio.to_thread(self.popen.wait, 5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)


async def _watch(
    child: _Child,
    job: bytes,
    protocol: _Protocol,
    output: bytearray,
    keep: int,
    limits: Limits,
) -> tuple[int, bool, bool]:
    """Feed the job, read both pipes, enforce the wall clock and the output caps.

    Returns (returncode, killed by us, killed for flooding)."""
    flood = asyncio.Event()
    assert child.stdin is not None
    # buffered by the transport; a child that died early closes it, which is not our error
    child.stdin.write(job)
    child.stdin.close()
    # the pumps read to EOF whatever happens, so a flood is read and dropped, not left to
    # block the child on a full pipe
    pumps = asyncio.gather(
        _pump(child.stdout, protocol.feed, MAX_PROTOCOL_BYTES, flood),
        _pump(child.stderr, _keep_into(output, keep), MAX_OUTPUT_FLOOD, flood),
    )
    flooding = asyncio.create_task(flood.wait())
    try:
        await asyncio.wait(
            {child.exited, flooding},
            timeout=limits.wall_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        killed = not child.exited.done()
        if killed or limits.max_processes:
            # the whole group: with max_processes the code may have left children behind
            child.kill_group()
        returncode = await child.exited
        try:
            # what the child wrote before it ended is still in the pipes
            await asyncio.wait_for(asyncio.shield(pumps), timeout=2.0)
        except TimeoutError:
            # a process outside the group (setsid) still holds a pipe: close our ends
            log.warning("sandbox: pipes still open after the runner ended; closing them")
            child.close_pipes()
            await pumps
        return returncode, killed, flood.is_set()
    finally:
        flooding.cancel()
        pumps.cancel()
        await asyncio.gather(pumps, flooding, return_exceptions=True)
        child.close_pipes()


class _Protocol:
    """Parses the runner's JSON lines as they arrive; ignores lines without the nonce."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self.pending = b""
        self.tests: list[TestResult] = []
        self.violations: list[tuple[str, str]] = []
        self.isolation: list[str] = []
        self.running: tuple[str, str, float] | None = None
        self.final: dict | None = None
        self.cpu = False
        self.fatal: str | None = None

    def feed(self, chunk: bytes) -> None:
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                self._line(line)

    def _line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict) or msg.get("n") != self.nonce:
            return
        try:
            self._event(msg)
        except (KeyError, TypeError, ValueError):
            log.warning("sandbox: malformed runner message %.200r", line)

    def _event(self, msg: dict) -> None:
        event = msg.get("event")
        if event == "start":
            self.running = (str(msg["suite"]), str(msg["name"]), time.monotonic())
        elif event == "test":
            self.running = None
            status = msg["status"] if msg["status"] in ("passed", "failed", "error") else "error"
            self.tests.append(
                TestResult(
                    str(msg["name"]),
                    str(msg["suite"]),
                    status,
                    _cap(_clean(str(msg["message"]))),
                    float(msg["duration_ms"]),
                )
            )
        elif event == "violation":
            self.violations.append((str(msg["category"]), _clean(str(msg["what"]))))
        elif event == "isolation":
            self.isolation = [str(label) for label in msg["labels"]]
        elif event == "cpu":
            self.cpu = True
        elif event == "final":
            self.final = msg
        elif event == "fatal":
            self.fatal = str(msg.get("error"))


def _classify(
    protocol: _Protocol,
    returncode: int,
    *,
    timed_out: bool,
    flooded: bool,
    duration_ms: float,
    limits: Limits,
) -> tuple[str, str]:
    """(status, reason) from what the runner said and how the child ended."""
    if protocol.violations:
        category, what = protocol.violations[0]
        reason = BLOCKED_REASONS.get(category, BLOCKED_REASONS["tamper"]).format(what=what)
        others = len(protocol.violations) - 1
        if others:
            reason += f" (and {others} other forbidden operation{'s' if others > 1 else ''})"
        return "blocked", reason
    memory = f"Your code used more than {limits.memory_mb} MB of memory and was stopped"
    final = protocol.final
    if final is not None and not flooded:
        status = final.get("status")
        if status == "memory_limit":
            return "memory_limit", memory
        if status in ("completed", "syntax_error"):
            return status, _cap(_clean(str(final.get("reason", ""))))
    cpu_killed = returncode in (CPU_EXIT, -signal.SIGXCPU) or (
        returncode == -signal.SIGKILL and not timed_out and duration_ms >= limits.cpu_seconds * 900
    )
    if protocol.cpu or cpu_killed:
        return (
            "cpu_limit",
            f"Your code used more than {limits.cpu_seconds} s of CPU time and was stopped "
            "(an infinite loop?)",
        )
    if timed_out:
        return (
            "timeout",
            f"Your code ran for more than {limits.wall_seconds:g} s and was stopped "
            "(is it waiting or sleeping?)",
        )
    if flooded:
        return "crashed", "Your code wrote far too much output and was stopped"
    if protocol.fatal is not None:
        log.error("sandbox: runner failed: %s", protocol.fatal)
        return "crashed", RUNNER_FAILED
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (very deep recursion?)" if name == "SIGSEGV" else ""
        return "crashed", f"Python crashed while running your code ({name}){hint}"
    return (
        "crashed",
        f"Your code ended the test run early (exit code {returncode}) before the tests finished",
    )


async def _pump(
    stream: asyncio.StreamReader | None, sink, limit: int, flood: asyncio.Event
) -> None:
    """Read ``stream`` to EOF into ``sink``; past ``limit`` bytes set ``flood`` and discard."""
    if stream is None:
        return
    total = 0
    while chunk := await stream.read(65536):
        total += len(chunk)
        if total > limit:
            flood.set()
        else:
            sink(chunk)


def _keep_into(buffer: bytearray, keep: int):
    """A sink that keeps the first ``keep`` bytes and drops the rest."""

    def sink(chunk: bytes) -> None:
        room = keep + 1 - len(buffer)  # one extra byte tells "more came" apart from "exactly"
        if room > 0:
            buffer.extend(chunk[:room])

    return sink


def _check_limits(limits: Limits) -> None:
    if limits.cpu_seconds < 1 or limits.memory_mb < 32 or limits.wall_seconds <= 0:
        raise ValueError(f"unusable limits: {limits}")
    if limits.output_bytes < 0 or limits.max_processes < 0:
        raise ValueError(f"unusable limits: {limits}")


def _check_sources(code: str, suites: dict[str, str]) -> None:
    if not isinstance(code, str) or not isinstance(suites, dict):
        raise TypeError("code must be a str and suites a dict[str, str]")
    if len(code.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise ValueError(f"the code is larger than {MAX_SOURCE_BYTES} bytes")
    if len(suites) > MAX_SUITES:
        raise ValueError(f"{len(suites)} test suites given, at most {MAX_SUITES}")
    for name, source in suites.items():
        if not isinstance(name, str) or not isinstance(source, str):
            raise TypeError("suites must be a dict[str, str]")
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            raise ValueError(f"test suite {name!r} is larger than {MAX_SOURCE_BYTES} bytes")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _clean(text: str) -> str:
    """Lone surrogates (valid in JSON, not in UTF-8) replaced, so results always encode."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _cap(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
