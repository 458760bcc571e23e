"""The gateway's HTTP API fuzzed from its own OpenAPI document (schemathesis + hypothesis).

Every operation of ``/openapi.json`` gets requests generated from its schema, valid
(positive) and invalid (negative), as a guest (a new one per operation, so per-user
rate limits do not end the run early), without a token, and, for the read-only
administration calls, as an admin. About half the cases get one value replaced by a
known troublemaker (NUL, an unpaired surrogate, an integer past a database column),
which random generation almost never draws. Whatever is sent, the answer must not
be a 5xx: bad input is a 4xx naming the problem. Every request sent is counted.

Generation is seeded, so a failure reproduces; ``LECTERN_FUZZ_SEED`` explores another.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from services.gateway.auth import Principal, issue_token
from shared.settings import DEV_JWT_SECRET
from tests.support.processes import Cluster

pytestmark = pytest.mark.e2e

MIN_REQUESTS = 1000
SEED = int(os.environ.get("LECTERN_FUZZ_SEED", "20261124"))
EXAMPLES = {"guest": 25, "anonymous": 6, "admin": 25}  # per operation and generation mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

# Values that broke services before (PostgreSQL refuses NUL, UTF-8 cannot carry an
# unpaired surrogate, integers overflow their column): one replaces a generated value
# in about half the cases.
NASTY_TEXT = ("\x00", "nul\x00inside", "\ud800", "lone \udfff surrogate", "\u202e\x07\x1b[0m")
NASTY_NUMBERS = (2**31, 2**63, -(2**63) - 1, 10**30, -1, 0)


@dataclass
class Tally:
    """Every request sent, by status, and each answer that was a server error."""

    sent: int = 0
    unsendable: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def record(self, case: schemathesis.Case, response: Any, caller: str) -> None:
        self.sent += 1
        status = int(response.status_code)
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status >= 500:
            try:
                sent = case.as_curl_command()
            except UnicodeEncodeError:  # a lone surrogate in the body: show the body instead
                sent = f"body: {case.body!r}"[:500]
            self.server_errors.append(
                f"{case.method} {case.formatted_path} as {caller} -> {status}: "
                f"{response.text[:300]}\n    {sent}"
            )


def _leaves(value: Any, depth: int = 0) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside a JSON document, a few levels deep."""
    if depth > 4:
        return []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out = []
    for key, item in items:
        if isinstance(item, dict | list):
            out += _leaves(item, depth + 1)
        out.append((value, key))
    return out


def _sprinkle(case: schemathesis.Case, data: st.DataObject) -> None:
    """Maybe replace one generated value (path, query, header or body) with a nasty one."""
    slots: list[tuple[str, Any, Any]] = []
    for where, values in (("path", case.path_parameters), ("query", case.query)):
        slots += [(where, values, key) for key in values or {}]
    slots += [("header", case.headers, key) for key in case.headers or {}]
    if isinstance(case.body, dict | list):
        slots += [("body", container, key) for container, key in _leaves(case.body)]
    if not slots or not data.draw(st.booleans(), label="sprinkle"):
        return
    where, container, key = data.draw(st.sampled_from(slots), label="where")
    if where == "header":  # HTTP clients send no NUL in a header: numbers only
        value: Any = str(data.draw(st.sampled_from(NASTY_NUMBERS), label="value"))
    else:
        value = data.draw(st.sampled_from(NASTY_TEXT + NASTY_NUMBERS), label="value")
    if where == "path":  # as percent-encoded UTF-8 bytes (a surrogate's too)
        value = quote(str(value).encode("utf-8", "surrogatepass"), safe="")
    elif where == "query" and isinstance(value, str):  # the same bytes, through requests
        value = value.encode("utf-8", "surrogatepass").decode("latin-1")
    container[key] = value


def _no_autopilot(case: schemathesis.Case) -> None:
    """A generated course never runs to the end: a whole course per example would be a
    load test, not a fuzz test (every other field stays as generated)."""
    if case.operation.path == "/v1/courses" and isinstance(case.body, dict):
        if case.body.get("auto_finalize") is True:
            case.body["auto_finalize"] = False


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    caller: str,
    headers: dict[str, str],
    base_url: str,
    session: requests.Session,
    tally: Tally,
) -> None:
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES[caller],
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        _sprinkle(case, data)
        _no_autopilot(case)
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        except UnicodeEncodeError:  # a surrogate in a multipart field: the client cannot send it
            tally.unsendable += 1
            return
        tally.record(case, response, caller)

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to make invalid (no parameters, no body): the positive run covers it


def _guest(base_url: str) -> dict[str, str]:
    resp = httpx.post(f"{base_url}/v1/auth/guest", timeout=30)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_generated_requests_never_get_a_server_error(cluster: Cluster) -> None:
    base_url = cluster.gateway
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    admin = Principal(user_id="fuzz-admin", tenant_id="default", role="admin", is_guest=False)
    admin_headers = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, admin)}"}
    tally, operations, started = Tally(), 0, time.monotonic()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            callers = {"guest": _guest(base_url), "anonymous": {}}
            if operation.path.startswith("/v1/admin/") and operation.method.upper() == "GET":
                callers["admin"] = admin_headers  # read-only: nothing a later test sees
            for caller, headers in callers.items():
                for mode in MODES:
                    _fuzz(operation, mode, caller, headers, base_url, session, tally)
    took = time.monotonic() - started
    print(
        f"\nfuzz: {tally.sent} requests to {operations} operations in {took:.0f} s, "
        f"by status {dict(sorted(tally.by_status.items()))} ({tally.unsendable} not sendable)"
    )
    assert operations >= 25, "the OpenAPI document lost operations"
    assert not tally.server_errors, (
        f"{len(tally.server_errors)} of {tally.sent} requests got a server error:\n\n"
        + "\n\n".join(tally.server_errors[:25])
    )
    assert tally.sent >= MIN_REQUESTS, f"only {tally.sent} requests were sent"
