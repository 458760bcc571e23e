"""Benchmark: what the sandbox costs per run, and how many submissions this machine grades.

1. Start cost: an empty module and one trivial test, run sequentially (``--runs``); p50/p95 of
   the wall time seen by the caller and of the child process alone.
2. Throughput: a realistic exercise (a small solution, 3 visible + 3 hidden tests) submitted
   ``--submissions`` times at once through one Sandbox with concurrency = CPU count; prints
   submissions/s and p50/p95 latency (queueing included) per submission, and how long the
   event loop stalled meanwhile (a 1 ms ticker's lateness): the assessment service's LLM
   streams share that loop. Like the service, this runs on uvloop with litellm imported, so
   the process is as large as the service's (starting a child must not copy it).

Both for runners forked by the fork server (the default) and for runners started one by
one (its fallback). No pass/fail: figures only.

    .venv/bin/python bench/sandbox.py            # or: --runs 50 --submissions 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from services.assessment.sandbox import Limits, Sandbox  # noqa: E402

TRIVIAL = {"visible": "def test_ok():\n    assert True\n"}

SOLUTION = '''\
def word_counts(text):
    """How often each lower-cased word occurs, most frequent first, then alphabetical."""
    counts = {}
    for word in text.lower().split():
        word = word.strip(".,;:!?\\"'()")
        if word:
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
'''
VISIBLE = """\
from solution import word_counts

def test_empty():
    assert word_counts("") == []

def test_one_word():
    assert word_counts("Hello") == [("hello", 1)]

def test_order():
    assert word_counts("b a b") == [("b", 2), ("a", 1)]
"""
HIDDEN = """\
def test_punctuation():
    assert word_counts("Hi, hi! HI?") == [("hi", 3)]

def test_ties_are_alphabetical():
    assert word_counts("pear apple fig") == [("apple", 1), ("fig", 1), ("pear", 1)]

def test_long_text():
    text = " ".join(["spam"] * 500 + ["eggs"] * 300)
    assert word_counts(text) == [("spam", 500), ("eggs", 300)]
"""


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def machine_busy_s() -> float:
    """CPU seconds every process of this machine has used (``/proc/stat``, not idle)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def start_cost(runs: int, fork_server: bool) -> None:
    sandbox = Sandbox(Limits(), concurrency=1, fork_server=fork_server)
    await sandbox.run("", TRIVIAL)  # warm the page cache
    caller, child = [], []
    isolation: tuple[str, ...] = ()
    for _ in range(runs):
        started = time.perf_counter()
        result = await sandbox.run("", TRIVIAL)
        caller.append((time.perf_counter() - started) * 1000)
        child.append(result.duration_ms)
        assert result.all_passed, result.reason
        isolation = result.isolation
    await sandbox.aclose()
    print(f"  isolation active: {', '.join(isolation)}")
    print(
        f"  start cost ({runs} sequential runs, empty code, one test): "
        f"caller p50 {percentile(caller, 50):.1f} ms, p95 {percentile(caller, 95):.1f} ms; "
        f"child process p50 {percentile(child, 50):.1f} ms, p95 {percentile(child, 95):.1f} ms"
    )


async def throughput(submissions: int, concurrency: int, fork_server: bool) -> None:
    sandbox = Sandbox(Limits(), concurrency=concurrency, fork_server=fork_server)
    suites = {"visible": VISIBLE, "hidden": HIDDEN}
    latencies: list[float] = []

    async def submit() -> None:
        started = time.perf_counter()
        result = await sandbox.run(SOLUTION, suites)
        latencies.append((time.perf_counter() - started) * 1000)
        assert result.all_passed and len(result.tests) == 6, (result.reason, result.tests)

    stalls: list[float] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append((time.perf_counter() - before) * 1000 - 1)

    await sandbox.start()
    ticker = asyncio.create_task(tick())
    busy = machine_busy_s()
    started = time.perf_counter()
    await asyncio.gather(*(submit() for _ in range(submissions)))
    elapsed = time.perf_counter() - started
    busy = machine_busy_s() - busy
    ticker.cancel()
    await sandbox.aclose()
    print(
        f"  grading ({submissions} submissions of a 6-test exercise, concurrency {concurrency}): "
        f"{submissions / elapsed:.1f} submissions/s in {elapsed:.1f} s; latency incl. queueing "
        f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms"
    )
    print(f"  machine CPU per submission (every process): {busy / submissions * 1000:.1f} ms")
    print(
        f"  event loop meanwhile: stalled p50 {percentile(stalls, 50):.1f} ms, "
        f"p99 {percentile(stalls, 99):.1f} ms, longest {max(stalls):.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--submissions", type=int, default=200)
    args = parser.parse_args()
    cpus = os.cpu_count() or 2
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"machine: {cpus} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}, euid {os.geteuid()}; "
        f"this process: {rss} MB with litellm imported, {type(asyncio.get_running_loop())}"
    )
    for fork_server in (True, False):
        print(
            "runners forked by the fork server (the default):"
            if fork_server
            else "runners started one by one (the fallback):"
        )
        await start_cost(args.runs, fork_server)
        await throughput(args.submissions, cpus, fork_server)


if __name__ == "__main__":
    import litellm  # noqa: F401  (the service's size: see the module docstring)
    import uvloop

    uvloop.run(main())
