"""``lectern status``: is the gateway ready, is each service consuming, what is queued.

Queue depths and consumer counts come from passive queue declares over AMQP (no
management plugin needed, nothing is created). The queue names follow
:mod:`shared.topology`'s naming; which event queues each service subscribes is listed
here (a test checks it against the queues the running services declare).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

from lectern_cli import exit_codes
from lectern_cli.output import Output, table
from shared.client.errors import LecternError

WORKERS = ("planner", "content", "assessment", "prompts")
# each service's durable subscriptions on lectern.events (services/*/handlers.py)
EVENT_QUEUES = {
    "gateway": ("gateway.event-log",),
    "planner": (
        "planner.on-lesson-written",
        "planner.on-assessment-ready",
        "planner.on-job-failed",
        "planner.on-source-ingested",
        "planner.on-source-deleted",
    ),
    "content": (),
    "assessment": ("assessment.on-lesson-written", "assessment.on-lesson-revised"),
    "prompts": ("prompts.llm-calls",),
}
SERVICES = ("gateway", *WORKERS)


@dataclass(frozen=True)
class QueueSpec:
    """A queue the status report reads: its name, owner and role."""

    name: str
    service: str
    kind: str  # commands | events | rpc | retry | dlq


def queue_catalogue() -> list[QueueSpec]:
    """Every queue Lectern's services declare, named as :mod:`shared.topology` names them."""
    from shared.topology import command_queue, dlq_name, retry_queue_name, rpc_queue

    specs: list[QueueSpec] = []
    for service in SERVICES:
        durable: list[tuple[str, str]] = []
        if service in WORKERS:
            durable.append((command_queue(service).name, "commands"))
        durable += [(name, "events") for name in EVENT_QUEUES[service]]
        for name, kind in durable:
            specs.append(QueueSpec(name, service, kind))
        specs.append(QueueSpec(rpc_queue(service).name, service, "rpc"))
        for name, _ in durable:
            specs.append(QueueSpec(retry_queue_name(name), service, "retry"))
            specs.append(QueueSpec(dlq_name(name), service, "dlq"))
    return specs


async def gather(gateway_url: str, amqp_url: str) -> dict[str, Any]:
    """The status document: gateway health, broker reachability, queues, services."""
    from shared.client.broker import LecternBroker, redact
    from shared.client.http import LecternHTTP

    report: dict[str, Any] = {
        "gateway": {"url": gateway_url, "reachable": False, "ready": False, "problems": []},
        "broker": {"url": redact(amqp_url), "reachable": False, "error": None},
        "services": {},
        "queues": [],
    }
    async with LecternHTTP(gateway_url, timeout=5.0) as http:
        try:
            health = await http.health()
            report["gateway"].update(reachable=True, ready=health["ready"])
            report["gateway"]["problems"] = health["problems"]
        except LecternError as exc:
            report["gateway"]["error"] = exc.message
    specs = queue_catalogue()
    try:
        async with LecternBroker(amqp_url, connect_timeout=5.0) as broker:
            infos = {q.name: q for q in await broker.queue_info(s.name for s in specs)}
        report["broker"]["reachable"] = True
    except LecternError as exc:
        report["broker"]["error"] = exc.message
        infos = {}
    for spec in specs:
        info = infos.get(spec.name)
        report["queues"].append(
            {
                **asdict(spec),
                "exists": bool(info and info.exists),
                "messages": info.messages if info else None,
                "consumers": info.consumers if info else None,
            }
        )
    for service in SERVICES:
        # a service is up when it consumes its commands (the gateway: its event log)
        main = next(
            q
            for q in report["queues"]
            if q["service"] == service and q["kind"] in ("commands", "events")
        )
        report["services"][service] = {
            "up": bool(main["consumers"]),
            "queue": main["name"],
            "consumers": main["consumers"],
        }
    report["dead_lettered"] = sum(
        q["messages"] or 0 for q in report["queues"] if q["kind"] == "dlq"
    )
    return report


def exit_code(report: dict[str, Any]) -> int:
    """UNREACHABLE when the gateway or broker does not answer; FAILED when a service is
    down, the gateway is not ready or a queue is missing; OK otherwise."""
    if not report["gateway"]["reachable"] or not report["broker"]["reachable"]:
        return exit_codes.UNREACHABLE
    healthy = (
        report["gateway"]["ready"]
        and all(s["up"] for s in report["services"].values())
        and all(q["exists"] for q in report["queues"])
    )
    return exit_codes.OK if healthy else exit_codes.FAILED


def render(report: dict[str, Any]) -> str:
    """The report as text."""
    gw, br = report["gateway"], report["broker"]
    if not gw["reachable"]:
        gateway = f"unreachable ({gw.get('error')}); start it with `make run`"
    else:
        gateway = "ready" if gw["ready"] else "not ready: " + "; ".join(map(str, gw["problems"]))
    broker = "connected" if br["reachable"] else f"unreachable ({br['error']})"
    lines = [f"gateway  {gw['url']}  {gateway}", f"broker   {br['url']}  {broker}", ""]
    if br["reachable"]:
        rows = [
            [name, "up" if s["up"] else "DOWN", f"{s['consumers'] or 0} on {s['queue']}"]
            for name, s in report["services"].items()
        ]
        lines += [table(rows, ["SERVICE", "STATE", "CONSUMERS"]), ""]
        queues = [q for q in report["queues"] if q["kind"] in ("commands", "events", "rpc")]
        rows = [
            [q["name"], q["kind"], q["messages"], q["consumers"]]
            if q["exists"]
            else [q["name"], q["kind"], "missing", "-"]
            for q in queues
        ]
        lines += [table(rows, ["QUEUE", "KIND", "MESSAGES", "CONSUMERS"]), ""]
        dead = [q for q in report["queues"] if q["kind"] in ("dlq", "retry")]
        rows = [
            [q["name"], q["messages"] if q["exists"] else "missing"]
            for q in dead
            if q["kind"] == "dlq" or (q["messages"] or 0) > 0
        ]
        lines.append(table(rows, ["DEAD-LETTER / RETRY QUEUE", "MESSAGES"]))
        if report["dead_lettered"]:
            lines.append(
                f"\n{report['dead_lettered']} dead-lettered message(s): each has the "
                "reason in its x-lectern-error header"
            )
    return "\n".join(lines)


async def run(args: argparse.Namespace, out: Output) -> int:
    """``lectern status``."""
    report = await gather(args.url, args.amqp)
    code = exit_code(report)
    report["exit_code"] = code
    out.result(report, render(report))
    return code
