"""Calling `public.import_events` exactly as PostgREST does for `POST /rpc/import_events`."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from events_schema.postgrest import claims_for, request, rpc

PARAMETERS = {"batch": "jsonb", "batch_id": "text"}


def body_of(batch: Any, batch_id: str | None = None) -> str:
    """The request body a caller (supabase-js, curl) sends."""
    return json.dumps({"batch": batch, **({"batch_id": batch_id} if batch_id is not None else {})})


def call(api: psycopg.Connection, body: str, role: str = "service_role", user: Any = None) -> Any:
    """One request as `role` (with a user's token when `user` is given); commits on success."""
    with request(api, role, claims_for(role, user)) as conn:
        return rpc(conn, "public.import_events", body, PARAMETERS)
