"""The sandbox: untrusted code runs against tests in a confined child process.

Every test runs real child processes (no mocks): correct and wrong solutions, then hostile
code (infinite loops, sleeps, memory bombs, fork/exec, network, writes outside the working
directory, output floods), and checks the service-side process keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from services.assessment.sandbox import MAX_TESTS, Limits, RunResult, Sandbox

IS_ROOT = os.geteuid() == 0

GOOD = "def add(a, b):\n    return a + b\n"
SUITES = {
    "visible": "def test_small():\n    assert add(1, 2) == 3\n\n"
    "def test_zero():\n    assert add(0, 0) == 0\n",
    "hidden": "from solution import add as plus\n\n"
    "def test_negative():\n    assert plus(-1, -2) == -3\n\n"
    "def test_module():\n    import solution\n    assert solution.add(2, 2) == 4\n",
}
FAST = Limits(cpu_seconds=1, wall_seconds=5)


@pytest.fixture(params=["forked", "started"])
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """Runners forked by the fork server (the default), and started one by one (its fallback)."""
    sandbox = Sandbox(FAST, concurrency=4, fork_server=request.param == "forked")
    yield sandbox
    await sandbox.aclose()


def exists(path: str) -> bool:
    return os.path.exists(path)  # a stat: fine to block on in a test


def runner_processes() -> dict[int, tuple[int, bytes]]:
    """Live ``sandbox_runner.py`` processes: pid -> (parent pid, command line)."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"sandbox_runner.py" in cmdline:
            found[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return found


def fork_servers() -> list[int]:
    """This process's fork servers."""
    return [
        pid
        for pid, (parent, cmdline) in runner_processes().items()
        if parent == os.getpid() and b"--fork-server" in cmdline
    ]


def runner_children() -> list[int]:
    """Live runners of this process's runs: started by it, or forked by its fork servers."""
    servers = fork_servers()
    return [
        pid
        for pid, (parent, _) in runner_processes().items()
        if (parent == os.getpid() and pid not in servers) or parent in servers
    ]


def by_name(result: RunResult) -> dict[str, tuple[str, str, str]]:
    return {t.name: (t.suite, t.status, t.message) for t in result.tests}


async def test_correct_solution_passes_visible_and_hidden(sandbox: Sandbox) -> None:
    result = await sandbox.run(GOOD, SUITES)
    assert result.status == "completed", result.reason
    assert result.reason == ""
    assert [(t.suite, t.name) for t in result.tests] == [
        ("visible", "test_small"),
        ("visible", "test_zero"),
        ("hidden", "test_negative"),
        ("hidden", "test_module"),
    ]
    assert result.passed == 4 and result.all_passed
    assert all(t.message == "" and t.duration_ms >= 0 for t in result.tests)
    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["tests"][0] == {
        "name": "test_small",
        "suite": "visible",
        "status": "passed",
        "message": "",
        "duration_ms": result.tests[0].duration_ms,
    }
    assert {"rlimits", "audit"} <= set(result.isolation)
    if IS_ROOT:
        assert {"netns", "nobody"} <= set(result.isolation)


async def test_wrong_solution_fails_with_the_assertion_values(sandbox: Sandbox) -> None:
    result = await sandbox.run("def add(a, b):\n    return a - b\n", SUITES)
    assert result.status == "completed"
    assert not result.all_passed
    tests = by_name(result)
    assert tests["test_small"][1] == "failed"
    assert tests["test_small"][2].startswith("AssertionError: assert -1 == 3")
    assert "add(1, 2) == 3" in tests["test_small"][2]
    assert tests["test_zero"] == ("visible", "passed", "")
    assert result.passed == 1


async def test_an_exception_is_an_error_and_the_other_tests_still_run(sandbox: Sandbox) -> None:
    code = "def add(a, b):\n    if a < 0:\n        return a / 0\n    return a + b\n"
    result = await sandbox.run(code, SUITES)
    tests = by_name(result)
    assert tests["test_negative"][1] == "error"
    assert tests["test_negative"][2].startswith("ZeroDivisionError: division by zero")
    assert "line 3" in tests["test_negative"][2]
    assert [t.status for t in result.tests].count("passed") == 3


async def test_output_of_the_code_is_captured(sandbox: Sandbox) -> None:
    code = GOOD + "print('hello from the code')\nimport sys\nprint('oops', file=sys.stderr)\n"
    result = await sandbox.run(code, SUITES)
    assert result.all_passed
    assert "hello from the code\n" in result.output and "oops\n" in result.output


async def test_a_suite_that_cannot_load_marks_its_tests_as_errors(sandbox: Sandbox) -> None:
    result = await sandbox.run("def plus(a, b):\n    return a + b\n", SUITES)
    assert result.status == "completed"
    tests = by_name(result)
    assert tests["test_negative"][1] == "error"
    assert "ImportError: cannot import name 'add' from 'solution'" in tests["test_negative"][2]
    assert "/tmp" not in tests["test_negative"][2]
    assert tests["test_small"][2] == "NameError: name 'add' is not defined"


async def test_syntax_error_names_the_line(sandbox: Sandbox) -> None:
    result = await sandbox.run("x = 1\n\ndef add(a, b)\n    return a + b\n", SUITES)
    assert result.status == "syntax_error"
    assert "line 3" in result.reason
    assert result.tests == [] and not result.all_passed


async def test_code_that_raises_when_loaded_is_a_syntax_error(sandbox: Sandbox) -> None:
    result = await sandbox.run("import nonexistent_module_xyz\n", SUITES)
    assert result.status == "syntax_error"
    assert "ModuleNotFoundError" in result.reason


async def test_a_broken_test_suite_is_reported_by_name(sandbox: Sandbox) -> None:
    suites = {**SUITES, "hidden": "def test_x(:\n    pass\n"}
    result = await sandbox.run(GOOD, suites)
    assert result.status == "syntax_error"
    assert "'hidden'" in result.reason
    with pytest.raises(ValueError, match="'hidden'"):
        sandbox.discover(suites)
    assert sandbox.discover(SUITES) == {
        "visible": ["test_small", "test_zero"],
        "hidden": ["test_negative", "test_module"],
    }


async def test_infinite_loop_hits_the_cpu_limit_with_partial_results(sandbox: Sandbox) -> None:
    code = "def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n"
    started = time.monotonic()
    result = await sandbox.run(code, SUITES, limits=Limits(cpu_seconds=1, wall_seconds=5))
    assert result.status == "cpu_limit"
    assert "CPU" in result.reason
    assert time.monotonic() - started < 4  # the CPU limit, not the wall clock, stopped it
    statuses = [(t.name, t.status) for t in result.tests]
    assert statuses[:2] == [("test_small", "passed"), ("test_zero", "passed")]
    assert statuses[2] == ("test_negative", "error")
    assert result.tests[2].message.startswith("Stopped")


async def test_sleeping_code_hits_the_wall_clock(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = await sandbox.run(
        "import time\ntime.sleep(60)\n", SUITES, limits=Limits(cpu_seconds=2, wall_seconds=1)
    )
    assert result.status == "timeout"
    assert time.monotonic() - started < 2.0
    assert "1 s" in result.reason


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10**10)\n",
        # pages of 1 MB: the limit is reached in a few hundred steps, long before the CPU one
        "def add(a, b):\n    grow = []\n    while True:\n        grow.append(' ' * 2**20)\n",
    ],
    ids=["bytearray", "growing-list"],
)
async def test_memory_bombs_hit_the_memory_limit(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run(code, SUITES)
    assert result.status == "memory_limit"
    assert "256 MB" in result.reason


@pytest.mark.parametrize(
    "code",
    [
        "import os\nos.fork()\n",
        "import subprocess\nsubprocess.run(['ls'])\n",
        "import os\nos.system('ls')\n",
    ],
    ids=["fork", "subprocess", "system"],
)
async def test_starting_a_process_is_blocked(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run(code, SUITES)
    assert result.status == "blocked"
    assert "process" in result.reason


async def test_a_caught_fork_attempt_is_still_blocked(sandbox: Sandbox) -> None:
    code = GOOD + "import os\ntry:\n    os.fork()\nexcept Exception:\n    pass\n"
    result = await sandbox.run(code, SUITES)
    assert result.status == "blocked"
    assert "os.fork" in result.reason
    assert not result.all_passed
    assert result.passed == 4  # the tests ran; the attempt still decides the status


async def test_network_is_blocked(sandbox: Sandbox) -> None:
    code = "import socket\nsocket.create_connection(('127.0.0.1', 5672), timeout=1)\n"
    result = await sandbox.run(code, SUITES)
    assert result.status == "blocked"
    assert "network" in result.reason


async def test_writing_outside_the_working_directory_is_blocked(sandbox: Sandbox) -> None:
    target = f"/tmp/x-{uuid.uuid4()}"
    code = GOOD + f"try:\n    open({target!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
    result = await sandbox.run(code, SUITES)
    assert result.status == "blocked"
    assert "working directory" in result.reason and target in result.reason
    assert not exists(target)


async def test_writing_inside_the_working_directory_is_fine_and_cleaned_up(
    sandbox: Sandbox,
) -> None:
    code = GOOD + "import os\nopen('notes.txt', 'w').write('x')\nprint(os.getcwd())\n"
    result = await sandbox.run(code, SUITES)
    assert result.all_passed, result.reason
    workdir = result.output.strip()
    assert workdir.startswith("/") and not exists(workdir)
    assert not exists(os.path.dirname(workdir))


@pytest.mark.skipif(not IS_ROOT, reason="privileges are only dropped when started as root")
async def test_code_runs_as_nobody(sandbox: Sandbox) -> None:
    code = GOOD + "import os\nUIDS = os.getresuid()\nGROUPS = os.getgroups()\n"
    suites = {
        "visible": "def test_uid():\n"
        "    assert UIDS == (65534, 65534, 65534)\n"
        "    assert GROUPS == []\n"
    }
    result = await sandbox.run(code, suites)
    assert result.all_passed, (result.reason, result.tests)
    assert "nobody" in result.isolation


async def test_print_spam_is_truncated(sandbox: Sandbox) -> None:
    code = GOOD + "for _ in range(100_000):\n    print('x' * 99)\n"  # 10 MB
    limits = Limits(cpu_seconds=2, wall_seconds=5, output_bytes=4000)
    result = await sandbox.run(code, SUITES, limits=limits)
    assert result.all_passed, result.reason
    assert 4000 <= len(result.output.encode()) <= 4200
    assert result.output.startswith("x" * 99 + "\n")
    assert "output truncated" in result.output


async def test_concurrent_runs_are_kept_apart(sandbox: Sandbox) -> None:
    suites = {"visible": "def test_value():\n    assert value() == EXPECTED\n"}

    async def one(i: int) -> RunResult:
        code = f"EXPECTED = {i}\ndef value():\n    return {i}\n"
        return await sandbox.run(code, suites)

    results = await asyncio.gather(*(one(i) for i in range(8)))
    assert [r.status for r in results] == ["completed"] * 8
    assert all(r.all_passed for r in results)


async def test_cancelling_a_run_kills_the_child(sandbox: Sandbox) -> None:
    limits = Limits(cpu_seconds=1, wall_seconds=20)
    task = asyncio.create_task(sandbox.run("import time\ntime.sleep(30)\n", SUITES, limits=limits))
    await asyncio.sleep(0.5)
    assert runner_children(), "the runner should be sleeping by now"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(20):
        if not runner_children():
            break
        await asyncio.sleep(0.05)
    assert runner_children() == []


def sleepers(marker: str) -> list[int]:
    """Live ``sleep <marker>`` processes (the grandchildren a test leaves behind)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                    found.append(int(entry))
        except OSError:
            continue
    return found


async def test_a_process_that_escapes_the_group_cannot_hold_the_run_open(
    sandbox: Sandbox,
) -> None:
    # with processes allowed, the code starts one in a session of its own that keeps the
    # output pipe open after the runner ends: the run still ends, with the tests' results
    marker = f"{uuid.uuid4().int % 1000 + 30}.{os.getpid()}"
    code = GOOD + (
        "import subprocess\n"
        f"subprocess.Popen(['sleep', {marker!r}], start_new_session=True)\n"
        "print('started')\n"
    )
    limits = Limits(cpu_seconds=2, wall_seconds=5, max_processes=1)
    started = time.monotonic()
    try:
        result = await sandbox.run(code, SUITES, limits=limits)
        assert time.monotonic() - started < 5
        assert result.status == "completed", result.reason
        assert result.all_passed
        assert "started" in result.output
        assert sleepers(marker), "the escaped process should still be running"
    finally:
        for pid in sleepers(marker):
            os.kill(pid, 9)


async def test_caller_errors_raise_before_any_process_starts(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="larger than"):
        await sandbox.run("x = 1\n" * 20_000, SUITES)
    many = "".join(f"def test_{i}():\n    pass\n" for i in range(MAX_TESTS + 1))
    with pytest.raises(ValueError, match="at most"):
        await sandbox.run(GOOD, {"visible": many})


async def test_the_service_keeps_serving_after_hostile_code(sandbox: Sandbox) -> None:
    sandbox.limits = Limits(cpu_seconds=1, wall_seconds=1.5)
    hostile = [
        "while True:\n    pass\n",
        "import time\ntime.sleep(30)\n",
        "x = bytearray(10**10)\n",
        "import os\nos.kill(1, 9)\n",
        "import ctypes\n",
        "import os\nos._exit(0)\n",
        "import sys\nsys.stdout.write('\\udc80' * 10)\nraise SystemExit(3)\n",
        "import os\nos.write(3, b'garbage without newline')\nos.close(3)\n",
        "print(open('/etc/passwd').read())\n",
        "import os\nfor _ in range(400):\n    os.write(1, b'y' * 65536)\n",  # past our caps
    ]
    results = await asyncio.gather(*(sandbox.run(code, SUITES) for code in hostile))
    assert all(r.status != "completed" for r in results), [r.status for r in results]
    for result in results:
        json.dumps(result.to_json())  # whatever happened, the result is storable
    good = await sandbox.run(GOOD, SUITES)
    assert good.all_passed, good.reason


# the fork server: runners forked from one warm runner process


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


WHO = {
    "visible": "import os\n\ndef test_who():\n"
    "    print('parent', os.getppid(), 'home', os.environ['HOME'] == os.getcwd(),\n"
    "          'tmp', os.environ['TMPDIR'] == os.getcwd(), 'env', sorted(os.environ))\n"
}


async def test_runners_are_forked_by_one_warm_server() -> None:
    sandbox = Sandbox(FAST, concurrency=2)
    try:
        first = await sandbox.run("", WHO)
        second = await sandbox.run("", WHO)
        [server] = fork_servers()
        for result in (first, second):
            assert result.all_passed, result.reason
            # confined as a started runner is, with its own HOME and nothing else inherited
            assert f"parent {server} home True tmp True" in result.output
            assert "'HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR'" in result.output
            assert result.isolation[-2:] == ("nobody", "audit") or not IS_ROOT
    finally:
        await sandbox.aclose()
    assert fork_servers() == []


async def test_a_forked_runner_starts_clean_of_the_previous_runs() -> None:
    sandbox = Sandbox(FAST, concurrency=1)
    suites = {"visible": "def test_clean():\n    import json\n    assert not hasattr(json, 'x')\n"}
    try:
        dirty = "import json, os\njson.x = 1\nopen('left.txt', 'w').write('x')\n"
        assert (await sandbox.run(dirty, suites)).passed == 0
        check = "import os\nassert not os.path.exists('left.txt')\n"
        clean = await sandbox.run(check, suites)
        assert clean.all_passed, (clean.reason, clean.tests)
    finally:
        await sandbox.aclose()


async def test_the_fork_server_dying_ends_its_runs_and_the_next_run_gets_a_new_one() -> None:
    sandbox = Sandbox(Limits(cpu_seconds=1, wall_seconds=20), concurrency=2)
    try:
        await sandbox.start()
        [server] = fork_servers()
        started = time.monotonic()
        task = asyncio.create_task(sandbox.run("import time\ntime.sleep(30)\n", SUITES))
        for _ in range(100):
            if runner_children():
                break
            await asyncio.sleep(0.02)
        [runner] = runner_children()
        assert parent_of(runner) == server
        os.kill(server, signal.SIGKILL)
        result = await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 5, "the run must not wait out its wall clock"
        assert result.status == "crashed"
        assert "runner failed unexpectedly" in result.reason
        for _ in range(50):  # the orphaned runner was killed, not left sleeping
            if not alive(runner):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the orphaned runner is still running")
        again = await sandbox.run(GOOD, SUITES)
        assert again.all_passed, again.reason
        assert fork_servers() not in ([], [server])
    finally:
        await sandbox.aclose()


async def test_without_a_fork_server_each_run_starts_its_own_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.assessment import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "RUNNER_PATH", "/nonexistent/sandbox_runner.py")
    sandbox = Sandbox(FAST, concurrency=1)
    try:
        result = await sandbox.run(GOOD, SUITES)  # neither can start: a clear result, no raise
        assert result.status == "crashed" and fork_servers() == []
        monkeypatch.undo()
        # the fork server is not retried at every run: this one starts its own runner
        result = await sandbox.run(GOOD, SUITES)
        assert result.all_passed, result.reason
        assert fork_servers() == []
    finally:
        await sandbox.aclose()


async def test_runs_never_close_a_descriptor_they_do_not_own(sandbox: Sandbox) -> None:
    # uvloop closes a transport's descriptor itself, then the file object it was handed:
    # with pipes, that number was closed twice, the second time as whatever another
    # thread had just opened (the scratch directory's rmtree failed with EBADF, a few
    # runs in a thousand). A thread opening and closing files meanwhile must never find
    # one of its descriptors closed under it.
    import threading

    stolen: list[int] = []
    stop = threading.Event()

    def opener() -> None:
        while not stop.is_set():
            fd = os.open("/dev/null", os.O_RDONLY)
            try:
                os.fstat(fd)
                os.close(fd)
            except OSError:
                stolen.append(fd)

    thread = threading.Thread(target=opener, daemon=True)
    thread.start()
    try:
        for _ in range(40):
            results = await asyncio.gather(*(sandbox.run(GOOD, SUITES) for _ in range(16)))
            assert all(r.all_passed for r in results), [r.reason for r in results]
    finally:
        stop.set()
        thread.join()
    assert stolen == [], f"{len(stolen)} descriptors of another thread were closed"
