"""Stream tokens: what an EventSource puts in its URL instead of the long-lived bearer token.

``POST /v1/jobs/{id}/stream-token`` gives a token that opens that job's event stream
(``?access_token=``) for a couple of minutes and does nothing else; the bearer token
is no longer taken from a URL at all.
"""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from shared.settings import DEV_JWT_SECRET
from tests.support.client import bearer, create_course, guest_token
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


async def _stream(client: httpx.AsyncClient, url: str, **params: str) -> list[str]:
    """The event names of a stream opened without any header (as EventSource does)."""
    names: list[str] = []
    async with client.stream("GET", url, params=params, timeout=60) as resp:
        assert resp.status_code == 200, await resp.aread()
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                names.append(line.split(":", 1)[1].strip())
                if names[-1] in {"course.plan_proposed", "job.failed"}:
                    break
    return names


async def test_a_stream_token_opens_its_jobs_events_and_nothing_else(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        first, second = await create_course(client, token), await create_course(client, token)
        url = first["events_url"]

        assert (await client.post(f"/v1/jobs/{first['job_id']}/stream-token")).status_code == 401
        issued = await client.post(
            f"/v1/jobs/{first['job_id']}/stream-token", headers=bearer(token)
        )
        assert issued.status_code == 200, issued.text
        assert issued.json()["expires_in"] == 120
        stream_token = issued.json()["token"]

        # it opens the stream, from the URL alone
        names = await _stream(client, url, access_token=stream_token)
        assert names[-1] == "course.plan_proposed" and "job.chunk" in names

        # ... and nothing else: not another job's stream, not the API
        refused = await client.get(second["events_url"], params={"access_token": stream_token})
        assert refused.status_code == 401 and "stream token of this job" in refused.text
        for path in ("/v1/courses", f"/v1/jobs/{first['job_id']}", "/v1/auth/me"):
            resp = await client.get(path, headers=bearer(stream_token))
            assert resp.status_code == 401, path
            assert resp.json()["detail"] == "a stream token only opens its job's event stream"
        resp = await client.get(url, headers=bearer(stream_token))
        assert resp.status_code == 401

        # the long-lived token is not taken from a URL any more, on any call
        assert (await client.get(url, params={"access_token": token})).status_code == 401
        assert (await client.get("/v1/courses", params={"access_token": token})).status_code == 401
        # headers still work for clients that can send them
        assert (await read_events(client, second["events_url"], token))[-1].event == (
            "course.plan_proposed"
        )

        # an expired stream token opens nothing
        user = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])["sub"]
        now = int(time.time())
        expired = jwt.encode(
            {"sub": user, "scope": f"stream:{first['job_id']}", "iat": now - 300, "exp": now - 1},
            DEV_JWT_SECRET,
            algorithm="HS256",
        )
        resp = await client.get(url, params={"access_token": expired})
        assert resp.status_code == 401 and "expired" in resp.text
