"""Rate limit counters in PostgreSQL: atomic under concurrency, per window, hashed, tidied."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import HTTPException
from sqlalchemy import select

from services.gateway import rate_limits
from services.gateway.store import rate_limits as table
from shared.db import make_engine, make_sessionmaker
from shared.metrics import RATE_LIMITED
from shared.settings import LecternSettings, get_settings

pytestmark = pytest.mark.integration

HOUR = 3600
T0 = 1_800_000_000.0  # a window start for hourly windows (divisible by 3600)


@pytest.fixture
async def sessionmaker(infra: dict[str, str]) -> AsyncIterator[Any]:
    engine = make_engine(get_settings("gateway"))
    yield make_sessionmaker(engine)
    await engine.dispose()


def settings(**limits: str) -> LecternSettings:
    return LecternSettings(**{f"rate_limit_{name}": value for name, value in limits.items()})


async def hit(sessionmaker: Any, config: LecternSettings, ip: str, now: float) -> int | None:
    """One guest creation from ``ip`` at ``now``: None if allowed, else its Retry-After."""
    try:
        await rate_limits.hit(sessionmaker, config, rate_limits.GUEST, {"IP address": ip}, now=now)
    except HTTPException as refused:
        assert refused.status_code == 429
        return int(refused.headers["Retry-After"])  # type: ignore[index]
    return None


async def test_concurrent_requests_cannot_share_the_last_slot(sessionmaker: Any) -> None:
    config, ip = settings(guest_ip="10/hour"), f"10.0.{uuid.uuid4().int % 250}.1"
    before = RATE_LIMITED.labels("guest_ip")._value.get()
    outcomes = await asyncio.gather(*(hit(sessionmaker, config, ip, T0 + 5) for _ in range(30)))
    assert outcomes.count(None) == 10  # exactly the limit, however the 30 interleave
    assert all(o == HOUR - 5 for o in outcomes if o is not None)
    assert RATE_LIMITED.labels("guest_ip")._value.get() - before == 20


async def test_a_window_ends_and_the_next_one_starts_from_zero(sessionmaker: Any) -> None:
    config, ip = settings(guest_ip="2/hour"), str(uuid.uuid4())
    assert await hit(sessionmaker, config, ip, T0) is None
    assert await hit(sessionmaker, config, ip, T0 + 10) is None
    assert await hit(sessionmaker, config, ip, T0 + 3599.5) == 1  # never "0 seconds"
    assert await hit(sessionmaker, config, ip, T0 + 1800) == 1800  # refusals count as well
    assert await hit(sessionmaker, config, ip, T0 + HOUR) is None
    assert await hit(sessionmaker, config, "another-address", T0 + 10) is None


async def test_the_refusal_names_the_limit_and_the_stored_key_names_nobody(
    sessionmaker: Any,
) -> None:
    config, email = settings(login_email="1/minute"), f"{uuid.uuid4()}@example.org"
    subjects = {"email": email}
    await rate_limits.hit(sessionmaker, config, rate_limits.LOGIN, subjects, now=T0)
    with pytest.raises(HTTPException) as refused:
        await rate_limits.hit(sessionmaker, config, rate_limits.LOGIN, subjects, now=T0 + 20)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "40"}
    assert refused.value.detail == (
        "rate limit login_email: at most 1 login attempts per minute per email; try again in 40 s"
    )
    async with sessionmaker() as session:
        keys = list(await session.scalars(select(table.c.key)))
    assert keys and not any(email in key or "example.org" in key for key in keys)


async def test_user_and_address_are_counted_separately_and_zero_is_no_limit(
    sessionmaker: Any,
) -> None:
    config = settings(generate_user="1/hour", generate_ip="0/hour")
    user, ip = str(uuid.uuid4()), str(uuid.uuid4())

    async def generate(subjects: dict[str, str]) -> None:
        await rate_limits.hit(sessionmaker, config, rate_limits.GENERATE, subjects, now=T0)

    await generate({"user": user, "IP address": ip})
    await generate({"user": "x" + user, "IP address": ip})  # the address has no limit
    with pytest.raises(HTTPException, match="generate_user: at most 1 generation requests"):
        await generate({"user": user, "IP address": "elsewhere"})


async def test_passed_windows_are_forgotten(sessionmaker: Any) -> None:
    config, ip = settings(guest_ip="5/second"), str(uuid.uuid4())
    await hit(sessionmaker, config, ip, 1_000_000_000.0)  # a window long over (2001)
    assert await rate_limits.forget_expired(sessionmaker) >= 1
    async with sessionmaker() as session:
        left = await session.scalar(
            select(table.c.key).where(table.c.window_start == 1_000_000_000)
        )
    assert left is None


def test_limits_are_read_from_settings_and_bad_ones_refused() -> None:
    assert rate_limits.RULES[rate_limits.GUEST][0].setting == "rate_limit_guest_ip"
    for rules in rate_limits.RULES.values():
        for rule in rules:  # every rule has a setting with a valid default
            LecternSettings().model_dump()[rule.setting]
    assert LecternSettings(LECTERN_RATE_LIMIT_GUEST_IP="7/day").rate_limit_guest_ip == "7/day"
    with pytest.raises(ValueError, match="write <count>/<period>"):
        LecternSettings(LECTERN_RATE_LIMIT_GUEST_IP="lots")
