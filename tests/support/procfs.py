"""What the kernel says about a process (``/proc``): CPU time and resident memory.

For the benchmarks, which report the CPU and memory of the processes they start (and
of RabbitMQ and PostgreSQL) beside their own figures."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds ``pid`` has used; with ``reaped_children``, also those of
    its children it has waited for (a fork server's short-lived runners, say)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if reaped_children:
        used += int(fields[13]) + int(fields[14])
    return used / TICK


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (every thread's)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


INFRA = (("rabbitmq", "beam.smp"), ("postgresql", "postgres"))


def infra_cpu() -> dict[str, dict[int, float]]:
    """CPU seconds of RabbitMQ's and PostgreSQL's processes on this machine, per label and
    pid (a database backend that ends between two readings drops out of the second)."""
    used: dict[str, dict[int, float]] = {}
    for label, comm in INFRA:
        used[label] = {}
        for pid in pids_named(comm):
            try:
                used[label][pid] = cpu_seconds(pid)
            except OSError:
                continue  # ended meanwhile
    return used


def cpu_reading(processes: dict[str, int]) -> dict[str, dict[int, float]]:
    """CPU seconds of ``processes`` (label -> pid), then of RabbitMQ and PostgreSQL."""
    return {label: {pid: cpu_seconds(pid)} for label, pid in processes.items()} | infra_cpu()


def cpu_between(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
    """CPU seconds per label between two readings (a process that ended meanwhile, such as
    a database backend, is not counted; one that started is, in full)."""
    return {
        label: sum(t - before.get(label, {}).get(pid, 0.0) for pid, t in now.items())
        for label, now in after.items()
    }


def pids_named(name: str) -> list[int]:
    """Processes whose command name (``comm``) is ``name``, e.g. ``beam.smp``."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
