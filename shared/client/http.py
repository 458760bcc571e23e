"""An async client for the gateway's REST + SSE API (httpx).

::

    async with LecternHTTP("http://127.0.0.1:8000") as lectern:
        await lectern.guest()                      # or: await lectern.login(email, password)
        accepted = await lectern.create_course("SQL", level="beginner", duration_hours=6,
                                               auto_finalize=True)
        async for event in lectern.events(accepted["job_id"]):
            print(event.id, event.name)           # ... course.progress, course.ready

Errors are exceptions from :mod:`shared.client.errors` carrying the server's message:
401 :class:`Unauthorized`, 403 :class:`Forbidden`, 404 :class:`NotFound`, 409
:class:`Conflict`, 422 :class:`InvalidInput` (naming each field), 402 :class:`OverBudget`,
429 :class:`RateLimited`, 503 :class:`ServiceUnavailable`, nothing listening
:class:`ServiceDown`. :meth:`LecternHTTP.events` follows a job's SSE stream to its end,
reconnecting with ``Last-Event-ID`` when the connection drops, so no event is lost or
repeated.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from shared.client.errors import (
    Conflict,
    EventTimeout,
    Forbidden,
    InvalidInput,
    LecternError,
    NotFound,
    OverBudget,
    RateLimited,
    ServerError,
    ServiceDown,
    ServiceUnavailable,
    Unauthorized,
)
from shared.client.events import Event

DEFAULT_URL = "http://127.0.0.1:8000"
EXPORT_FORMATS = ("markdown", "html", "scorm", "moodle", "gift")


@dataclass(frozen=True)
class Export:
    """An exported course: the file's bytes, the name the server suggests, its media type."""

    content: bytes
    filename: str
    media_type: str


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    return body.get("detail", body) if isinstance(body, dict) else body


def _field_errors(detail: Any) -> dict[str, str]:
    """FastAPI's 422 list (``loc``, ``msg``) as ``{"topic": "String should have ..."}``."""
    fields: dict[str, str] = {}
    if isinstance(detail, list):
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
            fields[".".join(loc) or "body"] = str(item.get("msg", "invalid"))
    return fields


def error_for(response: httpx.Response) -> LecternError:
    """The exception for an error ``response``, with the server's message."""
    status, detail = response.status_code, _detail(response)
    if status == 422:
        fields = _field_errors(detail)
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) if fields else str(detail)
        return InvalidInput(f"invalid input: {message}", fields=fields)
    message = detail if isinstance(detail, str) else json.dumps(detail)
    if status == 401:
        return Unauthorized(message, status=status)
    if status == 403:
        return Forbidden(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    if status == 409:
        return Conflict(message, status=status)
    if status == 402:
        return OverBudget(message, status=status)
    if status == 429:
        retry = response.headers.get("Retry-After")
        try:
            retry_after = float(retry) if retry is not None else None
        except ValueError:
            retry_after = None
        return RateLimited(message, retry_after=retry_after)
    if status == 503:
        return ServiceUnavailable(message, status=status)
    return ServerError(f"{status}: {message}", status=status)


class LecternHTTP:
    """The gateway's API. ``token`` is a bearer token; :meth:`guest` or :meth:`login` set it."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> LecternHTTP:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    # -- plumbing -------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def _down(self, exc: Exception) -> ServiceDown:
        why = type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            why = "connection refused or host unknown"
        elif isinstance(exc, httpx.TimeoutException):
            why = "no answer in time"
        return ServiceDown(
            f"cannot reach the Lectern gateway at {self.base_url} ({why})", url=self.base_url
        )

    async def request(
        self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send one request; an error status raises its :class:`LecternError`."""
        try:
            response = await self._client.request(
                method, path, json=json_body, params=params, headers=self._headers()
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._down(exc) from exc
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(
                f"the gateway at {self.base_url} did not answer {method} {path} in time"
            ) from exc
        except httpx.TransportError as exc:
            raise self._down(exc) from exc
        if response.status_code >= 400:
            raise error_for(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.request(method, path, **kwargs)).json()

    # -- probes ---------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """``/readyz``: ``{"ready": bool, "problems": [...]}`` (a 503 is an answer here)."""
        try:
            response = await self._client.get("/readyz")
        except httpx.TransportError as exc:
            raise self._down(exc) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        return {
            "ready": response.status_code == 200,
            "status": response.status_code,
            "problems": body.get("problems", []) if isinstance(body, dict) else [],
        }

    # -- accounts -------------------------------------------------------------------
    async def guest(self) -> dict[str, Any]:
        """Start as a new guest; keeps and returns its token (``access_token``, ``user_id``)."""
        token = await self._json("POST", "/v1/auth/guest")
        self.token = token["access_token"]
        return dict(token)

    async def register(self, email: str, password: str) -> dict[str, Any]:
        """Create an account (called as a guest, the guest's courses stay); keeps its token."""
        token = await self._json(
            "POST", "/v1/auth/register", json_body={"email": email, "password": password}
        )
        self.token = token["access_token"]
        return dict(token)

    async def login(self, email: str, password: str) -> dict[str, Any]:
        """Log in to an account; keeps and returns its token."""
        token = await self._json(
            "POST", "/v1/auth/login", json_body={"email": email, "password": password}
        )
        self.token = token["access_token"]
        return dict(token)

    async def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``user_id``, ``email``, ``is_guest``, ``role``."""
        return dict(await self._json("GET", "/v1/auth/me"))

    # -- courses --------------------------------------------------------------------
    async def create_course(self, topic: str, **profile: Any) -> dict[str, Any]:
        """Plan a course: ``{course_id, job_id, events_url}``.

        ``profile``: ``level``, ``duration_hours``, ``expectations``, ``style``, ``pace``,
        ``goal_context``, ``language``, ``auto_finalize`` (the gateway refuses unknown ones).
        """
        body = {"topic": topic, **{k: v for k, v in profile.items() if v is not None}}
        return dict(await self._json("POST", "/v1/courses", json_body=body))

    async def refine(self, course_id: str, text: str) -> dict[str, Any]:
        """Ask for a changed plan in the course's chat: a job ending in course.plan_proposed."""
        path = f"/v1/courses/{quote(course_id, safe='')}/messages"
        return dict(await self._json("POST", path, json_body={"text": text}))

    async def finalize(self, course_id: str) -> dict[str, Any]:
        """Finalise the latest plan: a job ending in ``course.ready``."""
        return dict(await self._json("POST", f"/v1/courses/{quote(course_id, safe='')}/finalize"))

    async def courses(self) -> list[dict[str, Any]]:
        """The caller's courses, newest first."""
        return list(await self._json("GET", "/v1/courses"))

    async def course(self, course_id: str) -> dict[str, Any]:
        """One course with its chat, plan, modules and jobs."""
        return dict(await self._json("GET", f"/v1/courses/{quote(course_id, safe='')}"))

    async def lesson(self, course_id: str, order: int) -> dict[str, Any]:
        """Lesson ``order`` of a course (latest version)."""
        path = f"/v1/courses/{quote(course_id, safe='')}/lessons/{order}"
        return dict(await self._json("GET", path))

    async def export(self, course_id: str, format: str = "markdown") -> Export:
        """The course as one file in ``format`` (markdown, html, scorm, moodle, gift)."""
        path = f"/v1/courses/{quote(course_id, safe='')}/export"
        response = await self.request("GET", path, params={"format": format})
        disposition = response.headers.get("Content-Disposition", "")
        _, found, name = disposition.partition("filename=")
        filename = name.strip().strip('"') if found else ""
        media_type = response.headers.get("Content-Type", "application/octet-stream")
        return Export(response.content, filename or f"course.{format}", media_type)

    async def job(self, job_id: str) -> dict[str, Any]:
        """A job's status: ``running``, ``completed`` or ``failed``."""
        return dict(await self._json("GET", f"/v1/jobs/{quote(job_id, safe='')}"))

    async def events(
        self,
        job_id: str,
        *,
        last_event_id: str | int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        reconnects: int = 5,
    ) -> AsyncIterator[Event]:
        """The job's events (SSE) after ``last_event_id``, until its final event.

        A dropped connection is resumed with ``Last-Event-ID`` (the id of the last event
        yielded), at most ``reconnects`` times in a row; each event comes exactly once.
        ``timeout`` bounds the whole stream and ``idle_timeout`` the wait for each event
        (the server's keep-alive pings do not count): :class:`EventTimeout` when exceeded.
        """
        path = f"/v1/jobs/{quote(job_id, safe='')}/events"
        last = str(last_event_id) if last_event_id is not None else None
        deadline = time.monotonic() + timeout if timeout is not None else None
        failures = 0
        while True:
            headers = self._headers({"Accept": "text/event-stream"})
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                async with self._client.stream(
                    "GET", path, headers=headers, timeout=httpx.Timeout(30.0, read=None)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_for(response)
                    async for event in _read_sse(response, deadline, idle_timeout):
                        failures = 0
                        last = event.id if event.id is not None else last
                        yield event
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures += 1
                if failures > reconnects:
                    raise self._down(exc) from exc
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                continue
            except (httpx.ReadError, httpx.RemoteProtocolError):
                failures += 1  # a cut stream: resume after the last event we yielded
                if failures > reconnects:
                    raise
                continue
            # the server ends the stream after the job's final event; anything else
            # (a gateway restarting) is resumed
            if (await self.job(job_id))["status"] != "running":
                return
            failures += 1
            if failures > reconnects:
                raise ServiceUnavailable(f"the event stream of job {job_id} keeps ending early")
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))

    # -- prompt administration (role admin) -------------------------------------------
    async def prompts(self, search: str = "") -> list[dict[str, Any]]:
        """Prompt templates with their labels and version counts."""
        return list(await self._json("GET", "/v1/admin/prompts", params={"search": search}))

    async def prompt(self, name: str) -> dict[str, Any]:
        """One template: every version, labels, experiments."""
        return dict(await self._json("GET", f"/v1/admin/prompts/{quote(name, safe='')}"))

    async def prompt_version(self, name: str, version: int) -> dict[str, Any]:
        """One version of a template."""
        path = f"/v1/admin/prompts/{quote(name, safe='')}/versions/{version}"
        return dict(await self._json("GET", path))

    async def prompt_diff(self, name: str, a: int, b: int) -> dict[str, Any]:
        """A unified diff between versions ``a`` and ``b`` (``diff``, ``identical``)."""
        path = f"/v1/admin/prompts/{quote(name, safe='')}/diff"
        return dict(await self._json("GET", path, params={"a": a, "b": b}))

    async def move_label(self, name: str, label: str, version: int) -> dict[str, Any]:
        """Point ``label`` of a template at ``version`` (services use it at their next call)."""
        path = f"/v1/admin/prompts/{quote(name, safe='')}/labels/{quote(label, safe='')}"
        return dict(await self._json("PUT", path, json_body={"version": version}))

    async def create_prompt_version(self, name: str, template: dict[str, Any]) -> dict[str, Any]:
        """Save a new immutable version (messages, variables, model, change_note)."""
        path = f"/v1/admin/prompts/{quote(name, safe='')}/versions"
        return dict(await self._json("POST", path, json_body=template))


async def _read_sse(
    response: httpx.Response, deadline: float | None, idle_timeout: float | None
) -> AsyncIterator[Event]:
    """Parse an SSE body into events, enforcing the overall and idle timeouts."""
    lines = response.aiter_lines()
    fields: dict[str, str] = {}
    last_event_at = time.monotonic()
    while True:
        idle_limit = last_event_at + idle_timeout if idle_timeout else None
        limits = [d for d in (deadline, idle_limit) if d is not None]
        try:
            if limits:
                async with asyncio.timeout_at(_loop_time(min(limits))):
                    line = await anext(lines)
            else:
                line = await anext(lines)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            idle = deadline is None or time.monotonic() < deadline
            raise EventTimeout(
                f"no event for {idle_timeout:g} s" if idle else "the job did not finish in time",
                idle=idle,
            ) from exc
        if line == "":
            if "data" in fields:
                try:
                    body = json.loads(fields["data"])
                except ValueError:
                    body = {"data": fields["data"]}
                last_event_at = time.monotonic()
                yield Event(fields.get("event", "message"), body, fields.get("id"))
            fields = {}
            continue
        if line.startswith(":"):
            continue  # a keep-alive ping
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = fields[name] + "\n" + value if name in fields else value


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())
