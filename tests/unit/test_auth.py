"""Bearer and stream tokens: HS256 only, sub and exp required, each kind only where it belongs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from services.gateway.auth import (
    Principal,
    current_principal,
    issue_stream_token,
    issue_token,
    token_ttl_s,
    verify_stream_token,
    verify_token,
)
from shared.settings import LecternSettings

SECRET = "s3cret-" * 10  # 70 bytes: long enough for HS512 too (no key-length warning)
NOW = int(time.time())  # at import: the whole suite runs (10+ minutes) before some tests here
CLAIMS = {"sub": "u1", "tenant": "default", "role": "learner", "iat": NOW, "exp": NOW + 86_400}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT put together by hand (for algorithms PyJWT would not sign with here)."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return f"{head}.{_b64(signature)}"


def _refused(token: str) -> str:
    with pytest.raises(HTTPException) as err:
        verify_token(SECRET, token)
    assert err.value.status_code == 401
    assert err.value.headers == {"WWW-Authenticate": "Bearer"}
    return str(err.value.detail)


def test_token_round_trip() -> None:
    who = Principal(user_id="u1", tenant_id="t1", role="learner", is_guest=True)
    assert verify_token(SECRET, issue_token(SECRET, who)) == who
    assert jwt.get_unverified_header(issue_token(SECRET, who))["alg"] == "HS256"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_token_is_refused(alg: str) -> None:
    assert _refused(_token({"alg": alg, "typ": "JWT"}, CLAIMS)) == "invalid token"
    # with a signature too, in case a verifier only looks at the header
    mac = hmac.new(SECRET.encode(), b"x", hashlib.sha256).digest()
    assert _refused(_token({"alg": alg, "typ": "JWT"}, CLAIMS, mac)) == "invalid token"


def test_other_algorithms_are_refused_even_with_the_right_secret() -> None:
    assert _refused(jwt.encode(CLAIMS, SECRET, algorithm="HS512")) == "invalid token"
    assert _refused(jwt.encode(CLAIMS, SECRET, algorithm="HS384")) == "invalid token"
    rs256 = _token({"alg": "RS256", "typ": "JWT"}, CLAIMS, b"\x01" * 256)
    assert _refused(rs256) == "invalid token"
    es256 = _token({"alg": "ES256", "typ": "JWT"}, CLAIMS, b"\x01" * 64)
    assert _refused(es256) == "invalid token"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    assert _refused(jwt.encode({**CLAIMS, "role": "admin"}, "guess-" * 8)) == "invalid token"
    genuine = issue_token(SECRET, Principal("u1", "default", "learner", False))
    head, payload, signature = genuine.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["role"] = "admin"
    assert _refused(f"{head}.{_b64(json.dumps(tampered).encode())}.{signature}") == "invalid token"


def test_an_expired_token_is_refused_saying_so() -> None:
    expired = jwt.encode({**CLAIMS, "iat": NOW - 7200, "exp": NOW - 3600}, SECRET)
    assert "expired" in _refused(expired)


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_a_token_without_exp_or_sub_is_refused(missing: str) -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != missing}
    assert _refused(jwt.encode(claims, SECRET, algorithm="HS256")) == "invalid token"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": "u\x00"},
        {"sub": "x" * 201},
        {"tenant": ["a"]},
        {"role": "admin\n"},
    ],
)
def test_claims_that_no_column_can_hold_are_refused(claims: dict[str, Any]) -> None:
    assert _refused(jwt.encode({**CLAIMS, **claims}, SECRET, algorithm="HS256")) == "invalid token"


def test_garbage_is_refused() -> None:
    for token in ("", "x", "a.b.c", "a.b", "....", "eyJ.eyJ.sig"):
        assert _refused(token) == "invalid token"


def test_a_guest_token_lives_shorter_than_an_accounts() -> None:
    settings = LecternSettings()
    guest = Principal("g1", "default", "learner", is_guest=True)
    account = Principal("a1", "default", "learner", is_guest=False)
    lives = {}
    for who in (guest, account):
        claims = jwt.decode(
            issue_token(SECRET, who, token_ttl_s(settings, who)), SECRET, algorithms=["HS256"]
        )
        lives[who.user_id] = claims["exp"] - claims["iat"]
    assert lives == {"g1": 7 * 24 * 3600, "a1": 30 * 24 * 3600}
    shorter = LecternSettings(LECTERN_GUEST_TOKEN_TTL_HOURS="1")
    assert token_ttl_s(shorter, guest) == 3600 and token_ttl_s(shorter, account) == lives["a1"]


def test_a_stream_token_opens_only_its_jobs_stream() -> None:
    stream = issue_stream_token(SECRET, "u1", "job-1", 120)
    claims = jwt.decode(stream, SECRET, algorithms=["HS256"])
    assert claims["scope"] == "stream:job-1" and claims["exp"] - claims["iat"] == 120
    assert verify_stream_token(SECRET, stream, "job-1") == "u1"
    with pytest.raises(HTTPException) as err:
        verify_stream_token(SECRET, stream, "job-2")
    assert err.value.status_code == 401
    # it is no bearer token
    assert "stream token" in _refused(stream)
    # and a bearer token is no stream token
    bearer = issue_token(SECRET, Principal("u1", "default", "learner", False))
    with pytest.raises(HTTPException) as err:
        verify_stream_token(SECRET, bearer, "job-1")
    assert err.value.status_code == 401
    expired = jwt.encode(
        {"sub": "u1", "scope": "stream:job-1", "iat": NOW - 300, "exp": NOW - 60}, SECRET
    )
    with pytest.raises(HTTPException, match="expired"):
        verify_stream_token(SECRET, expired, "job-1")


def _request(query: str = "", authorization: str | None = None) -> Request:
    class _State:
        settings = LecternSettings(jwt_secret=SECRET)

    class _App:
        state = _State()

    headers = [(b"authorization", authorization.encode())] if authorization else []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/courses",
        "query_string": query.encode(),
        "headers": headers,
        "app": _App(),
    }
    return Request(scope)


async def test_the_bearer_token_is_read_from_the_header_only() -> None:
    token = issue_token(SECRET, Principal("u1", "default", "learner", False))
    assert (await current_principal(_request(authorization=f"Bearer {token}"))).user_id == "u1"
    with pytest.raises(HTTPException) as err:  # never from the URL, where logs keep it
        await current_principal(_request(query=f"access_token={token}"))
    assert err.value.status_code == 401


def test_default_secret_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        LecternSettings(environment="production")
    assert LecternSettings(environment="production", jwt_secret="x" * 40).jwt_secret
