"""Reading realtime.messages as the owner, and joining a private channel as Realtime checks it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from psycopg import errors

from events_schema.db import connect
from events_schema.postgrest import claims_for


def topic_of(user: uuid.UUID) -> str:
    return f"user:{user}"


def messages(admin: psycopg.Connection, user: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """Every message (or one user's), oldest first, as Realtime would broadcast them."""
    rows = admin.execute(
        "select topic, extension, event, private, payload, id from realtime.messages"
        " where %(topic)s::text is null or topic = %(topic)s order by inserted_at, id",
        {"topic": topic_of(user) if user else None},
    ).fetchall()
    return [
        {"topic": t, "extension": x, "event": e, "private": p, "payload": payload, "id": str(i)}
        for t, x, e, p, payload, i in rows
    ]


def _settings(conn: psycopg.Connection, role: str, claims: dict[str, Any], topic: str) -> None:
    """What Realtime sets before it asks the user's policies (Authorization.set_conn_config)."""
    conn.execute(
        "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
        " set_config('request.jwt.claims', %s, true), set_config('request.headers', '{}', true)",
        (role, topic, json.dumps(claims)),
    )


def can_receive(
    db_url: str, role: str, topic: str, user: uuid.UUID | None = None, extension: str = "broadcast"
) -> bool:
    """Realtime's read check for a private channel: in one transaction, as its own login, insert a
    probe message on the topic (Realtime probes 'broadcast' and 'presence'), switch to the user's role and claims, read the probe back by id,
    roll back. Read = may join and receive broadcasts."""
    with connect(db_url) as conn, conn.transaction(force_rollback=True):
        [probe] = conn.execute(
            "insert into realtime.messages (topic, extension) values (%s, %s) returning id", (topic, extension)
        ).fetchone()
        _settings(conn, role, claims_for(role, user), topic)
        found = conn.execute(
            "select count(*) from realtime.messages where topic = %s and extension = %s and id = %s",
            (topic, extension, probe),
        ).fetchone()[0]
        return bool(found)


def can_send(db_url: str, role: str, topic: str, user: uuid.UUID | None = None) -> bool:
    """Realtime's write check: insert a message on the topic as the user; refused = may not send."""
    with connect(db_url) as conn, conn.transaction(force_rollback=True):
        _settings(conn, role, claims_for(role, user), topic)
        try:
            with conn.transaction():
                conn.execute("insert into realtime.messages (topic, extension) values (%s, 'broadcast')", (topic,))
            return True
        except errors.InsufficientPrivilege:
            return False


def visible(db_url: str, role: str, topic: str, user: uuid.UUID | None = None) -> list[str]:
    """The topics of the stored messages a role may read with realtime.topic() set to `topic`."""
    with connect(db_url) as conn, conn.transaction(force_rollback=True):
        _settings(conn, role, claims_for(role, user), topic)
        return [row[0] for row in conn.execute("select topic from realtime.messages order by inserted_at")]
