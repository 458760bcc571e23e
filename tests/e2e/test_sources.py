"""Course sources through the gateway: upload (each path), progress on the job stream,
limits with clear errors, search, replace, delete, and nobody else's business."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.support.client import bearer, create_course, guest_token
from tests.support.pdf import make_pdf
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e

DONE = frozenset({"source.ingested", "job.failed"})
NOTES = b"""# Asyncio notes

## The event loop

The event loop runs one task at a time and switches between tasks whenever a coroutine
awaits something that is not ready yet.

## Cancellation

Calling cancel() on a task raises CancelledError inside the coroutine at its next await.
"""


async def planned_course(client: httpx.AsyncClient, token: str) -> str:
    accepted = await create_course(client, token, topic="Python asyncio")
    events = await read_events(client, accepted["events_url"], token)
    assert events[-1].event == "course.plan_proposed"
    return str(accepted["course_id"])


async def upload(
    client: httpx.AsyncClient,
    token: str,
    course_id: str,
    name: str,
    data: bytes,
    media_type: str = "text/markdown",
) -> httpx.Response:
    return await client.post(
        f"/v1/courses/{course_id}/sources",
        files={"file": (name, data, media_type)},
        headers=bearer(token),
    )


async def test_upload_ingest_search_replace_delete(
    cluster: Cluster, db: asyncpg.Connection
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        auth = bearer(token)
        course_id = await planned_course(client, token)

        resp = await upload(client, token, course_id, "notes.md", NOTES)
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        assert accepted["replaced"] is False and accepted["course_id"] == course_id
        events = await read_events(client, accepted["events_url"], token, until=DONE)
        assert events[-1].event == "source.ingested", events[-1].data
        stages = [e.data["payload"]["stage"] for e in events if e.event == "source.progress"]
        assert stages[:3] == ["extracting", "chunking", "embedding"] and stages[-1] == "storing"
        ingested = events[-1].data["payload"]
        assert (ingested["source_id"], ingested["chunks"]) == (accepted["source_id"], 2)

        listed = (await client.get(f"/v1/courses/{course_id}/sources", headers=auth)).json()
        [source] = listed["sources"]
        assert (source["filename"], source["kind"], source["revision"]) == (
            "notes.md",
            "markdown",
            1,
        )

        found = await client.get(
            f"/v1/courses/{course_id}/sources/search",
            params={"q": "what does a coroutine get when its task is cancelled?", "k": 1},
            headers=auth,
        )
        assert found.status_code == 200, found.text
        [passage] = found.json()["passages"]
        assert passage["section"] == "Asyncio notes > Cancellation"
        assert found.json()["backend"] in ("numpy", "pgvector")

        # the same content under another name; unsupported formats; too many bytes
        dup = await upload(client, token, course_id, "copy.md", NOTES)
        assert dup.status_code == 409 and "duplicate of notes.md" in dup.json()["detail"]
        pptx = await upload(client, token, course_id, "deck.pptx", b"PK\x03\x04", "x/y")
        assert pptx.status_code == 415 and "not a supported format" in pptx.json()["detail"]
        empty = await upload(client, token, course_id, "empty.txt", b"", "text/plain")
        assert empty.status_code == 422

        # a large PDF travels in staged parts; its chunks land like any other
        pdf = make_pdf([["Chlorophyll absorbs red and blue light."]], padding=700_000)
        big = await upload(client, token, course_id, "plants.pdf", pdf, "application/pdf")
        assert big.status_code == 202, big.text
        events = await read_events(client, big.json()["events_url"], token, until=DONE)
        assert events[-1].event == "source.ingested", events[-1].data
        assert events[-1].data["payload"]["pages"] == 1
        assert await db.fetchval("SELECT count(*) FROM content.uploads") == 0

        # the same name again replaces the source: revision 2, the old passages gone
        changed = NOTES.replace(b"## Cancellation", b"## Stopping tasks")
        again = await upload(client, token, course_id, "notes.md", changed)
        assert again.status_code == 202 and again.json()["replaced"] is True
        assert again.json()["source_id"] == accepted["source_id"]
        events = await read_events(client, again.json()["events_url"], token, until=DONE)
        assert events[-1].data["payload"]["revision"] == 2
        sections = await db.fetch(
            "SELECT section FROM content.chunks WHERE source_id = $1", accepted["source_id"]
        )
        assert {r["section"] for r in sections} == {
            "Asyncio notes > The event loop",
            "Asyncio notes > Stopping tasks",
        }

        gone = await client.delete(
            f"/v1/courses/{course_id}/sources/{accepted['source_id']}", headers=auth
        )
        assert gone.status_code == 204
        again = await client.delete(
            f"/v1/courses/{course_id}/sources/{accepted['source_id']}", headers=auth
        )
        assert again.status_code == 404
        listed = (await client.get(f"/v1/courses/{course_id}/sources", headers=auth)).json()
        assert [s["filename"] for s in listed["sources"]] == ["plants.pdf"]
        assert (
            await db.fetchval(
                "SELECT count(*) FROM content.chunks WHERE source_id = $1", accepted["source_id"]
            )
            == 0
        )


async def test_another_users_course_sources_are_a_404(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        owner = await guest_token(client)
        course_id = await planned_course(client, owner)
        resp = await upload(client, owner, course_id, "notes.md", NOTES)
        events = await read_events(client, resp.json()["events_url"], owner, until=DONE)
        assert events[-1].event == "source.ingested"
        source_id = resp.json()["source_id"]

        other = await guest_token(client)
        base = f"/v1/courses/{course_id}/sources"
        calls = [
            client.get(base, headers=bearer(other)),
            client.get(f"{base}/search", params={"q": "event loop"}, headers=bearer(other)),
            client.delete(f"{base}/{source_id}", headers=bearer(other)),
            client.post(base, files={"file": ("x.md", b"# x\n\ny")}, headers=bearer(other)),
        ]
        for call in calls:
            resp = await call
            assert resp.status_code == 404, resp.text
        # and the owner still has it
        listed = await client.get(base, headers=bearer(owner))
        assert [s["source_id"] for s in listed.json()["sources"]] == [source_id]


async def test_an_upload_over_the_size_limit_is_a_413(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        course_id = await planned_course(client, token)
        # the cluster's limit is the default, 10 MB
        resp = await upload(client, token, course_id, "huge.txt", b"a" * 10_000_001, "text/plain")
        assert resp.status_code == 413
        assert "over the limit of 10000000 bytes" in resp.json()["detail"]


async def test_a_course_with_sources_is_planned_and_written_from_them(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        auth = bearer(token)
        course_id = await planned_course(client, token)
        resp = await upload(client, token, course_id, "notes.md", NOTES)
        events = await read_events(client, resp.json()["events_url"], token, until=DONE)
        assert events[-1].event == "source.ingested"

        # the plan, refined now that there are sources, is built from them and cites them
        refine = await client.post(
            f"/v1/courses/{course_id}/messages", json={"text": "Use my notes"}, headers=auth
        )
        events = await read_events(client, refine.json()["events_url"], token)
        plan = events[-1].data["payload"]["plan_markdown"]
        assert "**The event loop**" in plan and "[S1]" in plan
        assert "## Sources\n\n- [S1] notes.md — Asyncio notes > " in plan

        final = await client.post(f"/v1/courses/{course_id}/finalize", headers=auth)
        events = await read_events(
            client, final.json()["events_url"], token, until={"course.ready", "job.failed"}
        )
        assert events[-1].event == "course.ready", events[-1].data
        written = [e.data["payload"] for e in events if e.event == "lesson.written"]
        assert written and all(p["citations"] for p in written)

        lesson = (await client.get(f"/v1/courses/{course_id}/lessons/1", headers=auth)).json()
        [first, *_] = lesson["citations"]
        assert (first["marker"], first["filename"]) == ("S1", "notes.md")
        assert first["section"].startswith("Asyncio notes > ")
        assert f"[{first['marker']}]" in lesson["markdown"]
        assert "## Beyond your sources" in lesson["markdown"]
