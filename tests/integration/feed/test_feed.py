"""The live feed against the real PostgreSQL: delivery, RLS, and lossless resumption.

Every assertion compares what consumers received with what the table holds, exactly: the feed
must lose nothing, repeat nothing, and show a user only what RLS lets them read.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.migrate import discover, migrate
from events_schema.postgrest import claims_for, request
from tests.waiting import join
from worker.feed import BEGINNING, CHANNEL, Cursor, Feed, FeedError, FeedEvent, Snapshot, Subscription
from worker.feed.subscription import query


def _users(admin: psycopg.Connection, n: int) -> list[UUID]:
    rows = admin.execute(
        # As GoTrue writes them (id and created_at given): some tests run migrations from before
        # sign-up times had a rule for a NULL created_at.
        "insert into auth.users (id, email, created_at)"
        " select gen_random_uuid(), 'feed' || g || '-' || gen_random_uuid() || '@example.com', now()"
        " from generate_series(1, %s) g returning id",
        (n,),
    ).fetchall()
    return [row[0] for row in rows]


def _insert(
    conn: psycopg.Connection, user_id: UUID, n: int = 1, event_type: str = "app_open", age: str = "0 seconds"
) -> list[UUID]:
    """n events for one user in one statement (one transaction when autocommit)."""
    rows = conn.execute(
        'insert into engagement_events (user_id, event_type, "timestamp", value)'
        " select %s, %s, now() - %s::interval, jsonb_build_object('n', g) from generate_series(1, %s) g"
        " returning id",
        (user_id, event_type, age, n),
    ).fetchall()
    return [row[0] for row in rows]


def _collect(subscription: Subscription, n: int, timeout: float = 10.0) -> list[FeedEvent]:
    """Exactly n events (fails on a shortfall); a surplus shows up in the callers' set checks."""
    events: list[FeedEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < n:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"received {len(events)} of {n} events"
        events += subscription.next_batch(timeout=remaining)
    return events


def _ids(events: Iterable[FeedEvent]) -> list[UUID]:
    return [event.id for event in events]


def _authenticator_url(db_url: str) -> str:
    return make_url(db_url).set(username="authenticator", password=None).render_as_string(hide_password=False)


def test_cursor_round_trips_and_garbage_is_refused() -> None:
    cursors = [
        Cursor(Snapshot(1, 1)),
        Cursor(Snapshot(7_000_000_123, 7_000_000_140, (7_000_000_123, 7_000_000_131))),
        Cursor(Snapshot(900, 950, (900, 907)), Snapshot(905, 990, (905, 960)), (907, 12)),
        Cursor(Snapshot(900, 950), Snapshot(950, 951), (0, 0)),
        Cursor(Snapshot(900, 950), Snapshot(950, 951), (899, 2**63 - 1)),
    ]
    for cursor in cursors:
        text = cursor.encode()
        assert text.isascii() and text.startswith("A") and " " not in text
        assert Cursor.decode(text) == cursor
    for garbage in (
        "",
        "hello",
        "B" + cursors[2].encode()[1:],
        cursors[2].encode() + "AA",
        cursors[2].encode()[:-2],
        "%%%",
    ):
        with pytest.raises(FeedError, match="not a feed cursor"):
            Cursor.decode(garbage)
    # Cursors of the dropped log table (version 1) are refused with a way forward, not misread.
    with pytest.raises(FeedError, match="fresh cursor"):
        Cursor.decode("AQAAAA")


def test_a_consumer_receives_an_insert_when_it_commits(db_url: str, admin: psycopg.Connection) -> None:
    [user] = _users(admin, 1)
    # A poll interval far past the wait below: delivery within it needs the NOTIFY wake-up.
    with Feed(db_url, poll_interval=600).subscribe() as subscription:
        assert subscription.next_batch(timeout=0.2) == []
        with admin.transaction():
            [event_id] = _insert(admin, user, event_type="goal_complete")
            assert subscription.next_batch(timeout=0.3) == [], "delivered before it committed"
        [event] = subscription.next_batch(timeout=60)
    assert (event.id, event.user_id, event.event_type, event.value, event.is_deleted) == (
        event_id,
        user,
        "goal_complete",
        {"n": 1},
        False,
    )
    assert event.timestamp.utcoffset().total_seconds() == 0


def test_two_consumers_of_one_database_both_receive_a_trickle(db_url: str, admin: psycopg.Connection) -> None:
    """Only one consumer can hold the handshake lock; the other polls (backing off to 100 ms)."""
    [user] = _users(admin, 1)
    feed = Feed(db_url, poll_interval=600)  # delivery within the waits below is not the fallback poll
    with feed.subscribe() as first, feed.subscribe() as second:
        assert first.next_batch(timeout=0.3) == [] and second.next_batch(timeout=0.3) == []
        for _ in range(3):
            # Both are waiting when the event commits: one for a NOTIFY, the other polling.
            got: dict[str, list[UUID]] = {}

            def wait(name: str, subscription: Subscription) -> None:
                got[name] = _ids(subscription.next_batch(timeout=60))  # noqa: B023

            threads = [threading.Thread(target=wait, args=item) for item in (("first", first), ("second", second))]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            [event_id] = _insert(admin, user)
            join(*threads, timeout=90)
            assert got == {"first": [event_id], "second": [event_id]}


def test_writers_notify_only_while_a_consumer_waits(db_url: str, admin: psycopg.Connection) -> None:
    """The handshake that keeps NOTIFY (and its commit-time lock) off the write path under load."""
    [user] = _users(admin, 1)
    with connect(db_url, autocommit=True) as consumer:
        consumer.execute(f"listen {CHANNEL}")
        _insert(admin, user)
        assert list(consumer.notifies(timeout=0.3)) == [], "notified with nobody waiting"
        with connect(db_url) as writer:
            _insert(writer, user)  # uncommitted: it skipped its NOTIFY, so nobody may start waiting
            assert consumer.execute(query("feed_wait_begin")).fetchone()[0] is False
        assert consumer.execute(query("feed_wait_begin")).fetchone()[0] is True
        _insert(admin, user, n=3)
        assert [n.payload for n in consumer.notifies(timeout=5, stop_after=1)] == [""]
        consumer.execute(query("feed_wait_end"))
        _insert(admin, user)
        assert list(consumer.notifies(timeout=0.3)) == []


def test_a_user_consumer_receives_exactly_what_rls_lets_the_user_read(db_url: str, admin: psycopg.Connection) -> None:
    users = _users(admin, 8)
    watched = users[:2]
    feed = Feed(_authenticator_url(db_url), page_size=7, poll_interval=0.2)
    subscriptions = {user: feed.subscribe(user_id=user) for user in watched}
    received: dict[UUID, list[FeedEvent]] = {user: [] for user in watched}
    writing = threading.Event()
    writing.set()

    def consume(user: UUID) -> None:
        with subscriptions[user] as subscription:
            while writing.is_set():
                received[user] += subscription.next_batch(timeout=0.1)
            while batch := subscription.next_batch(timeout=1.0):  # stragglers
                received[user] += batch

    def write(user: UUID) -> None:
        # As the app does: through the API, with the user's token, each thread its own connection.
        with connect(_authenticator_url(db_url)) as conn:
            for i in range(15):
                with request(conn, "authenticated", claims_for("authenticated", user)):
                    _insert(conn, user, n=1 + i % 3)

    consumers = [threading.Thread(target=consume, args=(user,)) for user in watched]
    writers = [threading.Thread(target=write, args=(user,)) for user in users]
    for thread in consumers + writers:
        thread.start()
    # Rows users may never see: soft-deleted in the same transaction that wrote them, and written
    # already deleted by the service (an import of deleted rows).
    with connect(db_url) as service, request(service, "service_role"):
        for user in watched:
            ids = _insert(service, user, n=3, event_type="coach_message")
            service.execute("update engagement_events set is_deleted = true where id = any(%s)", (ids,))
            service.execute(
                "insert into engagement_events (user_id, event_type, is_deleted) values (%s, 'app_open', true)",
                (user,),
            )
    join(*writers)
    writing.clear()
    join(*consumers)

    for user in watched:
        expected = {
            row[0]
            for row in admin.execute("select id from engagement_events where user_id = %s and not is_deleted", (user,))
        }
        ids = _ids(received[user])
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert set(ids) == expected
        assert {event.user_id for event in received[user]} == {user}
        assert not any(event.is_deleted for event in received[user])


def test_writers_cannot_choose_a_rows_feed_position(
    db_url: str, admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    """A client that set feed_xid or feed_seq could hide its row from consumers, or have it
    delivered again."""
    [user] = _users(admin, 1)
    claims = claims_for("authenticated", user)
    with pytest.raises(errors.InsufficientPrivilege), request(api, "authenticated", claims):
        api.execute(
            "insert into engagement_events (user_id, event_type, feed_xid) values (%s, 'app_open', '5')", (user,)
        )
    with pytest.raises(errors.InsufficientPrivilege), request(api, "service_role"):
        api.execute("update engagement_events set feed_xid = '5'")
    with pytest.raises(errors.InsufficientPrivilege), request(api, "service_role"):
        api.execute(
            "insert into engagement_events (user_id, event_type, feed_seq) overriding system value"
            " values (%s, 'app_open', 5)",
            (user,),
        )
    with request(api, "authenticated", claims):
        api.execute("insert into engagement_events (user_id, event_type) values (%s, 'app_open')", (user,))
        written = api.execute("select feed_xid::text, pg_current_xact_id()::text from engagement_events").fetchone()
    assert written[0] == written[1], "stamped with the writing transaction"
    with request(api, "service_role"):
        api.execute("update engagement_events set is_deleted = true")
        moved = api.execute("select feed_xid::text, pg_current_xact_id()::text from engagement_events").fetchone()
    assert moved[0] == moved[1] != written[0], "an update moves the row to the updating transaction"


def test_resuming_after_a_stop_delivers_every_event_exactly_once(db_url: str, admin: psycopg.Connection) -> None:
    users = _users(admin, 3)
    feed = Feed(db_url, poll_interval=0.2)
    received: list[FeedEvent] = []

    with feed.subscribe() as first:
        _insert(admin, users[0], n=5)
        received += _collect(first, 5)
        cursor = first.cursor
    # The consumer is gone. A transaction starts (and takes its id) before the others, and stays
    # open while back-dated and current events commit.
    with connect(db_url) as long_running:
        [late_id] = _insert(long_running, users[1], event_type="coach_message")
        early_xid = long_running.execute("select pg_current_xact_id()::text::bigint").fetchone()[0]
        others = _insert(admin, users[2], n=3, age="30 days") + _insert(admin, users[2], n=4)
        xids = admin.execute(
            "select distinct feed_xid::text::bigint from engagement_events where id = any(%s)", (others,)
        ).fetchall()
        assert min(row[0] for row in xids) > early_xid, "a position-based cursor would now skip it"

        with feed.subscribe(since=cursor) as second:
            got = _collect(second, 7)
            assert set(_ids(got)) == set(others)
            assert second.next_batch(timeout=0.3) == []
            long_running.commit()
            got += _collect(second, 1)
            assert got[-1].id == late_id, "delivered when it committed"
            received += got

            # Stop in the middle of a transaction's events; resume from the last one handled.
            batch = _insert(admin, users[0], n=6)
            iterator = iter(second)
            handled = [next(iterator), next(iterator)]
            stop_cursor = handled[-1].cursor
            assert second.cursor == stop_cursor
    received += handled
    assert set(_ids(handled)) < set(batch)

    # A small page size walks the rest page by page, with a cursor inside the interval.
    with Feed(db_url, page_size=2, poll_interval=0.2).subscribe(since=stop_cursor) as third:
        received += _collect(third, 4)
        assert third.next_batch(timeout=0.5) == []

    ids = _ids(received)
    table = [row[0] for row in admin.execute("select id from engagement_events").fetchall()]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(table)


def test_from_the_beginning_and_updates_for_the_service_role(db_url: str, admin: psycopg.Connection) -> None:
    [user] = _users(admin, 1)
    [old] = _insert(admin, user, age="400 days")
    with Feed(db_url).subscribe() as live:
        admin.execute("update engagement_events set is_deleted = true where id = %s", (old,))
        [update] = _collect(live, 1)
        assert live.next_batch(timeout=0.3) == []
    assert (update.id, update.is_deleted) == (old, True), "a soft delete is delivered to the service"
    with Feed(db_url).subscribe(since=BEGINNING) as subscription:
        [event] = _collect(subscription, 1)
        assert subscription.next_batch(timeout=0.3) == []
    assert (event.id, event.is_deleted) == (old, True), "once, as the row is now"


def test_events_from_before_the_feed_moved_onto_the_table_are_delivered_from_the_beginning(
    empty_db_url: str, tmp_path: Path
) -> None:
    """An upgrade from the log-table feed: rows written before it are history, not news."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for migration in discover():
        if migration.version < "20261126100400":
            shutil.copy(migration.path, directory)
    migrate(empty_db_url, directory)
    with connect(empty_db_url, autocommit=True) as admin:
        [user] = _users(admin, 1)
        before = set(_insert(admin, user, n=3))
        migrate(empty_db_url)
        assert {row[0] for row in admin.execute("select distinct feed_xid::text from engagement_events")} == {"1"}
        with Feed(empty_db_url).subscribe() as live:
            after = set(_insert(admin, user, n=2))
            assert set(_ids(_collect(live, 2))) == after
            assert live.next_batch(timeout=0.3) == []
        with Feed(empty_db_url).subscribe(since=BEGINNING) as everything:
            got = _ids(_collect(everything, 5))
            assert everything.next_batch(timeout=0.3) == []
    assert set(got[:3]) == before and set(got[3:]) == after


def test_a_cursor_from_another_database_history_is_refused(db_url: str) -> None:
    ahead = Cursor(Snapshot(10**12, 10**12)).encode()
    with Feed(db_url).subscribe(since=ahead) as subscription:  # noqa: SIM117
        with pytest.raises(FeedError, match="ahead of this database"):
            subscription.next_batch(timeout=0.1)


def test_engagement_events_is_published_for_realtime_with_a_usable_replica_identity(
    admin: psycopg.Connection,
) -> None:
    published = admin.execute(
        "select p.pubinsert, t.tablename from pg_publication p"
        " join pg_publication_tables t on t.pubname = p.pubname"
        " where p.pubname = 'supabase_realtime' and t.schemaname = 'public'"
    ).fetchall()
    assert (True, "engagement_events") in published
    # Realtime streams INSERTs from the new row; DEFAULT identity (the primary key) is enough.
    identity, has_primary_key = admin.execute(
        "select c.relreplident, exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)"
        " from pg_class c where c.oid = 'public.engagement_events'::regclass"
    ).fetchone()
    assert (identity, has_primary_key) == ("d", True)
