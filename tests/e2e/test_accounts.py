"""Accounts: register, log in, a guest who registers keeps their courses."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.support.client import bearer, create_course, guest_token
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


def email() -> str:
    return f"learner-{uuid.uuid4().hex[:8]}@example.org"


async def test_register_login_and_me(cluster, db: asyncpg.Connection) -> None:  # type: ignore[no-untyped-def]
    address = email()
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        resp = await client.post(
            "/v1/auth/register", json={"email": address.upper(), "password": "correct horse"}
        )
        assert resp.status_code == 201, resp.text
        user_id = resp.json()["user_id"]
        me = (await client.get("/v1/auth/me", headers=bearer(resp.json()["access_token"]))).json()
        assert me.pop("budget")["kind"] == "user"
        assert me == {"user_id": user_id, "email": address, "is_guest": False, "role": "learner"}

        again = await client.post(
            "/v1/auth/register", json={"email": address, "password": "another one"}
        )
        assert again.status_code == 409 and "log in" in again.json()["detail"]

        login = await client.post(
            "/v1/auth/login", json={"email": address, "password": "correct horse"}
        )
        assert login.status_code == 200 and login.json()["user_id"] == user_id
        for body in (
            {"email": address, "password": "wrong password"},
            {"email": email(), "password": "correct horse"},
        ):
            resp = await client.post("/v1/auth/login", json=body)
            assert resp.status_code == 401 and resp.json()["detail"] == "wrong email or password"

        for body, field in (
            ({"email": "not-an-email", "password": "correct horse"}, "email"),
            ({"email": email(), "password": "short"}, "password"),
        ):
            resp = await client.post("/v1/auth/register", json=body)
            assert resp.status_code == 422 and field in resp.text

    stored = await db.fetchval(
        "SELECT password_hash FROM gateway.users WHERE user_id = $1", user_id
    )
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


async def test_a_guest_who_registers_keeps_their_courses(cluster) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        guest = await guest_token(client)
        course = await create_course(client, guest)
        planned = await read_events(client, course["events_url"], guest)
        assert planned[-1].event == "course.plan_proposed"
        resp = await client.post(
            "/v1/auth/register",
            json={"email": email(), "password": "correct horse"},
            headers=bearer(guest),
        )
        assert resp.status_code == 201, resp.text
        token = resp.json()["access_token"]
        assert resp.json()["is_guest"] is False
        listed = (await client.get("/v1/courses", headers=bearer(token))).json()
        assert [c["course_id"] for c in listed] == [course["course_id"]]


async def test_admin_emails_get_the_admin_role(cluster) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        resp = await client.post(
            "/v1/auth/register", json={"email": "admin@lectern.test", "password": "correct horse"}
        )
        assert resp.status_code in (201, 409), resp.text
        if resp.status_code == 409:
            resp = await client.post(
                "/v1/auth/login", json={"email": "admin@lectern.test", "password": "correct horse"}
            )
        token = resp.json()["access_token"]
        assert (await client.get("/v1/auth/me", headers=bearer(token))).json()["role"] == "admin"
        assert (await client.get("/v1/admin/prompts", headers=bearer(token))).status_code == 200
