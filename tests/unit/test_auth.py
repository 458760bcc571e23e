from __future__ import annotations

import jwt
import pytest
from fastapi import HTTPException

from services.gateway.auth import Principal, issue_token, verify_token
from shared.settings import LecternSettings

SECRET = "s3cret-" * 6


def test_token_round_trip() -> None:
    who = Principal(user_id="u1", tenant_id="t1", role="learner", is_guest=True)
    assert verify_token(SECRET, issue_token(SECRET, who)) == who


def test_forged_token_is_refused() -> None:
    forged = jwt.encode({"sub": "admin"}, "guess-" * 8, algorithm="HS256")
    with pytest.raises(HTTPException) as err:
        verify_token(SECRET, forged)
    assert err.value.status_code == 401


def test_default_secret_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        LecternSettings(environment="production")
    assert LecternSettings(environment="production", jwt_secret="x" * 40).jwt_secret
