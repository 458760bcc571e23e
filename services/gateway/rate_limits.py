"""Rate limits on the expensive calls, per user and per client address, in PostgreSQL.

A limit is ``count`` requests per fixed window (``LECTERN_RATE_LIMIT_*``, e.g.
``60/hour``). Each request adds one to its counters with a single upsert, so every
gateway replica counts in the same rows and concurrent requests cannot both take the
last slot. A request over any of its limits gets 429 with ``Retry-After`` (when the
window ends) and a ``detail`` naming the limit; refused requests count too, so
hammering does not shorten the wait. Subjects are stored hashed (no emails or
addresses in the table) and rows are deleted once their window has passed.

The client address is the one uvicorn reports: behind a proxy, set
``FORWARDED_ALLOW_IPS`` to the proxy's address so ``X-Forwarded-For`` is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert

from services.gateway.auth import Principal
from services.gateway.store import rate_limits
from shared.metrics import RATE_LIMITED
from shared.settings import LecternSettings, parse_rate


@dataclass(frozen=True)
class Rule:
    """One limit: its name (the metric label), what it covers and its setting."""

    name: str
    covers: str  # what the limit is on, for the 429's detail
    per: str  # "user", "IP address" or "email"
    setting: str  # attribute of LecternSettings holding "<count>/<period>"


GENERATE = "generate"
GRADE = "grade"
GUEST = "guest"
AUTH = "auth"
LOGIN = "login"

RULES: dict[str, tuple[Rule, ...]] = {
    GENERATE: (
        Rule("generate_user", "generation requests", "user", "rate_limit_generate_user"),
        Rule("generate_ip", "generation requests", "IP address", "rate_limit_generate_ip"),
    ),
    GRADE: (
        Rule("grade_user", "quiz attempts and code submissions", "user", "rate_limit_grade_user"),
        Rule("grade_ip", "quiz attempts and code submissions", "IP address", "rate_limit_grade_ip"),
    ),
    GUEST: (Rule("guest_ip", "new guests", "IP address", "rate_limit_guest_ip"),),
    AUTH: (Rule("auth_ip", "sign-ups and logins", "IP address", "rate_limit_auth_ip"),),
    LOGIN: (Rule("login_email", "login attempts", "email", "rate_limit_login_email"),),
}
_PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def _period(window_s: int) -> str:
    if window_s in _PERIOD_NAMES:
        return _PERIOD_NAMES[window_s]
    for seconds, name in sorted(_PERIOD_NAMES.items(), reverse=True):
        if window_s % seconds == 0:
            return f"{window_s // seconds} {name}s"
    return f"{window_s} seconds"  # unreachable: every window is whole seconds


def _key(rule: Rule, subject: str) -> str:
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{rule.name}:{digest}"


# Built once; run with the counted rows as parameters (one statement for all of them).
_HIT = (
    insert(rate_limits)
    .on_conflict_do_update(
        index_elements=[rate_limits.c.key, rate_limits.c.window_start],
        set_={"hits": rate_limits.c.hits + 1},
    )
    .returning(rate_limits.c.key, rate_limits.c.hits)
)


async def hit(
    sessionmaker: Any,
    settings: LecternSettings,
    group: str,
    subjects: dict[str, str | None],
    *,
    now: float | None = None,
) -> None:
    """Count one request of ``group`` for each subject (``{"user": id, "IP address": ip}``);
    429 naming the first limit it goes over."""
    now = time.time() if now is None else now
    counted: list[tuple[Rule, int, int, str]] = []  # rule, count, window, key
    rows = []
    for rule in RULES[group]:
        subject = subjects.get(rule.per)
        count, window = parse_rate(getattr(settings, rule.setting))
        if not subject or count <= 0:
            continue
        start = int(now // window) * window
        key = _key(rule, subject)
        counted.append((rule, count, window, key))
        rows.append(
            {
                "key": key,
                "window_start": start,
                "hits": 1,
                "expires_at": datetime.fromtimestamp(start + window, UTC),
            }
        )
    if not rows:
        return
    async with sessionmaker() as session, session.begin():
        hits = {row.key: int(row.hits) for row in await session.execute(_HIT, rows)}
    for rule, count, window, key in counted:
        if hits.get(key, 0) > count:
            RATE_LIMITED.labels(rule.name).inc()
            retry_after = max(1, math.ceil(int(now // window) * window + window - now))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=(
                    f"rate limit {rule.name}: at most {count} {rule.covers} per "
                    f"{_period(window)} per {rule.per}; try again in {retry_after} s"
                ),
                headers={"Retry-After": str(retry_after)},
            )


def client_address(request: Request) -> str | None:
    """The client's address as uvicorn reports it (X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else None


async def limit(request: Request, group: str, who: Principal | None = None) -> None:
    """Count this request against ``group``'s limits for its user and its address."""
    await hit(
        request.app.state.runtime.sessionmaker,
        request.app.state.settings,
        group,
        {"user": who.user_id if who else None, "IP address": client_address(request)},
    )


async def limit_login(request: Request, email: str) -> None:
    """Count a login attempt against the limit on the account's email."""
    await hit(
        request.app.state.runtime.sessionmaker,
        request.app.state.settings,
        LOGIN,
        {"email": email},
    )


async def forget_expired(sessionmaker: Any) -> int:
    """Delete the counters of windows that are over; how many went."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            delete(rate_limits).where(rate_limits.c.expires_at < func.now())
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def keep_tidy(sessionmaker: Any, every: float) -> None:
    """Delete passed windows every ``every`` seconds until cancelled."""
    while True:
        with contextlib.suppress(Exception):  # a database hiccup skips one round
            await forget_expired(sessionmaker)
        await asyncio.sleep(every)
