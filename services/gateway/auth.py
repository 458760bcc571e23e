"""Authentication: JWT bearer tokens; guests get a user and a token in one call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Query, Request, status

ALGORITHM = "HS256"
TOKEN_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user_id: str
    tenant_id: str
    role: str
    is_guest: bool


def issue_token(secret: str, principal: Principal) -> str:
    """A signed token for ``principal``."""
    now = int(time.time())
    claims = {
        "sub": principal.user_id,
        "tenant": principal.tenant_id,
        "role": principal.role,
        "guest": principal.is_guest,
        "iat": now,
        "exp": now + TOKEN_TTL_S,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def verify_token(secret: str, token: str) -> Principal:
    """The principal in ``token``; 401 when it is missing, forged or expired."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired: get a new one from POST /v1/auth/guest") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("invalid token") from exc
    return Principal(
        user_id=str(claims["sub"]),
        tenant_id=str(claims.get("tenant") or "default"),
        role=str(claims.get("role") or "learner"),
        is_guest=bool(claims.get("guest", False)),
    )


async def current_principal(
    request: Request,
    access_token: Annotated[
        str | None,
        Query(description="Token for clients that cannot set headers (EventSource)."),
    ] = None,
) -> Principal:
    """FastAPI dependency: the caller, from ``Authorization: Bearer`` or ``access_token``."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else access_token
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
