"""Retention and "forget me": soft deletes (`is_deleted`) in bounded chunks, safe to re-run.

Each chunk is its own short transaction, so neither holds row locks on many events at once on a
busy table; a run that stops halfway is finished by the next run. A soft-deleted event is hidden
from its user by RLS and dropped from the engine's `engagement_last_activity` by the table's
update trigger as soon as the chunk commits. The hard delete is deleting the auth user: the
foreign key cascades to their events (and triggers remove their feed entries, quarantined input
and stored broadcasts).

Realtime's stored broadcasts (realtime.messages) live at most MESSAGE_LIFETIME, retention on or
off, as Supabase's Realtime keeps them; a message that carries an event retention has just
soft-deleted, or any of a forgotten user's, goes at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg.errors

from events_schema.db import one_row
from events_schema.queries import QueryFolder
from events_schema.settings import get_settings
from worker.database import service_transaction

query = QueryFolder.beside(__file__)

# At least as many event rows as one 8 KiB heap page can hold: the smallest row (`{}` payload,
# one-letter type) took 72 bytes plus a 4-byte line pointer before the feed columns, so 107 fit
# (measured; 88 fit since feed_xid and feed_seq). A chunk of N rows' worth of pages spans
# N // 107 pages (at least one), so it never touches more than max(N, 107) rows.
MAX_ROWS_PER_PAGE = 107
DEADLOCK_ATTEMPTS = 3
# Supabase's Realtime drops its daily partitions of realtime.messages older than 72 hours.
MESSAGE_LIFETIME = timedelta(hours=72)

T = TypeVar("T")


def _chunk(name: str, params: dict[str, Any], result: Callable[[psycopg.Cursor[Any]], T], url: str | None) -> T:
    """Run query `name` as one chunk in its own transaction. A deadlock (retention and a forget
    crossing on the same rows) aborts one side; every chunk is idempotent, so it runs again."""
    attempt = 1
    while True:
        try:
            with service_transaction(url) as conn:
                return result(conn.execute(query(name), params))
        except psycopg.errors.DeadlockDetected:
            if attempt == DEADLOCK_ATTEMPTS:
                raise
            attempt += 1


def _rowcount(cursor: psycopg.Cursor[Any]) -> int:
    return cursor.rowcount


def apply_retention(
    as_of: datetime,
    *,
    retention_days: int | None = None,
    chunk_size: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Soft-delete events older than `retention_days` (default RETENTION_DAYS) at `as_of`, and
    delete the stored broadcasts older than MESSAGE_LIFETIME or carrying such an event.

    Events are untouched when no retention is configured; old broadcasts go all the same. The table is walked in
    page ranges of `chunk_size` rows' worth of pages (default RETENTION_CHUNK_SIZE), one
    transaction each: at most `chunk_size` rows, or one page's worth when that is smaller.
    """
    settings = get_settings()
    days = retention_days if retention_days is not None else settings.retention_days
    if days is None:
        return {
            "soft_deleted": 0,
            "chunks": 0,
            "cutoff": None,
            "note": "retention is off (RETENTION_DAYS unset)",
            "messages_deleted": _prune_messages(as_of, None, url),
        }
    cutoff = as_of - timedelta(days=days)
    pages_per_chunk = max(1, (chunk_size or settings.retention_chunk_size) // MAX_ROWS_PER_PAGE)
    pages = _chunk("retention_table_pages", {}, lambda cur: one_row(cur)[0], url)
    soft_deleted = chunks = 0
    for first_page in range(0, pages, pages_per_chunk):
        params = {
            "first_page": f"({first_page},0)",
            "end_page": f"({first_page + pages_per_chunk},0)",
            "cutoff": cutoff,
        }
        soft_deleted += _chunk("retention_soft_delete_pages", params, _rowcount, url)
        chunks += 1
    return {
        "soft_deleted": soft_deleted,
        "chunks": chunks,
        "cutoff": cutoff.isoformat(),
        "messages_deleted": _prune_messages(as_of, cutoff, url),
    }


def _prune_messages(as_of: datetime, events_before: datetime | None, url: str | None) -> int:
    params = {"older_than": as_of - MESSAGE_LIFETIME, "events_before": events_before}
    return int(_chunk("retention_prune_messages", params, one_row, url)[0])


def forget_user(user_id: UUID, *, chunk_size: int | None = None, url: str | None = None) -> dict[str, Any]:
    """Soft-delete all of one user's events, newest first, and drop their quarantined input and
    stored broadcasts.

    Events logged after this call are kept: it forgets the past, it does not block the user.
    """
    limit = chunk_size or get_settings().retention_chunk_size
    params: dict[str, Any] = {"user_id": user_id, "through": "infinity", "limit": limit}
    soft_deleted = chunks = 0
    while True:
        count, oldest = _chunk("retention_forget_user_chunk", params, one_row, url)
        chunks += 1
        if count == 0:
            break
        soft_deleted += count
        # Ties at `oldest` not yet deleted are found again; those deleted are filtered out.
        params["through"] = oldest
    purged = _chunk("retention_forget_user_quarantine", params, _rowcount, url)
    messages = int(_chunk("retention_forget_user_messages", params, one_row, url)[0])
    return {
        "user_id": str(user_id),
        "soft_deleted": soft_deleted,
        "chunks": chunks,
        "quarantine_purged": purged,
        "messages_deleted": messages,
    }
