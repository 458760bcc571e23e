"""``lectern generate``: plan a course, accept or refine the plan, watch it being written.

The same conversation runs on the gateway (REST + SSE) or straight on the broker
(``--amqp``); a backend hides which.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any, Protocol

from lectern_cli import exit_codes
from lectern_cli.output import Output
from shared.client.errors import JobFailed, LecternError
from shared.client.events import FINAL_EVENTS, Event

PLAN_STEPS = ("welcome_plan", "refine_plan")  # the chunks that are the plan being written


class UsageError(LecternError):
    """A usage problem found after parsing (exit code 2)."""


class Job:
    """A started job: its id, the events that end it, what the backend needs to follow it."""

    def __init__(
        self, job_id: str, course_id: str, final_events: tuple[str, ...], ref: Any
    ) -> None:
        self.job_id = job_id
        self.course_id = course_id
        self.final_events = final_events
        self.ref = ref


class Backend(Protocol):
    """Where the course is made: the gateway or the broker."""

    where: str

    async def start(self, profile: dict[str, Any], auto: bool) -> Job:
        """Plan a course for ``profile`` (``auto``: on to ``course.ready`` in one job)."""
        ...

    async def refine(self, course_id: str, text: str) -> Job:
        """Ask for a changed plan."""
        ...

    async def finalize(self, course_id: str) -> Job:
        """Finalise the latest plan: lessons and assessments, then ``course.ready``."""
        ...

    def events(self, job: Job) -> AsyncIterator[Event]:
        """The job's events until its final one."""
        ...

    def course_url(self, course_id: str) -> str | None:
        """Where a person opens the course (None when the web app cannot show it)."""
        ...


class GatewayBackend:
    """Through the gateway's REST + SSE API."""

    def __init__(self, client: Any, timeout: float | None, idle_timeout: float | None) -> None:
        self.client = client
        self.where = client.base_url
        self.timeout, self.idle_timeout = timeout, idle_timeout

    def _job(self, accepted: dict[str, Any], kind: str) -> Job:
        return Job(accepted["job_id"], accepted["course_id"], FINAL_EVENTS[kind], accepted)

    async def start(self, profile: dict[str, Any], auto: bool) -> Job:
        accepted = await self.client.create_course(**profile, auto_finalize=auto)
        return self._job(accepted, "plan_course_auto" if auto else "plan_course")

    async def refine(self, course_id: str, text: str) -> Job:
        return self._job(await self.client.refine(course_id, text), "refine_plan")

    async def finalize(self, course_id: str) -> Job:
        return self._job(await self.client.finalize(course_id), "finalize_course")

    def events(self, job: Job) -> AsyncIterator[Event]:
        return self.client.events(  # type: ignore[no-any-return]
            job.job_id, timeout=self.timeout, idle_timeout=self.idle_timeout
        )

    def course_url(self, course_id: str) -> str | None:
        return f"{self.client.base_url}/courses/{course_id}"


class BrokerBackend:
    """Straight on RabbitMQ: commands with confirms, events from the job's own queue."""

    def __init__(
        self, broker: Any, gateway_url: str | None, timeout: float | None, idle: float | None
    ) -> None:
        self.broker = broker
        from shared.client.broker import redact

        self.where = redact(broker.amqp_url)
        self.gateway_url = gateway_url
        self.timeout, self.idle_timeout = timeout, idle

    def _job(self, handle: Any) -> Job:
        return Job(handle.job_id, handle.course_id or "", tuple(handle.final_events), handle)

    async def start(self, profile: dict[str, Any], auto: bool) -> Job:
        return self._job(await self.broker.plan_course(**profile, auto_finalize=auto))

    async def refine(self, course_id: str, text: str) -> Job:
        return self._job(await self.broker.refine_plan(course_id, text))

    async def finalize(self, course_id: str) -> Job:
        return self._job(await self.broker.finalize_course(course_id))

    def events(self, job: Job) -> AsyncIterator[Event]:
        return self.broker.events(  # type: ignore[no-any-return]
            job.ref,
            timeout=self.timeout,
            idle_timeout=self.idle_timeout,
            raise_on_failure=False,
        )

    def course_url(self, course_id: str) -> str | None:
        # reachable in the web app only when the course belongs to a gateway user
        if self.gateway_url and self.broker.user_id:
            return f"{self.gateway_url}/courses/{course_id}"
        return None


def profile_from(args: argparse.Namespace) -> dict[str, Any]:
    """The learner profile from ``generate``'s arguments (unset options left out)."""
    profile = {
        "topic": args.topic,
        "level": args.level,
        "duration_hours": args.hours,
        "expectations": args.expectations,
        "style": args.style,
        "pace": args.pace,
        "goal_context": args.goal,
        "language": args.language,
    }
    return {k: v for k, v in profile.items() if v is not None}


class Conversation:
    """Follows the jobs of one course and tells the person what happens."""

    def __init__(self, backend: Backend, out: Output) -> None:
        self.backend = backend
        self.out = out
        self.jobs: list[str] = []
        self.modules: int | None = None
        self.title: str | None = None
        self.plan: str = ""
        self.lessons: list[dict[str, Any]] = []

    async def follow(self, job: Job) -> Event:
        """Show the job's events until its final one; raises JobFailed on ``job.failed``."""
        self.jobs.append(job.job_id)
        attempts: dict[str, int] = {}
        streamed = False
        async for event in self.backend.events(job):
            p = event.payload
            if event.name == "job.chunk" and p.get("step") in PLAN_STEPS:
                step, attempt = str(p.get("step")), int(p.get("attempt", 1))
                if attempts.get(step, attempt) < attempt:
                    self.out.say("\n[the model started the plan over]")
                attempts[step] = attempt
                self.out.stream_text(str(p.get("text", "")))
                streamed = True
            elif event.name == "course.plan_proposed":
                self.plan = str(p.get("plan_markdown", ""))
                if not streamed:
                    self.out.stream_text(self.plan)
                self.out.say()
            elif event.name == "course.plan_finalized":
                self.title = p.get("title")
                self.modules = len(p.get("modules", []))
                estimate = p.get("estimate") or {}
                cost = estimate.get("cost_usd")
                cost_text = f", about ${cost:.2f}" if isinstance(cost, int | float) else ""
                self.out.say(
                    f"Finalised \u201c{self.title}\u201d: {self.modules} modules; writing "
                    f"{self.modules} lessons and their assessments "
                    f"({estimate.get('calls', '?')} model calls{cost_text})"
                )
            elif event.name == "lesson.written":
                self.lessons.append({"order": p.get("order"), "title": p.get("title")})
                if not self.out.tty:
                    self.out.say(f"lesson {p.get('order')} written: {p.get('title')}")
            elif event.name == "course.progress":
                self.out.progress(p, self.modules)
            elif event.name == "job.failed":
                self.out.finish_progress()
                raise JobFailed(event.body)
            if event.name in job.final_events:
                self.out.finish_progress()
                return event
        raise LecternError(f"the event stream of job {job.job_id} ended without a final event")

    def summary(self, course_id: str, status: str) -> dict[str, Any]:
        """The result document of ``generate``."""
        url = self.backend.course_url(course_id)
        return {
            "course_id": course_id,
            "status": status,
            "title": self.title,
            "modules": self.modules,
            "url": url,
            "where": self.backend.where,
            "jobs": self.jobs,
            "export_command": f"lectern export {course_id} --format html -o course.html",
        }


async def _ask(out: Output, prompt: str) -> str:
    """One line from stdin, the prompt on the person's stream."""
    out.stream_text(prompt)
    line = await asyncio.to_thread(sys.stdin.readline)
    out.line_ended()
    if line == "":
        raise UsageError(
            "no answer on standard input: pass --auto to finalise the plan without asking"
        )
    return line.strip()


async def run(backend: Backend, args: argparse.Namespace, out: Output) -> int:
    """The whole ``generate`` conversation; the exit code."""
    profile = profile_from(args)
    convo = Conversation(backend, out)
    out.say(
        f"Planning \u201c{profile['topic']}\u201d on {backend.where}"
        + (" (autopilot: plan, lessons and assessments in one go)" if args.auto else "")
    )
    job = await backend.start(profile, args.auto)
    course_id = job.course_id
    out.say(f"course {course_id}, job {job.job_id}\n")
    final = await convo.follow(job)
    while final.name == "course.plan_proposed":
        answer = (await _ask(out, "Accept this plan? [a]ccept / [r]efine / [q]uit: ")).lower()
        if answer in ("a", "accept", "y", "yes"):
            final = await convo.follow(await backend.finalize(course_id))
        elif answer in ("r", "refine"):
            text = await _ask(out, "What should change? ")
            if text:
                out.say()
                final = await convo.follow(await backend.refine(course_id, text))
        elif answer in ("q", "quit", "n", "no"):
            summary = convo.summary(course_id, "planning")
            where = f" ({summary['url']})" if summary["url"] else ""
            out.result(
                summary,
                f"The plan is kept; course {course_id} is still being planned{where}.",
            )
            return exit_codes.OK
        else:
            out.say("Please answer a, r or q.")
    ready = final.payload
    convo.title = ready.get("title") or convo.title
    convo.modules = len(ready.get("modules", [])) or convo.modules
    summary = convo.summary(course_id, "ready")
    summary["modules"] = ready.get("modules", [])
    lines = [
        f"Course ready: \u201c{convo.title}\u201d ({len(summary['modules'])} lessons)",
        f"  course id: {course_id}",
    ]
    if summary["url"]:
        lines.append(f"  open:      {summary['url']}")
    lines.append(f"  export:    {summary['export_command']}")
    out.result(summary, "\n".join(lines))
    return exit_codes.OK
