"""LMS exports of a real course over HTTP: SCORM 1.2, Moodle XML, GIFT; the owner's only."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.gateway.test_lms_exports import (
    check_scorm_package,
    expected,
    parse_gift,
    parse_moodle_xml,
    without_names,
)
from tests.support.client import bearer, guest_token, ready_course
from tests.support.processes import Cluster

pytestmark = pytest.mark.e2e


async def test_a_written_course_exports_for_an_lms(
    cluster: Cluster, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        auth = bearer(token)
        accepted, _ = await ready_course(
            client, token, topic="Python for data analysis", duration_hours=4
        )
        course_id = accepted["course_id"]
        course = (await client.get(f"/v1/courses/{course_id}", headers=auth)).json()
        modules = sorted(course["modules"], key=lambda m: m["order"])
        stored = await db.fetch(
            "SELECT position, questions FROM assessment.quizzes WHERE course_id = $1 "
            "ORDER BY position",
            course_id,
        )
        assert [r["position"] for r in stored] == [m["order"] for m in modules]
        keys = [{"questions": json.loads(r["questions"])} for r in stored]

        url = f"/v1/courses/{course_id}/export"
        got = {}
        for fmt, media_type, extension in (
            ("scorm", "application/zip", ".zip"),
            ("moodle", "application/xml", ".xml"),
            ("gift", "text/plain; charset=utf-8", ".gift.txt"),
        ):
            resp = await client.get(url, params={"format": fmt}, headers=auth)
            assert resp.status_code == 200, (fmt, resp.text[:500])
            assert resp.headers["content-type"] == media_type
            disposition = resp.headers["content-disposition"]
            assert disposition.startswith('attachment; filename="')
            assert disposition.endswith(f'{extension}"')
            got[fmt] = resp.content
            (tmp_path / f"course{extension}").write_bytes(resp.content)  # kept for a look

        # SCORM: a sound package, a SCO per lesson, each with its quiz and the runtime
        files = check_scorm_package(got["scorm"], lessons=len(modules))
        for module in modules:
            page = files[f"lessons/{module['order']:02d}/index.html"].decode()
            assert 'id="lectern-quiz"' in page and 'data-kind="choice"' in page
        # Moodle XML and GIFT: every stored question, option, key and explanation
        for read in (parse_moodle_xml(got["moodle"]), parse_gift(got["gift"].decode())):
            assert len(read) == len(modules)
            for category, module, key in zip(read, modules, keys, strict=True):
                title = " ".join(module["title"].split()).replace("/", "//")
                assert category["category"].endswith(f"/{module['order']:02d}. {title}")
                assert without_names(category["questions"]) == expected(key)

        bad = await client.get(url, params={"format": "pdf"}, headers=auth)
        assert bad.status_code == 422 and "'scorm', 'moodle' or 'gift'" in bad.text

        # nobody else gets the answer keys, nor learns the course exists
        other = bearer(await guest_token(client))
        for fmt in ("scorm", "moodle", "gift"):
            resp = await client.get(url, params={"format": fmt}, headers=other)
            assert resp.status_code == 404, (fmt, resp.text)
