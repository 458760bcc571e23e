"""Mint an admin token (prompt administration) with the configured JWT secret.

    .venv/bin/python -m services.gateway.admin_token [--user ops-1] [--tenant default]

Accounts and roles managed in the web app come later; until then an operator with
access to ``LECTERN_JWT_SECRET`` mints admin tokens here.
"""

from __future__ import annotations

import argparse

from services.gateway.auth import Principal, issue_token
from shared.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="admin", help="user id recorded as the author")
    parser.add_argument("--tenant", default="default")
    args = parser.parse_args()
    principal = Principal(user_id=args.user, tenant_id=args.tenant, role="admin", is_guest=False)
    print(issue_token(get_settings("gateway").jwt_secret, principal))


if __name__ == "__main__":
    main()
