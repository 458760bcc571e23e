"""Authentication: JWT bearer tokens; guests get a user and a token in one call.

Tokens are HS256 only (the algorithm is pinned: ``alg: none`` and other algorithms are
refused), must carry ``sub`` and ``exp``, and a guest's expires sooner than an
account's. A *stream token* is a second kind: minutes long, scoped to one job
(``scope: stream:<job id>``), accepted only as ``?access_token=`` by that job's event
stream, so an EventSource (which cannot set headers) never puts the long-lived token
in a URL. The bearer token is only read from the ``Authorization`` header.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status

ALGORITHM = "HS256"
STREAM_SCOPE = "stream:"
ACCOUNT_TTL_S = 30 * 24 * 3600  # the default of LECTERN_TOKEN_TTL_HOURS
_CLAIM_TEXT = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,200}")


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user_id: str
    tenant_id: str
    role: str
    is_guest: bool


def issue_token(secret: str, principal: Principal, ttl_s: float = ACCOUNT_TTL_S) -> str:
    """A signed token for ``principal``, valid for ``ttl_s`` seconds."""
    now = int(time.time())
    claims = {
        "sub": principal.user_id,
        "tenant": principal.tenant_id,
        "role": principal.role,
        "guest": principal.is_guest,
        "iat": now,
        "exp": now + int(ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def token_ttl_s(settings: Any, principal: Principal) -> float:
    """How long a new token of ``principal`` lives: a guest's less than an account's."""
    hours = settings.guest_token_ttl_hours if principal.is_guest else settings.token_ttl_hours
    return float(hours) * 3600


def issue_stream_token(secret: str, user_id: str, job_id: str, ttl_s: int) -> str:
    """A token that opens the event stream of ``job_id`` (for ``user_id``) and nothing else."""
    now = int(time.time())
    claims = {"sub": user_id, "scope": f"{STREAM_SCOPE}{job_id}", "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _claims(secret: str, token: str) -> dict[str, Any]:
    """The verified claims of ``token``: HS256, a valid signature, ``sub`` and ``exp``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired: get a new one from POST /v1/auth/guest") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("invalid token") from exc
    # signed by us, but ids end up in database columns: refuse what they cannot hold
    for name in ("sub", "tenant", "role"):
        value = claims.get(name, "x")
        if not isinstance(value, str) or not _CLAIM_TEXT.fullmatch(value):
            raise _unauthorized("invalid token")
    return claims


def verify_token(secret: str, token: str) -> Principal:
    """The principal in a bearer token; 401 when it is forged, expired or malformed."""
    claims = _claims(secret, token)
    if "scope" in claims:
        raise _unauthorized("a stream token only opens its job's event stream")
    return Principal(
        user_id=claims["sub"],
        tenant_id=str(claims.get("tenant") or "default"),
        role=str(claims.get("role") or "learner"),
        is_guest=bool(claims.get("guest", False)),
    )


def verify_stream_token(secret: str, token: str, job_id: str) -> str:
    """The user a stream token was issued to, if it is for ``job_id``; else 401."""
    claims = _claims(secret, token)
    if claims.get("scope") != f"{STREAM_SCOPE}{job_id}":
        raise _unauthorized(
            "access_token must be a stream token of this job: POST /v1/jobs/{job_id}/stream-token"
        )
    return str(claims["sub"])


def bearer_token(request: Request) -> str | None:
    """The token of the ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from ``Authorization: Bearer``."""
    token = bearer_token(request)
    if not token:
        raise _unauthorized("missing bearer token: get one from POST /v1/auth/guest")
    return verify_token(request.app.state.settings.jwt_secret, token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(who: CurrentPrincipal) -> Principal:
    """FastAPI dependency: the caller, who must have the ``admin`` role (else 403)."""
    if who.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="prompt administration needs the admin role"
        )
    return who


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
