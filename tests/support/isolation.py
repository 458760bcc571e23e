"""Checking that another user's resource looks exactly like one that does not exist."""

from __future__ import annotations

import json
from typing import Any

import httpx


def _naming(value: Any, real: str, target: str) -> Any:
    return json.loads(json.dumps(value).replace(real, target))


async def assert_hidden(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    real: str,
    missing: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    status: int = 404,
) -> None:
    """A request naming ``real`` (someone else's) in its path or body is answered as one
    naming ``missing``: the same status (404 by default) and detail, the id aside."""
    answers = []
    for target in (real, missing):
        resp = await client.request(
            method,
            path.replace(real, target),
            json=_naming(body, real, target),
            params=params,
            headers=headers,
        )
        answers.append(resp)
    seen, absent = answers
    assert seen.status_code == status, (method, path, seen.status_code, seen.text)
    assert absent.status_code == status, (method, path, absent.status_code, absent.text)
    assert seen.json()["detail"].replace(real, "<id>") == absent.json()["detail"].replace(
        missing, "<id>"
    ), (method, path, seen.text, absent.text)
