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
from psycopg import sql

from events_schema.db import one_row

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


def rpc(conn: psycopg.Connection, function: str, body: str, parameters: dict[str, str]) -> Any:
    """`POST /rpc/<function>` with a JSON `body`, in the statement PostgREST builds for it.

    PostgREST passes the body as one `json` value, takes the arguments out of it with
    json_to_record (each typed as the function's parameter: `parameters` maps name to type) and
    calls the function with named arguments, only those the body has, so the others take their
    defaults. A value the parameter's type refuses (e.g. \\u0000 into jsonb) fails the request.
    Run it inside request(); returns the decoded result.
    """
    schema, name = function.split(".")
    present = [p for p in parameters if p in json.loads(body)]
    if not present:
        raise ValueError(f"the body names none of {function}'s parameters {list(parameters)}")
    statement = sql.SQL(
        "with pgrst_source as (select pgrst_call.pgrst_scalar"
        " from (select %s::json as json_data) pgrst_payload,"
        " lateral (select {columns} from json_to_record(pgrst_payload.json_data) as _({typed}) limit 1) pgrst_body,"
        " lateral (select {function}({arguments}) pgrst_scalar) pgrst_call)"
        " select coalesce(json_agg(_postgrest_t.pgrst_scalar) -> 0, 'null') as body"
        " from (select * from pgrst_source) _postgrest_t"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(p) for p in present),
        typed=sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(p), sql.SQL(parameters[p])) for p in present),
        function=sql.Identifier(schema, name),
        arguments=sql.SQL(", ").join(
            sql.SQL("{} := pgrst_body.{}").format(sql.Identifier(p), sql.Identifier(p)) for p in present
        ),
    )
    return one_row(conn.execute(statement, (body,)))[0]
