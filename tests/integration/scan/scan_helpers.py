"""Arranging users and events for scan scenarios, as the owner (never used for RLS claims)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
from freezegun import freeze_time

from worker.clock import parse_instant
from worker.scan.scanner import ScanSummary, run_scan


def at(iso: str) -> datetime:
    """An instant written as ISO-8601 (UTC when no offset is given, for brevity in tests)."""
    parsed = datetime.fromisoformat(iso)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_user(
    conn: psycopg.Connection,
    signed_up: str,
    *,
    tz: str | None = None,
    opt_out: bool = False,
) -> uuid.UUID:
    meta: dict[str, str] = {}
    if tz is not None:
        meta["timezone"] = tz
    if opt_out:
        meta["nudges_opt_out"] = "true"
    return conn.execute(
        "insert into auth.users (id, created_at, raw_user_meta_data) values (gen_random_uuid(), %s, %s) returning id",
        (at(signed_up), json.dumps(meta)),
    ).fetchone()[0]


def add_event(conn: psycopg.Connection, user_id: uuid.UUID, when: str, event_type: str = "app_open") -> uuid.UUID:
    return conn.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, %s) returning id",
        (user_id, at(when), event_type),
    ).fetchone()[0]


def nudges(conn: psycopg.Connection, user_id: uuid.UUID | None = None) -> list[tuple[datetime, dict]]:
    """(timestamp, value) of nudge events, oldest first."""
    return conn.execute(
        "select timestamp, value from engagement_events where event_type = 'nudge_sent'"
        " and (%(u)s::uuid is null or user_id = %(u)s) order by timestamp, user_id",
        {"u": user_id},
    ).fetchall()


def scan_at(iso: str, **kwargs: object) -> ScanSummary:
    """Run the scan with Python's clock frozen at `iso`: as_of defaults to "now"."""
    with freeze_time(at(iso)):
        return run_scan(parse_instant(None), **kwargs)
