"""Child side of the Lectern sandbox: confine this process, then run untrusted code against tests.

Started by ``services.assessment.sandbox`` as ``python -I -S sandbox_runner.py`` in a fresh
working directory, or forked in one by the same file running as a fork server
(:func:`fork_server`), which saves each run the interpreter's start and these imports. It
imports nothing from the project and nothing outside the stdlib.

Protocol: the job arrives as one JSON object on stdin (``nonce``, ``code``, ``suites`` as a list
of ``[name, source]``, ``limits``, ``nproc``). Results leave as JSON lines on a private duplicate
of the original stdout, each carrying the nonce: ``isolation``, ``violation``, ``start``,
``test``, ``cpu``, ``fatal`` (a runner failure) and finally ``final``. They are streamed so
that the parent still has the results of the tests that ran when it has to kill this process.
Everything the untrusted code prints (fds 1 and 2, ``sys.stdout``/``sys.stderr``) goes to the
stderr pipe, capped.

Order matters: read the job, move the protocol off fd 1, enter new namespaces, set rlimits,
drop to ``nobody``, compile, and only then install the audit hook and execute untrusted code.
"""

import ast
import builtins
import io
import json
import math
import mmap
import os
import re
import resource
import signal
import sys
import time
import types

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 1 << 14, 1 << 18

NOBODY = 65534
CPU_EXIT = 152  # what the parent reads as "stopped by the CPU limit" (128 + SIGXCPU)
FILE_SIZE_LIMIT = 1 << 20
OPEN_FILES_LIMIT = 64
MAX_WRITE_OPENS = 100  # with RLIMIT_FSIZE this bounds the disk a run can fill
MAX_REPORTED_VIOLATIONS = 20
MESSAGE_CHARS = 500
EMERGENCY_RESERVE = 1 << 20

PROCESS_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
    }
)
SIGNAL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
NETWORK_EVENTS = frozenset(
    {
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
    }
)
TAMPER_EVENTS = frozenset(
    {"sys.addaudithook", "gc.get_objects", "gc.get_referrers", "gc.get_referents"}
)
# module -> (category, name shown to the learner)
BLOCKED_IMPORTS = types.MappingProxyType(
    {
        "ctypes": ("native", "ctypes"),
        "_ctypes": ("native", "ctypes"),
        "_testcapi": ("native", "_testcapi"),
        "_testinternalcapi": ("native", "_testinternalcapi"),
        "multiprocessing": ("process", "multiprocessing"),
        "_multiprocessing": ("process", "multiprocessing"),
        "_xxsubinterpreters": ("process", "_xxsubinterpreters"),
    }
)
# event -> positions of the path arguments it modifies
WRITE_PATH_EVENTS = types.MappingProxyType(
    {
        "os.remove": (0,),
        "os.rmdir": (0,),
        "os.rename": (0, 1),
        "os.mkdir": (0,),
        "os.symlink": (1,),
        "os.link": (0, 1),
        "os.truncate": (0,),
        "os.chmod": (0,),
        "os.chown": (0,),
        "os.chflags": (0,),
        "os.utime": (0,),
        "os.setxattr": (0,),
        "os.removexattr": (0,),
        "shutil.rmtree": (0,),
    }
)
READ_PATH_EVENTS = types.MappingProxyType(
    {"os.listdir": (0,), "os.scandir": (0,), "os.getxattr": (0,), "os.listxattr": (0,)}
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
READABLE_FILES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/etc/localtime")
AF_UNIX = 1


class CappedWriter(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` for untrusted code: write-through to a fd, capped in bytes.

    Write-through (no buffer) so that output printed before a kill still reaches the parent.
    """

    def __init__(self, fd: int, cap: int) -> None:
        self._fd = fd
        self._left = cap
        self._cap = cap
        self._truncated = False

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def buffer(self) -> "CappedWriter":
        return self  # write() accepts bytes too, which is all code uses .buffer for

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, s) -> int:  # type: ignore[override]
        if isinstance(s, str):
            data = s.encode("utf-8", "backslashreplace")
        elif isinstance(s, bytes | bytearray | memoryview):
            data = bytes(s)
        else:
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._truncated:
            return len(s)
        if len(data) > self._left:
            marker = f"\n[output truncated: more than {self._cap} bytes]\n"
            data = data[: self._left] + marker.encode()
            self._truncated = True
        self._left -= len(data)
        try:
            write_all(self._fd, data)
        except OSError:
            self._left = 0
        return len(s)

    def flush(self) -> None:
        pass


def write_all(fd: int, data: bytes) -> None:
    """os.write until everything is written (a signal can interrupt a large pipe write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def is_world_traversable(path: str) -> bool:
    """Whether ``nobody`` can reach ``path`` (every ancestor has o+x)."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def enter_namespaces(is_root: bool, scratch_dir: str, stdlib: str) -> list[str]:
    """Best effort: a private network namespace (no interfaces but a down loopback), and as
    root, if ``nobody`` could not read the stdlib, a mount namespace exposing it read-only
    under ``scratch_dir``. Returns the isolation labels obtained."""
    labels: list[str] = []
    try:
        import ctypes
    except ImportError:
        return labels
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        need_bind = is_root and not is_world_traversable(stdlib)
        if is_root:
            attempts = [CLONE_NEWNET | (CLONE_NEWNS if need_bind else 0), CLONE_NEWNET]
        else:
            # a user namespace grants the capabilities needed for the network namespace
            attempts = [CLONE_NEWUSER | CLONE_NEWNET]
        for flags in attempts:
            if libc.unshare(flags) == 0:
                labels.append("netns")
                if flags & CLONE_NEWNS and bind_stdlib(libc, scratch_dir, stdlib):
                    labels.append("mountns")
                break
    finally:
        # the untrusted code must not find ctypes already imported (the import hook blocks it)
        for name in [m for m in sys.modules if m == "_ctypes" or m.partition(".")[0] == "ctypes"]:
            del sys.modules[name]
    return labels


def bind_stdlib(libc, scratch_dir: str, stdlib: str) -> bool:
    """Bind the stdlib read-only at ``scratch_dir/stdlib`` and point sys.path at it."""
    target = os.path.join(scratch_dir, "stdlib")
    # mounts made here must not propagate back to the host's namespace
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    try:
        os.mkdir(target, 0o755)
    except FileExistsError:
        pass
    if libc.mount(stdlib.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
        return False
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    libc.mount(None, target.encode(), None, flags, None)

    def moved(path: str) -> str:
        return (
            target + path[len(stdlib) :]
            if path == stdlib or path.startswith(stdlib + "/")
            else path
        )

    sys.path[:] = [moved(p) for p in sys.path]
    # packages imported so far (collections, encodings...) find their submodules via __path__
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [moved(p) for p in search]
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.submodule_search_locations is search:
                continue
            if spec is not None and isinstance(spec.submodule_search_locations, list):
                spec.submodule_search_locations[:] = [
                    moved(p) for p in spec.submodule_search_locations
                ]
    sys.path_importer_cache.clear()
    return True


def set_rlimits(limits: dict, nproc: int) -> None:
    """CPU, address space, file size, open files, no core dumps, processes."""
    cpu = int(limits["cpu_seconds"])
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_LIMIT, OPEN_FILES_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_to_nobody(workdir: str) -> None:
    """Become uid/gid 65534 with no supplementary groups; the working dir becomes ours."""
    os.chown(workdir, NOBODY, NOBODY)
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    if os.getresuid() != (NOBODY,) * 3 or os.getresgid() != (NOBODY,) * 3:
        raise RuntimeError("could not drop privileges")


def make_audit_hook(workdir: str, read_roots: tuple[str, ...], report, allow_processes: bool):
    """The audit hook that blocks forbidden operations; ``report(category, what)`` is called
    before raising so a violation counts even if the code catches the PermissionError.

    Defence in depth only: audit hooks are not a security boundary (the uid, namespaces and
    rlimits are); this layer turns attempts into clear, early reports."""
    write_opens = 0

    def resolve(path):
        if isinstance(path, int) or path is None:
            return None  # an already-open descriptor: checked when it was opened
        try:
            path = os.fsdecode(os.fspath(path))
            if not os.path.isabs(path):
                path = os.path.join(os.getcwd(), path)
            return os.path.realpath(path)
        except (OSError, TypeError, ValueError):
            return None  # the operation itself will fail on such a path

    def inside(path: str, root: str) -> bool:
        return path == root or path.startswith(root + "/")

    def readable(path: str) -> bool:
        return path in READABLE_FILES or any(inside(path, root) for root in read_roots)

    def deny(category: str, what: str):
        report(category, what)
        raise PermissionError(f"sandbox: {what} is not allowed")

    def hook(event: str, args: tuple) -> None:
        nonlocal write_opens
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2]
            if isinstance(flags, int) and flags >= 0:
                writing = bool(flags & WRITE_FLAGS)
            else:
                writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if writing:
                if path == "/dev/null":
                    return
                if not inside(path, workdir):
                    deny("write", path)
                write_opens += 1
                if write_opens > MAX_WRITE_OPENS:
                    deny("files", f"opening more than {MAX_WRITE_OPENS} files for writing")
            elif not readable(path) and not inside(path, workdir):
                deny("read", path)
        elif event in WRITE_PATH_EVENTS:
            for i in WRITE_PATH_EVENTS[event]:
                path = resolve(args[i]) if i < len(args) else None
                if path is not None and not inside(path, workdir):
                    deny("write", path)
        elif event in READ_PATH_EVENTS:
            path = resolve(args[0] if args and args[0] is not None else ".")
            if path is not None and not (readable(path) or inside(path, workdir)):
                deny("read", path)
        elif event == "import":
            name = args[0]
            blocked = BLOCKED_IMPORTS.get(name) or BLOCKED_IMPORTS.get(name.partition(".")[0])
            if blocked is not None:
                deny(blocked[0], f"import {blocked[1]}")
        elif event in PROCESS_EVENTS:
            if not allow_processes:
                deny("process", event)
        elif event.startswith("socket."):
            if event == "socket.gethostname":
                return
            if event == "socket.__new__" and len(args) > 1 and args[1] == AF_UNIX:
                return  # socketpair() for asyncio's self-pipe; connect/bind stay blocked
            deny("network", event)
        elif event in NETWORK_EVENTS:
            deny("network", event)
        elif event.startswith("ctypes."):
            deny("native", event)
        elif event in SIGNAL_EVENTS:
            deny("signal", event)
        elif event in TAMPER_EVENTS:
            deny("tamper", event)

    return hook


def one_line(text: str) -> str:
    """Whitespace collapsed, capped for a one-line message."""
    text = " ".join(text[: MESSAGE_CHARS * 4].split())  # cut first: str(exc) may be huge
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def safe_repr(value) -> str:
    """repr() of an untrusted object, never raising, capped."""
    try:
        text = repr(value)
    except BaseException:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 120 else text[:119] + "…"


def describe(exc: BaseException, code_file: str) -> str:
    """``Type: message (line N of your code)`` for an exception from untrusted code."""
    try:
        text = str(exc)
    except BaseException:
        text = ""
    name = type(exc).__name__
    message = f"{name}: {text}" if text else name
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == code_file:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is not None:
        message += f" (line {line} of your code)"
    if code_file:
        # the temporary directory's name means nothing to a learner
        message = message.replace(os.path.dirname(code_file) + "/", "")
    return one_line(message)


def explain(left, op: str, right, source: str) -> str:
    """The message of a failed rewritten ``assert a <op> b``: the values, then the source."""
    values = f"{safe_repr(left)} {op} {safe_repr(right)}"
    return f"assert {values}" if values == source else f"assert {values} (checked: {source})"


COMPARE_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


class AssertRewriter(ast.NodeTransformer):
    """Give message-less asserts a pytest-like message: ``assert 3 == 4 (checked: f(1) == 4)``.

    ``assert a == b`` becomes ``assert (_l := a) == (_r := b), explain(_l, "==", _r, src)``:
    same evaluation order, and the explanation is only built when the assert fails."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        if node.msg is not None:
            return node
        source = one_line(ast.unparse(node.test))
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            left = ast.NamedExpr(target=ast.Name("_sandbox_left", ast.Store()), value=test.left)
            right = ast.NamedExpr(
                target=ast.Name("_sandbox_right", ast.Store()), value=test.comparators[0]
            )
            message = ast.Call(
                func=ast.Name("_sandbox_explain", ast.Load()),
                args=[
                    ast.Name("_sandbox_left", ast.Load()),
                    ast.Constant(COMPARE_OPS[type(test.ops[0])]),
                    ast.Name("_sandbox_right", ast.Load()),
                    ast.Constant(source),
                ],
                keywords=[],
            )
            new = ast.Assert(
                test=ast.Compare(left=left, ops=test.ops, comparators=[right]), msg=message
            )
        else:
            new = ast.Assert(test=test, msg=ast.Constant(f"assert {source}"))
        return ast.copy_location(new, node)


def test_names(tree: ast.Module) -> list[str]:
    """Top-level ``test*`` functions in source order (a redefinition keeps its first place)."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            if node.name not in names:
                names.append(node.name)
    return names


def make_pytest_shim() -> types.ModuleType:
    """A tiny ``pytest`` (raises, approx, fail): generated tests often use these, and the
    sandbox has no site-packages."""
    shim = types.ModuleType("pytest")
    shim.__doc__ = "Minimal stand-in for pytest inside the sandbox: raises, approx, fail."

    class RaisesContext:
        def __init__(self, expected, match):
            self.expected, self.match = expected, match
            self.value = self.type = None

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc_type is None:
                raise AssertionError(f"DID NOT RAISE {self.expected}")
            if not issubclass(exc_type, self.expected):
                return False
            self.type, self.value = exc_type, exc
            if self.match is not None and not re.search(self.match, str(exc)):
                raise AssertionError(f"Regex {self.match!r} does not match {str(exc)!r}")
            return True

    def raises(expected, *args, match=None, **kwargs):
        context = RaisesContext(expected, match)
        if not args:
            return context
        with context:
            args[0](*args[1:], **kwargs)
        return context

    class Approx:
        def __init__(self, expected, rel=None, abs=None):
            self.expected = expected
            self.rel = 1e-6 if rel is None else rel
            self.abs = 1e-12 if abs is None else abs

        def _close(self, actual, expected) -> bool:
            if isinstance(expected, dict):
                return (
                    isinstance(actual, dict)
                    and actual.keys() == expected.keys()
                    and all(self._close(actual[k], v) for k, v in expected.items())
                )
            if isinstance(expected, list | tuple):
                return (
                    isinstance(actual, list | tuple)
                    and len(actual) == len(expected)
                    and all(self._close(a, e) for a, e in zip(actual, expected, strict=True))
                )
            if isinstance(expected, int | float | complex) and isinstance(
                actual, int | float | complex
            ):
                if actual == expected:
                    return True
                if isinstance(expected, float) and math.isinf(expected):
                    return False
                return builtins.abs(actual - expected) <= max(
                    self.rel * builtins.abs(expected), self.abs
                )
            return actual == expected

        def __eq__(self, other) -> bool:
            return self._close(other, self.expected)

        __hash__ = None  # type: ignore[assignment]

        def __repr__(self) -> str:
            return f"approx({self.expected!r})"

    def fail(reason: str = "") -> None:
        raise AssertionError(reason or "failed")

    shim.raises, shim.approx, shim.fail = raises, Approx, fail
    return shim


def exit_builtin(code=None):
    """``exit()``/``quit()``: normally added by site, which -S skips."""
    raise SystemExit(code)


def main() -> None:
    """Run one job from stdin; exits 0 after the final line, CPU_EXIT on the CPU limit."""
    job = json.loads(sys.stdin.buffer.read())
    nonce = job["nonce"]
    limits = job["limits"]
    protocol_fd = os.dup(1)
    # bound now: the code can patch json.dumps or os.write, not these references
    dumps, os_write, os_exit = json.dumps, os.write, os._exit

    def emit(event: str, **fields) -> None:
        # leading newline: a partial line the code wrote to this fd cannot swallow ours
        data = memoryview(("\n" + dumps({"n": nonce, "event": event, **fields}) + "\n").encode())
        while data:
            data = data[os_write(protocol_fd, data) :]

    def on_cpu_limit(signum, frame) -> None:
        try:
            emit("cpu")
        finally:
            os_exit(CPU_EXIT)

    # the code's output, from Python or raw fds, goes to the stderr pipe; stdin is empty
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr = CappedWriter(2, int(limits["output_bytes"]))
    sys.stdin = io.StringIO("")
    signal.signal(signal.SIGXCPU, on_cpu_limit)

    try:
        status, reason = prepare_and_run(job, limits, emit)
    except BaseException as exc:
        # a runner bug (or a signal handler the code installed): a short note for the
        # service's log rather than a traceback in the learner's output
        emit("fatal", error=f"{type(exc).__name__}: {exc}")
        os_exit(1)
    emit("final", status=status, reason=reason)
    # no interpreter shutdown: the code's atexit handlers and finalizers never run
    os_exit(0)


def prepare_and_run(job: dict, limits: dict, emit) -> tuple[str, str]:
    """Confine, compile, then run the untrusted code and its tests; (final status, reason)."""
    isolation = confine(limits, int(job["nproc"]))
    emit("isolation", labels=isolation)

    workdir = os.getcwd()
    code_file = os.path.join(workdir, "solution.py")
    with open(code_file, "w", encoding="utf-8", errors="replace") as f:
        f.write(job["code"])  # for `import solution` by path, and line numbers in tracebacks

    compiled = compile_all(job, code_file)
    if isinstance(compiled, str):
        return "syntax_error", compiled

    violations = 0

    def report(category: str, what: str) -> None:
        nonlocal violations
        violations += 1
        if violations <= MAX_REPORTED_VIOLATIONS:
            emit("violation", category=category, what=what)

    # compared with realpath()s in the hook, so resolved the same way
    roots = [p for p in sys.path if p and os.path.isabs(p)] + ["/usr/share/zoneinfo"]
    read_roots = tuple(dict.fromkeys(os.path.realpath(p) for p in roots))
    allow_processes = int(limits["max_processes"]) > 0
    hook = make_audit_hook(os.path.realpath(workdir), read_roots, report, allow_processes)
    # address space given back on MemoryError, so there is room to report it: RLIMIT_AS
    # counts what is mapped, so an untouched mapping reserves it (a bytearray of the same
    # size is zero-filled: 256 pages faulted in, half a millisecond of every run)
    reserve = mmap.mmap(-1, EMERGENCY_RESERVE)
    try:
        sys.addaudithook(hook)  # from here on, untrusted code runs
        return run_untrusted(compiled, code_file, emit)
    except MemoryError:
        reserve.close()  # room to report
        return "memory_limit", ""


def run_untrusted(compiled, code_file: str, emit) -> tuple[str, str]:
    """Execute the code as module ``solution``, then every test; (final status, reason)."""
    code_obj, suites = compiled
    module = types.ModuleType("solution")
    module.__file__ = code_file
    sys.modules["solution"] = module
    try:
        exec(code_obj, module.__dict__)
    except MemoryError:
        return "memory_limit", ""
    except SystemExit as exc:
        reason = f"Your code called exit() while it was being loaded (exit code {exc.code})"
        return "syntax_error", one_line(reason)
    except BaseException as exc:
        reason = f"Your code raised an error when it was loaded: {describe(exc, code_file)}"
        return "syntax_error", one_line(reason)

    memory_exceeded = False
    for suite, suite_code, names in suites:
        namespace = dict(module.__dict__)
        namespace.update(__name__=f"tests_{suite}", _sandbox_explain=explain)
        namespace.pop("__file__", None)
        load_error = None
        try:
            exec(suite_code, namespace)
        except MemoryError:
            memory_exceeded = True
            load_error = "MemoryError"
        except BaseException as exc:
            load_error = describe(exc, code_file)
        for name in names:
            emit("start", suite=suite, name=name)
            started = time.perf_counter()
            if load_error is not None:
                status, message = "error", one_line(f"The tests could not be loaded: {load_error}")
            else:
                status, message = run_test(namespace[name], code_file)
                memory_exceeded = memory_exceeded or message == MEMORY_MESSAGE
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            emit(
                "test",
                suite=suite,
                name=name,
                status=status,
                message=message,
                duration_ms=duration_ms,
            )
    return ("memory_limit" if memory_exceeded else "completed"), ""


MEMORY_MESSAGE = "MemoryError: the memory limit was reached"


def run_test(function, code_file: str) -> tuple[str, str]:
    """Call one test function: (status, one-line message)."""
    try:
        result = function()
        if isinstance(result, types.CoroutineType | types.GeneratorType):
            result.close()
            raise TypeError("async and generator tests are not supported")
    except AssertionError as exc:
        try:
            text = str(exc)
        except BaseException:
            text = ""
        return "failed", one_line(f"AssertionError: {text}" if text else "AssertionError")
    except MemoryError:
        return "error", MEMORY_MESSAGE
    except BaseException as exc:
        return "error", describe(exc, code_file)
    return "passed", ""


def compile_all(job: dict, code_file: str):
    """Compile the code and the suites (asserts rewritten) before any of it runs.

    Returns ``(code, [(suite, code, test names)])``, or the syntax_error reason."""
    try:
        code_obj = compile(job["code"], code_file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" on line {exc.lineno}" if exc.lineno else ""
        text = f": {one_line(exc.text)}" if exc.text and exc.text.strip() else ""
        return f"Your code has a syntax error{where}: {exc.msg}{text}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"Your code could not be compiled: {describe(exc, '')}"
    suites = []
    for name, source in job["suites"]:
        filename = f"<tests:{name}>"
        try:
            tree = ast.parse(source, filename=filename)
            names = test_names(tree)
            tree = ast.fix_missing_locations(AssertRewriter().visit(tree))
            suites.append((name, compile(tree, filename, "exec", dont_inherit=True), names))
        except SyntaxError as exc:
            return f"The test suite '{name}' has a syntax error on line {exc.lineno}: {exc.msg}"
        except (ValueError, RecursionError, MemoryError) as exc:
            return f"The test suite '{name}' could not be compiled: {describe(exc, '')}"
    return code_obj, suites


def confine(limits: dict, nproc: int) -> list[str]:
    """Everything that must happen before untrusted code runs, except the audit hook.
    Returns the isolation labels obtained."""
    is_root = os.geteuid() == 0
    workdir = os.getcwd()
    scratch = os.path.dirname(workdir)  # root-owned, private to this run
    stdlib = os.path.dirname(os.__file__)
    # subprocess's C helper, loaded while the stdlib is still readable, so `import subprocess`
    # or `import asyncio` work; starting a process stays blocked (audit hook, RLIMIT_NPROC)
    import _posixsubprocess  # noqa: F401

    isolation = enter_namespaces(is_root, scratch, stdlib)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    set_rlimits(limits, nproc)
    isolation.append("rlimits")
    if is_root:
        drop_to_nobody(workdir)
        isolation.append("nobody")
    sys.dont_write_bytecode = True
    sys.path.insert(0, workdir)
    builtins.exit = builtins.quit = exit_builtin
    sys.modules["pytest"] = make_pytest_shim()
    isolation.append("audit")
    return isolation


def fork_server() -> None:
    """Serve forks of this warm runner (``--fork-server``); returns when the parent goes away.

    Started once per sandbox with the same minimal environment as a runner. Its stdin is a
    ``SOCK_SEQPACKET`` socket to the parent. Each request is one JSON message (``id``,
    ``workdir``) carrying three descriptors (the new runner's stdin, stdout, stderr); the
    reply is ``{"id", "pid"}`` (or ``{"id", "error"}``), and ``{"exit", "code"}`` follows
    when that runner ends (the code as ``subprocess`` reports it: negative for a signal).
    The child does exactly what a freshly started runner does (:func:`main`) in its own
    session and working directory, so it pays neither the interpreter's start nor these
    imports. This process never runs untrusted code, reads no job, holds no secret (it
    started with the minimal environment), and is single-threaded, so forking it is safe.
    When its socket closes (the service ended), it kills its runners' groups and exits."""
    import gc
    import select
    import socket

    control = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    import _posixsubprocess  # noqa: F401  (what confine() and enter_namespaces() load)
    import ctypes  # noqa: F401

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    runners: set[int] = set()

    def send(**message) -> None:
        control.send(json.dumps(message).encode())

    def reap(block: bool = False) -> None:
        while runners:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            runners.discard(pid)
            try:
                send(exit=pid, code=os.waitstatus_to_exitcode(status))
            except OSError:
                pass  # the parent is gone; keep reaping

    gc.freeze()  # what is loaded now stays shared with every child (no copy on write by gc)
    send(ready=os.getpid())
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
                reap()
                continue
            try:
                data, fds, _, _ = socket.recv_fds(control, 65536, 3)
            except OSError:
                data, fds = b"", []
            if not data:  # the parent closed its end: stop everything that is left
                for fd_ in fds:
                    os.close(fd_)
                for pid in list(runners):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                reap(block=True)
                os._exit(0)
            request = None
            try:
                request = json.loads(data)
                if len(fds) != 3:
                    raise ValueError(f"{len(fds)} descriptors, not 3")
                workdir = str(request["workdir"])
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _forked(control, (wake_r, wake_w), fds, workdir)  # never returns
                runners.add(pid)
                send(id=request.get("id"), pid=pid)
            except Exception as exc:
                ident = request.get("id") if isinstance(request, dict) else None
                send(id=ident, error=f"{type(exc).__name__}: {exc}")
            finally:
                for fd_ in fds:
                    os.close(fd_)


def _forked(control, wake: tuple[int, int], fds: list[int], workdir: str) -> None:
    """In a child of the fork server: become a fresh runner for one job, then :func:`main`."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        for fd in wake:
            os.close(fd)
        os.setsid()  # its own session and process group, as start_new_session gives a runner
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.chdir(workdir)
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        del sys.argv[1:]
        main()
    except BaseException as exc:
        try:
            os.write(2, f"sandbox runner: {type(exc).__name__}: {exc}\n".encode())
        except BaseException:
            pass
    finally:
        os._exit(1)


if __name__ == "__main__":
    if sys.argv[1:] == ["--fork-server"]:
        fork_server()
    else:
        main()
