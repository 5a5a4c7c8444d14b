"""The live event feed: every committed event, to each subscriber, once, in commit order.

Why not LISTEN/NOTIFY alone: notifications carry at most 8000 bytes, are lost while nobody
listens, and each notifying commit takes a cluster-wide lock. Why not logical decoding: it needs
wal_level=logical (and a restart) and a slot that retains WAL while its consumer is away.
Instead, every row of engagement_events carries the id of the transaction that last wrote it
(`feed_xid`, with `feed_seq` to order a transaction's rows; see
events_schema/migrations/20261126100400_feed_on_the_events_table.sql), and a
consumer's cursor is a transaction snapshot: it has received exactly the rows of the transactions
that snapshot sees as committed (PgQ's technique). Each fetch takes a new snapshot and reads the
rows of the transactions committed in between, so a transaction that began early and commits late
is delivered when it commits, and back-dated timestamps do not matter. An update moves a row to
the updating transaction: the row is delivered again, as it is then.

Wake-ups: NOTIFY serialises the commits of the transactions that send it, so writers send it only
while a consumer is waiting for one (an advisory-lock handshake, see the migration). A consumer
that has just received events reads again after `linger` instead; one that finds nothing takes
the handshake lock and waits for a NOTIFY, or, when writers are mid-commit, polls with backoff.
A lost notification only delays: the wait falls back to polling.

A consumer acting for a user reads inside a PostgREST-style transaction with that user's claims,
so PostgreSQL's RLS decides what it receives (never another user's row, never a soft-deleted one).
"""

from __future__ import annotations

import base64
import logging
import select
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from events_schema.db import DatabaseUnavailable, connect
from events_schema.errors import UsageError
from events_schema.pooler import SessionRequired, require_session, session_setting
from events_schema.postgrest import claims_for, request
from events_schema.queries import QueryFolder
from events_schema.settings import get_settings

query = QueryFolder.beside(__file__)

CHANNEL = "engagement_event_feed"
CURSOR_VERSION = 2  # 1: positions in the per-event log of 20261126100300, dropped
# Longest pause between reads while writers are mid-commit: bounds the delay when some
# transaction holds the handshake lock for long (it inserted events, then kept working).
BUSY_POLL_MAX = 0.1
logger = logging.getLogger(__name__)


class FeedError(UsageError):
    """A cursor the feed cannot use (a command exits 2)."""


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL `pg_snapshot`: transactions below xmin and those in [xmin, xmax) that are
    not in xip had finished (committed or aborted) when it was taken."""

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), tuple(int(x) for x in xip.split(",") if x))

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, self.xip))}"


@dataclass(frozen=True)
class Cursor:
    """Where a consumer stands: it has every row of the transactions `base` sees as committed,
    plus, while it is part-way through the transactions committed between `base` and `target`,
    those of them up to the row at `after` = (feed_xid, feed_seq)."""

    base: Snapshot
    target: Snapshot | None = None
    after: tuple[int, int] = (0, 0)

    def encode(self) -> str:
        """Opaque, printable and shell-safe: varints in URL-safe base64 (always starts with 'A')."""
        base = self.base
        numbers = [CURSOR_VERSION, base.xmin, base.xmax - base.xmin, len(base.xip)]
        numbers += [x - base.xmin for x in base.xip]
        if self.target is None:
            numbers.append(0)
        else:
            target = self.target
            numbers += [1, _zigzag(target.xmin - base.xmin), target.xmax - target.xmin, len(target.xip)]
            numbers += [x - target.xmin for x in target.xip]
            numbers += [_zigzag(self.after[0] - base.xmin), self.after[1]]
        return base64.urlsafe_b64encode(_varints(numbers)).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            numbers = iter(_read_varints(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))
            version = next(numbers)
            if version == 1:
                raise FeedError(
                    "this cursor is from the feed's earlier log table, dropped by migration "
                    "20261126100400; resume from a fresh cursor (or from the beginning)"
                )
            if version != CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            base = _read_snapshot(numbers, next(numbers))
            if next(numbers) == 0:
                cursor = cls(base)
            else:
                target = _read_snapshot(numbers, base.xmin + _unzigzag(next(numbers)))
                cursor = cls(base, target, (base.xmin + _unzigzag(next(numbers)), next(numbers)))
            if next(numbers, None) is not None:
                raise ValueError("trailing data")
        except (ValueError, StopIteration) as exc:
            raise FeedError(f"not a feed cursor: {text!r}") from exc
        return cursor


def _read_snapshot(numbers: Iterator[int], xmin: int) -> Snapshot:
    xmax = xmin + next(numbers)
    return Snapshot(xmin, xmax, tuple(xmin + next(numbers) for _ in range(next(numbers))))


def _zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def _unzigzag(n: int) -> int:
    return n // 2 if n % 2 == 0 else -(n + 1) // 2


def _varints(numbers: Sequence[int]) -> bytes:
    out = bytearray()
    for n in numbers:
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out)


def _read_varints(data: bytes) -> Iterator[int]:
    n = shift = 0
    for byte in data:
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            yield n
            n = shift = 0
    if shift:
        raise ValueError("truncated varint")


# Every event ever committed: the snapshot that sees nothing as committed.
BEGINNING = Cursor(Snapshot(1, 1)).encode()


@dataclass(frozen=True)
class FeedEvent:
    """One committed write as delivered: the event row as it is when read (a later update
    delivers it again, as it is then), and the position just past it."""

    position: Cursor
    id: UUID
    user_id: UUID
    timestamp: datetime
    event_type: str
    value: dict[str, Any]
    is_deleted: bool

    @property
    def cursor(self) -> str:
        """Resume here to receive what follows this event (encoded on demand: most go unused)."""
        return self.position.encode()

    def as_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "id": str(self.id),
            "user_id": str(self.user_id),
            "timestamp": self.timestamp.isoformat(),
            "event_type": self.event_type,
            "value": self.value,
            "is_deleted": self.is_deleted,
        }


class Feed:
    """Subscriptions to one database's event feed (DATABASE_SESSION_URL, default DATABASE_URL,
    unless `url` is given).

    `linger`: how soon a consumer reads again after receiving events; under load writers do not
    notify, so this is the delivery delay then. `poll_interval`: how long a waiting consumer
    trusts NOTIFY before it looks anyway (a lost notification, a dropped connection).
    """

    def __init__(
        self, url: str | None = None, *, page_size: int = 500, poll_interval: float = 1.0, linger: float = 0.005
    ) -> None:
        # LISTEN and the handshake lock belong to one server session: never a transaction pooler.
        self.url = url or get_settings().session_url
        self.url_setting = "the feed's URL" if url else session_setting()
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.linger = linger

    def subscribe(
        self, user_id: UUID | str | None = None, event_types: Sequence[str] | None = None, since: str | None = None
    ) -> Subscription:
        """Events committed after `since` (a cursor; None: from now on; BEGINNING: all).

        With `user_id`, reads as that user (role `authenticated`, their JWT claims), so RLS
        decides; without, as the service role, which sees every row, soft-deleted ones included.
        Connects at once, so an unreachable database raises DatabaseUnavailable here.
        """
        if user_id is None:
            role, claims = "service_role", claims_for("service_role")
        else:
            role, claims = "authenticated", claims_for("authenticated", UUID(str(user_id)))
        cursor = Cursor.decode(since) if since is not None else None
        return Subscription(self, role, claims, list(event_types) if event_types else None, cursor)


class Subscription:
    """An open subscription: iterate for events one at a time, or call `next_batch()`.

    Not thread-safe; one per thread. Survives a lost connection or a server restart: it
    reconnects and carries on from its cursor, so nothing is lost or repeated. For exactly-once
    processing, persist each event's `cursor` once the event is handled, and resume from it.
    Close it (or use it as a context manager) to release its connection.
    """

    def __init__(
        self, feed: Feed, role: str, claims: dict[str, Any], event_types: list[str] | None, cursor: Cursor | None
    ) -> None:
        self._feed = feed
        self._role = role
        self._claims = claims
        self._event_types = event_types
        self._conn: psycopg.Connection | None = None
        self._closed = False
        self._waiting = False  # holds the handshake lock: writers notify
        # Before the next read: 0 after a full page, linger after events read while writers were
        # busy, poll_interval while listening (the lock held: a NOTIFY will come).
        self._pause = 0.0
        conn = self._connection(first=True)
        self._cursor = cursor or Cursor(self._current_snapshot(conn))

    @property
    def cursor(self) -> str:
        """The position past every event handed out so far (or the latest empty fetch)."""
        return self._cursor.encode()

    def __iter__(self) -> Iterator[FeedEvent]:
        while not self._closed:
            for event in self._next_page(None):
                self._cursor = event.position
                yield event

    def next_batch(self, timeout: float | None = None) -> list[FeedEvent]:
        """Up to `page_size` events, as soon as at least one has committed; [] after `timeout`."""
        page = self._next_page(timeout)
        if page:
            self._cursor = page[-1].position
        return page

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_page(self, timeout: float | None) -> list[FeedEvent]:
        """The next non-empty page of events, or [] once `timeout` passes.

        Three ways to wait before a read: `linger` after events read while writers were busy
        (more will follow, and busy writers do not notify); asleep until a NOTIFY while the
        handshake lock is held (writers told to notify); growing pauses while writers are
        mid-commit. The lock stays held across reads and calls while traffic is light (a NOTIFY
        brings one event at a time), so a trickle costs one read per event; a page with more
        releases it, and writers stop notifying until the consumer has caught up again. The
        caller moves the cursor as it hands events out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, busy = self._pause, 0.0
        while True:
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            self._await_wakeup(pause)
            page = self._read_page()
            if page or (deadline is not None and time.monotonic() >= deadline):
                return page
            if self._waiting:
                # Held all along: whatever commits after that read will notify.
                pause = self._feed.poll_interval
                continue
            if self._start_waiting():
                # Every writer in flight has committed and every later one will notify:
                # one last read, then sleep until a NOTIFY (or the polling fallback).
                page = self._read_page()
                if page or (deadline is not None and time.monotonic() >= deadline):
                    return page
                pause, busy = self._feed.poll_interval, 0.0
            else:
                # Writers are mid-commit (or another consumer waits): read again soon.
                busy = min(max(busy * 2, self._feed.linger), BUSY_POLL_MAX)
                pause = busy

    def _read_page(self) -> list[FeedEvent]:
        """One read: a page (setting how the next call begins), or [] with the cursor moved on.

        While listening, a single event keeps the lock (light traffic); more, and the lock is
        released so that busy writers skip their NOTIFY, and the consumer reads on its own.
        """
        page, position, full = self._fetch_page()
        if not page:
            self._cursor = position
        elif self._waiting and len(page) == 1:
            self._pause = self._feed.poll_interval
        else:
            self._stop_waiting()
            self._pause = 0.0 if full else self._feed.linger
        return page

    # -- connection ------------------------------------------------------------------------------

    def _connection(self, first: bool = False) -> psycopg.Connection:
        """The open connection, LISTENing; reconnects with backoff after a failure (not the first)."""
        if self._closed:
            raise FeedError("the subscription is closed")
        delay = 0.05
        while self._conn is None:
            try:
                conn = connect(self._feed.url, autocommit=True)
                try:
                    if first:
                        require_session(self._feed.url, conn, self._feed.url_setting, "the feed (LISTEN)")
                    conn.execute(sql.SQL("listen {}").format(sql.Identifier(CHANNEL)))
                except (psycopg.Error, SessionRequired):
                    conn.close()
                    raise
                self._conn = conn
            except (DatabaseUnavailable, psycopg.OperationalError) as exc:
                if first and isinstance(exc, DatabaseUnavailable):
                    raise
                if first:
                    raise DatabaseUnavailable(f"cannot listen for the feed: {_first_line(exc)}") from exc
                logger.warning("feed: cannot reconnect yet (%s); retrying in %.2fs", _first_line(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return self._conn

    def _drop_connection(self, exc: Exception) -> None:
        logger.warning("feed: connection lost (%s); reconnecting", _first_line(exc))
        self._waiting = False  # the server released the session's lock with the session
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _start_waiting(self) -> bool:
        """Take the handshake lock, so writers notify; False when writers are mid-commit."""
        try:
            row = self._connection().execute(query("feed_wait_begin")).fetchone()
        except psycopg.OperationalError as exc:
            self._drop_connection(exc)
            return False
        self._waiting = bool(row and row[0])
        return self._waiting

    def _stop_waiting(self) -> None:
        if not self._waiting or self._conn is None:
            return
        self._waiting = False
        try:
            self._conn.execute(query("feed_wait_end"))
        except psycopg.OperationalError as exc:
            self._drop_connection(exc)

    def _await_wakeup(self, timeout: float) -> None:
        """Wait up to `timeout` for a notification, then drain them all: one read answers all.

        Waits on the socket itself: psycopg's timed `notifies()` spins through its last
        millisecond, which at a few milliseconds per pause is a fifth of a core.
        """
        try:
            conn = self._connection()
            if not any(True for _ in conn.notifies(timeout=0)) and timeout > 0:
                select.select([conn.fileno()], [], [], timeout)
                for _ in conn.notifies(timeout=0):
                    pass
        except psycopg.OperationalError as exc:
            self._drop_connection(exc)

    # -- reading ---------------------------------------------------------------------------------

    def _current_snapshot(self, conn: psycopg.Connection) -> Snapshot:
        return current_position(conn).base

    def _fetch_page(self) -> tuple[list[FeedEvent], Cursor, bool]:
        """The next page after the cursor: (events, the cursor past them, whether it was full)."""
        while True:
            try:
                return self._read(self._connection())
            except psycopg.OperationalError as exc:
                self._drop_connection(exc)

    def _read(self, conn: psycopg.Connection) -> tuple[list[FeedEvent], Cursor, bool]:
        return read_page(
            conn, self._cursor, self._role, self._claims, event_types=self._event_types, page_size=self._feed.page_size
        )


def current_position(conn: psycopg.Connection) -> Cursor:
    """A cursor at this instant: what follows is what commits from now on."""
    row = conn.execute(query("feed_snapshot")).fetchone()
    assert row is not None
    return Cursor(Snapshot.parse(row[0]))


def read_page(
    conn: psycopg.Connection,
    cursor: Cursor,
    role: str,
    claims: dict[str, Any],
    *,
    event_types: Sequence[str] | None,
    page_size: int,
) -> tuple[list[FeedEvent], Cursor, bool]:
    """One read after `cursor`: (events, the cursor past them, whether the page was full).

    In a transaction of its own on an idle connection, or inside the caller's open one (as a
    savepoint: the dispatcher reads, sends and moves its cursor in one transaction).
    """
    base, (after_xid, after_seq) = cursor.base, cursor.after
    # One round trip: the request's set-up, the page and the commit go out together, and the
    # rows are read once the pipeline has synced.
    with conn.pipeline(), request(conn, role, claims):
        conn.execute(query("feed_plan_by_index"))
        result = conn.execute(
            query("feed_fetch"),
            {
                "target": None if cursor.target is None else str(cursor.target),
                "after_xid": str(after_xid),
                "after_seq": after_seq,
                "base_xip": [str(x) for x in base.xip if x > after_xid],
                "range_from": str(max(base.xmax, after_xid + 1)),
                "event_types": list(event_types) if event_types else None,
                "page_size": page_size,
            },
        )
    rows = result.fetchall()
    target = Snapshot.parse(rows[0][0])
    if target.xmax < base.xmax:
        raise FeedError(
            "the cursor is ahead of this database (restored from a dump, or another "
            "server?); resume from a fresh cursor"
        )
    rows = [row[1:] for row in rows if row[1] is not None]
    full = len(rows) == page_size
    page = []
    for index, (xid, seq, *event) in enumerate(rows):
        last_of_interval = not full and index == len(rows) - 1
        position = Cursor(target) if last_of_interval else Cursor(base, target, (xid, seq))
        page.append(FeedEvent(position, *event))
    return page, (page[-1].position if page else Cursor(target)), full


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
