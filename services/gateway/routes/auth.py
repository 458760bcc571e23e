"""``/v1/auth``: guests, accounts (email + password) and who the caller is.

Passwords are hashed with Argon2id (argon2-cffi's defaults), in a thread so a login
does not stall other requests. A guest who registers keeps their user id, so the
courses they made as a guest stay theirs.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from services.gateway.auth import (
    CurrentPrincipal,
    Principal,
    bearer_token,
    issue_token,
    token_ttl_s,
    verify_token,
)
from services.gateway.budgets import Budget, budget_of
from services.gateway.inputs import Input
from services.gateway.rate_limits import AUTH, GUEST, limit, limit_login
from services.gateway.store import users
from shared.contracts.base import new_id

_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")
# verified against when the email is unknown, so both cases take as long
_DUMMY_HASH = _hasher.hash("lectern-timing-equaliser")

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str = Field(description="Bearer token for the Authorization header.")
    token_type: str = Field("bearer", description="Always 'bearer'.")
    user_id: str = Field(description="The user the token is for.")
    is_guest: bool = Field(description="Whether the user is a guest.")
    expires_in: int = Field(description="Seconds the token is valid (a guest's is shorter).")


@router.post("/guest", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
async def guest(request: Request) -> TokenOut:
    """Start as a guest: a new user and a token for it."""
    await limit(request, GUEST)
    principal = Principal(user_id=new_id(), tenant_id="default", role="learner", is_guest=True)
    async with request.app.state.runtime.sessionmaker() as session, session.begin():
        await session.execute(
            insert(users).values(
                user_id=principal.user_id,
                tenant_id=principal.tenant_id,
                is_guest=True,
                role=principal.role,
            )
        )
    return _token(request, principal)


class Credentials(Input):
    """An email and a password."""

    email: str = Field(max_length=320, examples=["ada@example.org"])
    password: str = Field(min_length=8, max_length=1024, description="At least 8 characters.")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        if not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value


class Me(BaseModel):
    user_id: str
    email: str | None
    is_guest: bool
    role: str
    budget: Budget = Field(description="LLM tokens allowed, used and left this month.")


async def _optional_principal(request: Request) -> Principal | None:
    token = bearer_token(request)
    return None if token is None else verify_token(request.app.state.settings.jwt_secret, token)


def _account_token(request: Request, row: Any) -> TokenOut:
    """The token of the account in ``row`` (user_id, tenant_id, role)."""
    principal = Principal(
        user_id=row.user_id, tenant_id=row.tenant_id, role=row.role, is_guest=False
    )
    return _token(request, principal)


def _token(request: Request, principal: Principal) -> TokenOut:
    settings = request.app.state.settings
    ttl = token_ttl_s(settings, principal)
    return TokenOut(
        access_token=issue_token(settings.jwt_secret, principal, ttl),
        user_id=principal.user_id,
        is_guest=principal.is_guest,
        expires_in=int(ttl),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
async def register(
    body: Credentials,
    request: Request,
    caller: Annotated[Principal | None, Depends(_optional_principal)],
) -> TokenOut:
    """Create an account; called with a guest's token, the guest becomes the account."""
    await limit(request, AUTH)
    password_hash = await asyncio.to_thread(_hasher.hash, body.password)
    sessionmaker = request.app.state.runtime.sessionmaker
    admins = {e.strip().lower() for e in request.app.state.settings.admin_emails}
    role = "admin" if body.email in admins else "learner"
    try:
        async with sessionmaker() as session, session.begin():
            if caller is not None and caller.is_guest:
                upgraded = await session.execute(
                    update(users)
                    .where(users.c.user_id == caller.user_id, users.c.is_guest.is_(True))
                    .values(
                        email=body.email, password_hash=password_hash, is_guest=False, role=role
                    )
                    .returning(users.c.user_id, users.c.tenant_id, users.c.role)
                )
                row: Any = upgraded.first()
            else:
                row = None
            if row is None:
                row = (
                    await session.execute(
                        insert(users)
                        .values(
                            user_id=new_id(),
                            tenant_id="default",
                            email=body.email,
                            password_hash=password_hash,
                            is_guest=False,
                            role=role,
                        )
                        .returning(users.c.user_id, users.c.tenant_id, users.c.role)
                    )
                ).one()
    except IntegrityError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="an account with this email exists: log in instead"
        ) from exc
    return _account_token(request, row)


@router.post("/login", response_model=TokenOut)
async def login(body: Credentials, request: Request) -> TokenOut:
    """A token for an account."""
    await limit(request, AUTH)
    await limit_login(request, body.email)
    async with request.app.state.runtime.sessionmaker() as session:
        row = (await session.execute(select(users).where(users.c.email == body.email))).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored, body.password)
        ok = row is not None and bool(row.password_hash)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong email or password")
    return _account_token(request, row)


@router.get("/me", response_model=Me)
async def me(request: Request, who: CurrentPrincipal) -> Me:
    """Who the token belongs to (role ``admin`` may use the prompt administration)."""
    async with request.app.state.runtime.sessionmaker() as session:
        row = (await session.execute(select(users).where(users.c.user_id == who.user_id))).first()
    budget = await budget_of(
        request.app.state.runtime.sessionmaker, request.app.state.settings, who
    )
    return Me(
        user_id=who.user_id,
        email=row.email if row is not None else None,
        is_guest=who.is_guest,
        role=who.role,
        budget=budget,
    )
