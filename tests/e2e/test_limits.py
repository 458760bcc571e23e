"""Bad input and abuse get a clear 4xx: body size, text length and content, chat length,
rate limits per user and per address (429 with Retry-After, counted across replicas).

Limits low enough to reach in a test run on a second gateway process (a replica on
the cluster's database and virtual host, started with its own settings); requests
from 127.0.0.1 may name their client address in ``X-Forwarded-For`` (uvicorn trusts
it from there), so each test counts for an address of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import PROFILE, bearer, create_course, guest_token
from tests.support.processes import Cluster, Service, free_port
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e

STRICT = {
    "LECTERN_RATE_LIMIT_GUEST_IP": "3/hour",
    "LECTERN_RATE_LIMIT_AUTH_IP": "3/hour",
    "LECTERN_RATE_LIMIT_LOGIN_EMAIL": "2/hour",
    "LECTERN_RATE_LIMIT_GENERATE_USER": "4/hour",
    "LECTERN_RATE_LIMIT_GENERATE_IP": "1000/hour",
    "LECTERN_RATE_LIMIT_GRADE_USER": "2/hour",
    "LECTERN_RATE_LIMIT_GRADE_IP": "1000/hour",
    "LECTERN_MAX_BODY_BYTES": "4096",
    "LECTERN_MAX_CHAT_MESSAGES": "2",
}


@pytest.fixture(scope="module")
def strict_gateway(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second gateway replica with low limits (the cluster's stays as it is)."""
    log = Path(tmp_path_factory.mktemp("strict-gateway")) / "gateway.log"
    service = Service("gateway", free_port(), {**cluster["gateway"].env, **STRICT}, log)
    service.start()
    try:
        service.wait_ready()
        yield service.url
    finally:
        service.stop()


@pytest.fixture
async def strict(strict_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the strict gateway that calls from an address of its own."""
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    async with httpx.AsyncClient(
        base_url=strict_gateway, timeout=60, headers={"X-Forwarded-For": address}
    ) as client:
        yield client


def assert_rate_limited(resp: httpx.Response, limit: str, period: str = "hour") -> None:
    assert resp.status_code == 429, resp.text
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    detail = resp.json()["detail"]
    assert detail.startswith(f"rate limit {limit}: at most ") and f" per {period} per " in detail
    assert detail.endswith(f"try again in {retry_after} s")


def rate_limited_total(metrics: str, limit: str) -> float:
    for family in text_string_to_metric_families(metrics):
        if family.name == "lectern_rate_limited":
            for sample in family.samples:
                if sample.labels.get("limit") == limit:
                    return float(sample.value)
    return 0.0


# ------------------------------------------------------------------------- rate limits


async def test_guests_per_address(strict: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await strict.post("/v1/auth/guest")).status_code == 201
    refused = await strict.post("/v1/auth/guest")
    assert_rate_limited(refused, "guest_ip")
    assert "3 new guests per hour per IP address" in refused.json()["detail"]
    elsewhere = await strict.post("/v1/auth/guest", headers={"X-Forwarded-For": "192.0.2.77"})
    assert elsewhere.status_code == 201
    metrics = (await strict.get("/metrics")).text
    assert rate_limited_total(metrics, "guest_ip") >= 1


async def test_generation_per_user_is_counted_across_gateway_replicas(
    cluster: Cluster, strict: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as main:
        token = await guest_token(main)
        for _ in range(3):  # on the cluster's own gateway (its limit is 60 an hour)
            await create_course(main, token)
    # the strict replica sees the same counter: the 4th request is its last
    assert (
        await strict.post("/v1/courses", json=PROFILE, headers=bearer(token))
    ).status_code == 202
    refused = await strict.post("/v1/courses", json=PROFILE, headers=bearer(token))
    assert_rate_limited(refused, "generate_user")
    assert "per user" in refused.json()["detail"]
    # every generation request shares the limit (here: a chat message)
    chat = await strict.post("/v1/courses/any/messages", json={"text": "x"}, headers=bearer(token))
    assert_rate_limited(chat, "generate_user")
    # another user is not held back
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as main:
        other = await guest_token(main)
    assert (
        await strict.post("/v1/courses", json=PROFILE, headers=bearer(other))
    ).status_code == 202


async def test_grading_per_user_counts_before_anything_is_looked_up(
    cluster: Cluster, strict: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as main:
        auth = bearer(await guest_token(main))
    answers = {"answers": [{"question_id": "q1", "choice": 0}]}
    assert (
        await strict.post("/v1/quizzes/nope/attempts", json=answers, headers=auth)
    ).status_code == 404
    assert (
        await strict.post("/v1/exercises/nope/submissions", json={"code": "x"}, headers=auth)
    ).status_code == 404
    refused = await strict.post("/v1/quizzes/nope/attempts", json=answers, headers=auth)
    assert_rate_limited(refused, "grade_user")


async def test_logins_per_email_and_sign_ups_per_address(
    cluster: Cluster, strict: httpx.AsyncClient
) -> None:
    email = f"limits-{uuid.uuid4().hex[:8]}@example.org"
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as main:
        made = await main.post("/v1/auth/register", json={"email": email, "password": "right pass"})
        assert made.status_code == 201, made.text
    wrong = {"email": email, "password": "wrong pass"}
    for n in range(2):  # from two addresses: the email's limit is what counts
        address = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
        assert (await strict.post("/v1/auth/login", json=wrong, headers=address)).status_code == 401
    refused = await strict.post("/v1/auth/login", json={**wrong, "password": "right pass"})
    assert_rate_limited(refused, "login_email")

    # sign-ups and logins from one address: 3 an hour (one login above was from here)
    for _ in range(2):
        fresh = {"email": f"{uuid.uuid4().hex[:10]}@example.org", "password": "long enough"}
        assert (await strict.post("/v1/auth/register", json=fresh)).status_code == 201
    fresh = {"email": f"{uuid.uuid4().hex[:10]}@example.org", "password": "long enough"}
    assert_rate_limited(await strict.post("/v1/auth/register", json=fresh), "auth_ip")


# ------------------------------------------------------------------------ bad input


async def test_a_body_over_the_limit_is_refused_however_it_is_sent(
    strict: httpx.AsyncClient,
) -> None:
    auth = bearer((await strict.post("/v1/auth/guest")).json()["access_token"])
    big = {**PROFILE, "expectations": "x" * 5000}
    resp = await strict.post("/v1/courses", json=big, headers=auth)  # Content-Length: 5000+
    assert resp.status_code == 413
    assert resp.json() == {
        "detail": "request body too large: at most 4096 bytes (4 KiB) are accepted "
        "(LECTERN_MAX_BODY_BYTES)"
    }

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no length announced
        yield b'{"topic": "Chess", "expectations": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    resp = await strict.post(
        "/v1/courses",
        content=chunks(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and "4096 bytes" in resp.json()["detail"]

    # under the limit the body reaches the application (here: validated, 422)
    small = {**PROFILE, "expectations": "x" * 2001}
    resp = await strict.post("/v1/courses", json=small, headers=auth)
    assert resp.status_code == 422


async def test_the_default_body_limit_is_256_kib(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        auth = bearer(await guest_token(client))
        code = "# " + "x" * (256 * 1024)
        resp = await client.post("/v1/exercises/e/submissions", json={"code": code}, headers=auth)
        assert resp.status_code == 413 and "262144 bytes (256 KiB)" in resp.text
        # the largest submission the schema takes (50,000 characters) fits
        resp = await client.post(
            "/v1/exercises/e/submissions", json={"code": "\n" * 50_000}, headers=auth
        )
        assert resp.status_code == 404  # no such exercise: it got through


async def test_text_limits_and_unstorable_text_are_422_naming_the_field(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        auth = bearer(await guest_token(client))

        async def problems(path: str, body: object) -> list[tuple[list[object], str]]:
            resp = await client.post(path, json=body, headers=auth)
            assert resp.status_code == 422, resp.text
            assert "input" not in resp.text  # what was sent is not echoed back
            return [(d["loc"], d["msg"]) for d in resp.json()["detail"]]

        assert await problems("/v1/courses", {**PROFILE, "topic": "t" * 201}) == [
            (["body", "topic"], "String should have at most 200 characters")
        ]
        assert await problems("/v1/courses/c/messages", {"text": "m" * 4001}) == [
            (["body", "text"], "String should have at most 4000 characters")
        ]
        assert await problems("/v1/courses", {**PROFILE, "expectations": "a\u0000b"}) == [
            (["body", "expectations"], "must not contain NUL characters (\\u0000)")
        ]
        raw = '{"text": "lone \\ud800 surrogate"}'  # valid JSON, not valid Unicode
        resp = await client.post(
            "/v1/courses/c/messages",
            content=raw,
            headers={**auth, "Content-Type": "application/json"},
        )
        assert resp.status_code == 422
        [problem] = resp.json()["detail"]  # the JSON parser refuses it already
        assert problem["loc"] == ["body", "text"] and "unicode" in problem["msg"].lower()
        resp = await client.get("/v1/courses/bad%00id", headers=auth)
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["path", "course_id"]
        answers = {"answers": [{"question_id": "q1", "text": "\u0000"}]}
        assert await problems("/v1/quizzes/q/attempts", answers) == [
            (["body", "answers", 0, "text"], "must not contain NUL characters (\\u0000)")
        ]


async def test_a_full_planning_chat_is_refused_with_409(strict: httpx.AsyncClient) -> None:
    token = (await strict.post("/v1/auth/guest")).json()["access_token"]
    accepted = await create_course(strict, token)
    await read_events(strict, accepted["events_url"], token)  # the welcome plan
    url = f"/v1/courses/{accepted['course_id']}/messages"
    for text in ("Shorter, please", "Add a module on testing"):
        sent = await strict.post(url, json={"text": text}, headers=bearer(token))
        assert sent.status_code == 202, sent.text
        await read_events(strict, sent.json()["events_url"], token)
    full = await strict.post(url, json={"text": "One more"}, headers=bearer(token))
    assert full.status_code == 409
    assert full.json()["detail"] == (
        f"the planning chat of course {accepted['course_id']} is full: at most 2 messages "
        "(LECTERN_MAX_CHAT_MESSAGES); finalise the plan, or start a new course"
    )
