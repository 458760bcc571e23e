"""``/v1/auth``: tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert

from services.gateway.auth import Principal, issue_token
from services.gateway.store import users
from shared.contracts.base import new_id

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str = Field(description="Bearer token for the Authorization header.")
    token_type: str = Field("bearer", description="Always 'bearer'.")
    user_id: str = Field(description="The user the token is for.")
    is_guest: bool = Field(description="Whether the user is a guest.")


@router.post("/guest", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
async def guest(request: Request) -> TokenOut:
    """Start as a guest: a new user and a token for it."""
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
    token = issue_token(request.app.state.settings.jwt_secret, principal)
    return TokenOut(access_token=token, user_id=principal.user_id, is_guest=True)
