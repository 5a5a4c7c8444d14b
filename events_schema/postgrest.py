"""Acting exactly as PostgREST does for one request, so RLS is exercised from the outside.

PostgREST opens a transaction, switches to the request's role and sets the JWT claims
transaction-locally (`set_config(..., true)`, the same as SET LOCAL). The connection must log in
as a role that is not a superuser and does not own the tables (`authenticator` here), or RLS
proves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg

API_ROLES = ("anon", "authenticated", "service_role")


def claims_for(role: str, user_id: UUID | str | None = None) -> dict[str, Any]:
    """The claims of the anon key (`anon`), a user's token (`authenticated`) or the service key."""
    claims: dict[str, Any] = {"role": role, "iss": "supabase"}
    if user_id is not None:
        claims["sub"] = str(user_id)
        claims["aud"] = "authenticated"
    return claims


@contextmanager
def request(conn: psycopg.Connection, role: str, claims: dict[str, Any] | None = None) -> Iterator[psycopg.Connection]:
    """One PostgREST-style request: a transaction with the role and claims set locally.

    The transaction commits when the block ends normally and rolls back on an exception.
    """
    if role not in API_ROLES:
        raise ValueError(f"unknown API role {role!r}")
    with conn.transaction():
        # One statement, as PostgREST sends it; set_config('role', ..., true) is SET LOCAL ROLE.
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (role, json.dumps(claims if claims is not None else claims_for(role))),
        )
        yield conn
