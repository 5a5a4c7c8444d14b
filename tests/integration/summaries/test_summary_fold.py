"""Inserts leave the summaries to the fold (migration 20261205100000): no event is lost to it.

An insert only stamps its feed position (feed_xid); public.fold_engagement_summaries() raises
both summaries from the rows at or past its watermark and moves the watermark to the xmin of its
snapshot, below which every transaction had finished. Readers merge the summaries with that
unfolded tail. Two connections race a fold against inserts here: one committed while the fold's
transaction is open, one whose transaction began (took its id) before the fold and commits after
it, one that inserts only after the fold committed although its transaction began before. In
each, the merged summaries and the drift check agree with the log at every step, and the next
fold folds the late row.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
import pytest

from events_schema.db import connect
from events_schema.postgrest import request
from events_schema.settings import get_settings
from tests.integration.summaries.test_summary_writes import CASES, arrange
from tests.waiting import join
from worker.database import dispose_engines
from worker.scan.scanner import Decision, run_scan


def user(conn: psycopg.Connection) -> uuid.UUID:
    return conn.execute(
        "insert into auth.users (id, created_at) values (gen_random_uuid(), '2026-01-01T00:00Z') returning id"
    ).fetchone()[0]


def insert(conn: psycopg.Connection, who: uuid.UUID, when: str, event_type: str = "app_open") -> uuid.UUID:
    return conn.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, %s) returning id",
        (who, when, event_type),
    ).fetchone()[0]


def fold(conn: psycopg.Connection) -> int | None:
    return conn.execute("select public.fold_engagement_summaries()").fetchone()[0]


def folded(conn: psycopg.Connection, who: uuid.UUID) -> tuple[object, list[tuple]]:
    """What the summaries themselves hold for a user (without the tail)."""
    return (
        conn.execute("select last_activity_at from engagement_users where user_id = %s", (who,)).fetchone()[0],
        conn.execute(
            "select event_type, last_at::text from engagement_last_activity where user_id = %s order by 1", (who,)
        ).fetchall(),
    )


def merged(conn: psycopg.Connection, who: uuid.UUID) -> object:
    """The user's latest activity as readers see it: the summary merged with the tail."""
    return conn.execute(
        "select greatest(u.last_activity_at, (select max(t.last_at) from public.engagement_activity_tail() t"
        " where t.user_id = u.user_id))::text from engagement_users u where u.user_id = %s",
        (who,),
    ).fetchone()[0]


def drift(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select * from public.engagement_summary_drift() order by 1, 2, 3").fetchall()


def test_an_insert_leaves_the_summaries_to_the_fold(admin: psycopg.Connection) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    assert folded(admin, who) == (None, [])
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []
    assert fold(admin) >= 1
    assert folded(admin, who)[1] == [("app_open", "2026-03-01 00:00:00+00")]
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    # Folding again changes nothing (the row may still be in the tail: the watermark waits for
    # every transaction of the server that was running, other databases' too).
    fold(admin)
    assert folded(admin, who)[1] == [("app_open", "2026-03-01 00:00:00+00")]
    assert drift(admin) == []


@pytest.mark.parametrize("when", ["committed while the fold is open", "began before the fold, commits after"])
def test_an_insert_racing_a_fold_is_not_lost(admin: psycopg.Connection, db_url: str, when: str) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    fold(admin)
    with connect(db_url) as writer, connect(db_url) as folder:
        if when == "committed while the fold is open":
            assert fold(folder) is not None  # read the tail; not committed yet
            insert(writer, who, "2026-03-05T00:00Z")
            writer.commit()
            folder.commit()
        else:
            insert(writer, who, "2026-03-05T00:00Z")  # its transaction has its id, uncommitted
            assert fold(folder) is not None
            folder.commit()
            assert merged(admin, who) == "2026-03-01 00:00:00+00"
            writer.commit()
    # Not in the summaries (the fold did not see it), but at or past the watermark: in the tail.
    assert merged(admin, who) == "2026-03-05 00:00:00+00"
    assert drift(admin) == []
    fold(admin)
    assert folded(admin, who) == (
        admin.execute("select '2026-03-05T00:00Z'::timestamptz").fetchone()[0],
        [("app_open", "2026-03-05 00:00:00+00")],
    )
    assert drift(admin) == []


def test_a_transaction_older_than_the_fold_that_inserts_after_it_is_not_lost(
    admin: psycopg.Connection, db_url: str
) -> None:
    """The writer took its transaction id (writing something else) before the fold, and inserts
    the event only after the fold committed: its row carries the old id, which the fold's
    watermark had to stay at or below."""
    who = user(admin)
    with connect(db_url) as writer:
        writer.execute("select pg_current_xact_id()")
        fold(admin)
        insert(writer, who, "2026-03-05T00:00Z", "goal_complete")
        writer.commit()
    assert merged(admin, who) == "2026-03-05 00:00:00+00"
    assert drift(admin) == []
    assert fold(admin) >= 1
    assert folded(admin, who)[1] == [("goal_complete", "2026-03-05 00:00:00+00")]


def test_one_fold_at_a_time_and_a_skipped_fold_loses_nothing(admin: psycopg.Connection, db_url: str) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    with connect(db_url) as first:
        assert fold(first) >= 1
        assert fold(admin) is None  # the first still holds the lock: skipped at once
        first.rollback()
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []
    assert fold(admin) >= 1


def test_a_soft_delete_racing_a_fold_leaves_no_drift(admin: psycopg.Connection, db_url: str) -> None:
    """The fold reads a row a concurrent soft delete has not committed. The delete's recompute
    waits for the fold (the shared lock), then sets the pair from the log: the summary never stays
    above the log."""
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    latest = insert(admin, who, "2026-03-03T00:00Z")
    with connect(db_url) as folder, connect(db_url, autocommit=True) as deleter:
        assert fold(folder) >= 1  # holds the lock; raised the pair to 03-03, not committed
        done = threading.Event()

        def soft_delete() -> None:
            deleter.execute("update engagement_events set is_deleted = true where id = %s", (latest,))
            done.set()

        worker = threading.Thread(target=soft_delete)
        worker.start()
        assert not done.wait(0.5)  # the recompute waits for the fold's lock
        folder.commit()
        join(worker)
    assert done.is_set()
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []
    fold(admin)
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []


def test_a_rebuild_after_a_load_that_bypassed_the_tail(admin: psycopg.Connection) -> None:
    """Rows restored with old feed positions (below the watermark) are in neither the summaries
    nor the tail: drift finds them, a rebuild writes them, and only them."""
    who = user(admin)
    fold(admin)
    admin.execute("set session_replication_role = replica")  # as a restore runs
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type, feed_xid) overriding system value"
        " values (%s, '2026-03-02T00:00Z', 'app_open', '2')",
        (who,),
    )
    admin.execute("reset session_replication_role")
    assert {row[0] for row in drift(admin)} == {"engagement_last_activity", "engagement_users.last_activity_at"}
    assert admin.execute("select public.rebuild_engagement_summaries()").fetchone()[0] == 2
    assert drift(admin) == []
    assert merged(admin, who) == "2026-03-02 00:00:00+00"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_role_reads_the_watermark_or_folds(api: psycopg.Connection, role: str) -> None:
    """As PostgREST applies it: the API's user roles can neither read the watermark, nor fold,
    nor read the tail (which names other users' activity)."""
    for statement in (
        "select * from public.engagement_summary_fold",
        "select public.fold_engagement_summaries()",
        "select * from public.engagement_activity_tail()",
        "update public.engagement_summary_fold set folded_below = '1'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), request(api, role):
            api.execute(statement)


def test_the_service_role_reads_the_watermark_and_folds_but_never_writes_it(
    api: psycopg.Connection, admin: psycopg.Connection
) -> None:
    insert(admin, user(admin), "2026-03-01T00:00Z")
    with request(api, "service_role"):
        assert api.execute("select count(*) from public.engagement_summary_fold").fetchone()[0] == 1
        assert api.execute("select public.fold_engagement_summaries()").fetchone()[0] >= 1
        assert api.execute("select count(*) from public.engagement_activity_tail()").fetchone()[0] >= 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege), request(api, "service_role"):
        api.execute("update public.engagement_summary_fold set folded_below = '1'")


# Every kind of write, then a fold: the folded summaries agree with the log, and a rebuild
# finds nothing to change (the same cases test_summary_writes checks without a fold).


@pytest.mark.parametrize("write", list(CASES), ids=list(CASES))
def test_a_fold_after_every_kind_of_write_agrees_with_the_log(admin: psycopg.Connection, write: str) -> None:
    ids = arrange(admin)
    fold(admin)
    with admin.transaction():
        CASES[write](admin, ids)
    fold(admin)
    assert drift(admin) == []
    assert admin.execute("select public.rebuild_engagement_summaries()").fetchone()[0] == 0


# Scans while another transaction holds the fold's lock: the scan's own fold is skipped, so the
# rows written since the last fold are only in the tail, which its queries must merge.

AS_OF = "2026-03-04T12:00:00+00:00"  # 12:00 UTC: outside quiet hours; the 48 h cutoff is 03-02T12:00


@pytest.fixture
def scanning(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_COOLDOWN_HOURS", "QUIET_HOURS_ENABLED", "NUDGE_MAX_PER_SCAN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


@contextmanager
def fold_held_elsewhere(db_url: str) -> Iterator[None]:
    with connect(db_url) as holder:
        holder.execute("select pg_advisory_xact_lock(public.engagement_summary_lock_key())")
        yield
        holder.rollback()


def due_at(iso: str, **kwargs: object) -> dict[uuid.UUID, str]:
    seen: list[Decision] = []
    run_scan(datetime.fromisoformat(iso), on_decision=seen.append, **kwargs)  # type: ignore[arg-type]
    return {d.user_id: d.decision for d in seen if d.decision != "not_due"}


def test_a_scan_folds_before_it_decides(admin: psycopg.Connection, scanning: None) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    assert due_at(AS_OF, dry_run=True, full=True) == {who: "nudge"}
    assert folded(admin, who)[1] == [("app_open", "2026-03-01 00:00:00+00")]


def test_activity_only_in_the_tail_is_last_activity(admin: psycopg.Connection, db_url: str, scanning: None) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    fold(admin)
    with fold_held_elsewhere(db_url):
        insert(admin, who, "2026-03-03T00:00Z")  # inside the threshold, unfolded
        assert due_at(AS_OF, dry_run=True, full=True) == {}
        assert folded(admin, who)[0] is not None and merged(admin, who) == "2026-03-03 00:00:00+00"


def test_an_incremental_scan_finds_who_crossed_by_unfolded_activity(
    admin: psycopg.Connection, db_url: str, scanning: None
) -> None:
    who = user(admin)
    insert(admin, who, "2026-02-27T11:00Z")
    fold(admin)
    with fold_held_elsewhere(db_url):
        insert(admin, who, "2026-02-27T12:10Z")  # crosses 48 h inside the next beat's window
        assert due_at("2026-03-01T12:00:00+00:00", full=True) == {}
        assert due_at("2026-03-01T12:15:00+00:00", full=False) == {who: "nudge"}


def test_a_full_scan_finds_a_new_user_by_unfolded_activity_older_than_the_sign_up(
    admin: psycopg.Connection, db_url: str, scanning: None
) -> None:
    """Signed up after the cutoff, with a back-dated event before it: last active is that event."""
    who = admin.execute(
        "insert into auth.users (id, created_at) values (gen_random_uuid(), '2026-03-03T00:00Z') returning id"
    ).fetchone()[0]
    fold(admin)
    with fold_held_elsewhere(db_url):
        insert(admin, who, "2026-02-20T00:00Z")
        assert due_at(AS_OF, dry_run=True, full=True) == {who: "nudge"}


def test_two_soft_deletes_of_one_pair_racing_leave_no_drift(admin: psycopg.Connection, db_url: str) -> None:
    """Two writers each soft-delete one of a (user, type)'s two latest events. The second's
    recompute waits for the first's lock on the pair's row and then reads the log after it, so
    neither leaves the pair at a row the other deleted."""
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    second = insert(admin, who, "2026-03-02T00:00Z")
    latest = insert(admin, who, "2026-03-03T00:00Z")
    fold(admin)
    with connect(db_url) as first_writer, connect(db_url, autocommit=True) as second_writer:
        first_writer.execute("update engagement_events set is_deleted = true where id = %s", (latest,))
        done = threading.Event()

        def soft_delete() -> None:
            second_writer.execute("update engagement_events set is_deleted = true where id = %s", (second,))
            done.set()

        worker = threading.Thread(target=soft_delete)
        worker.start()
        assert not done.wait(0.5)  # waits for the first writer's lock on the pair
        first_writer.commit()
        join(worker)
    assert done.is_set()
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []


def test_a_fold_racing_an_uncommitted_soft_delete_skips(admin: psycopg.Connection, db_url: str) -> None:
    """The soft delete's recompute ran first and has not committed; a fold now would read the
    row as not deleted and raise the pair past the log once the delete commits. The delete holds
    the fold's lock shared, so the fold skips instead (its rows stay in the tail)."""
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    fold(admin)
    latest = insert(admin, who, "2026-03-03T00:00Z")  # unfolded
    outcome: list[int | None] = []
    with connect(db_url) as deleter, connect(db_url) as folder:
        deleter.execute("update engagement_events set is_deleted = true where id = %s", (latest,))

        def run_fold() -> None:
            outcome.append(fold(folder))
            folder.commit()

        worker = threading.Thread(target=run_fold)
        worker.start()
        worker.join(0.5)
        deleter.commit()
        join(worker)
    assert outcome == [None]
    assert merged(admin, who) == "2026-03-01 00:00:00+00"
    assert drift(admin) == []


def test_the_command_folds(admin: psycopg.Connection, db_url: str) -> None:
    who = user(admin)
    insert(admin, who, "2026-03-01T00:00Z")
    done = subprocess.run(
        [sys.executable, "-m", "events_schema", "--database-url", db_url, "summaries", "--fold"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done
    assert re.fullmatch(r"folded \d+ rows of the log's tail\n", done.stdout), done
    assert folded(admin, who)[1] == [("app_open", "2026-03-01 00:00:00+00")]


def test_a_row_exactly_at_the_watermark_is_in_the_tail(admin: psycopg.Connection) -> None:
    """The watermark is the oldest transaction still running when the fold read the log; its
    rows are not folded yet, so the tail starts at the watermark itself. (The watermark is set by
    hand here: a test cannot make its writer the oldest transaction of a shared server.)"""
    who = user(admin)
    fold(admin)
    insert(admin, who, "2026-03-05T00:00Z")
    position = admin.execute("select feed_xid from engagement_events where user_id = %s", (who,)).fetchone()[0]
    admin.execute("update engagement_summary_fold set folded_below = %s", (position,))
    assert merged(admin, who) == "2026-03-05 00:00:00+00"
    assert drift(admin) == []
    assert fold(admin) >= 1
    assert folded(admin, who)[1] == [("app_open", "2026-03-05 00:00:00+00")]
