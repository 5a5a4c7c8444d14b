"""The scan decides from trigger-kept summaries of the event log: they must follow every write,
give way to the log where they cannot tell (activity after as_of), and, when they drift, be
found and rebuilt so that decisions are the log's again."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from events_schema.db import connect
from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, at
from tests.waiting import join
from worker.database import dispose_engines
from worker.scan.scanner import Decision, run_scan

AS_OF = "2026-03-04T12:00:00"  # 12:00 UTC: outside quiet hours; the 48 h cutoff is 03-02T12:00


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_COOLDOWN_HOURS", "QUIET_HOURS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def rules(monkeypatch: pytest.MonkeyPatch, *configured: dict) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps(list(configured)))
    get_settings.cache_clear()


def decide(iso: str = AS_OF) -> dict[uuid.UUID, tuple[str, str]]:
    """{user: (decision, last active)} of a dry full scan: what the engine would do at `iso`."""
    seen: list[Decision] = []
    run_scan(at(iso), dry_run=True, full=True, on_decision=seen.append)
    return {d.user_id: (d.decision, d.last_active_at.isoformat()) for d in seen}


def summary_of(admin: psycopg.Connection, user: uuid.UUID) -> object:
    """The per-user summary as the scan reads it: merged with the log's unfolded tail."""
    return admin.execute(
        "select greatest(u.last_activity_at, (select max(t.last_at) from public.engagement_activity_tail() t"
        " where t.user_id = u.user_id)) from engagement_users u where u.user_id = %s",
        (user,),
    ).fetchone()[0]


def drift(admin: psycopg.Connection) -> list[tuple]:
    return admin.execute("select * from public.engagement_summary_drift() order by 1, 2, 3").fetchall()


@pytest.mark.parametrize("later", ["2026-03-04T12:00:00.000001", "2026-03-10T00:00:00"])
def test_activity_after_as_of_is_read_from_the_log(admin: psycopg.Connection, later: str) -> None:
    """The summary keeps the latest activity of all time; a scan at an earlier instant must still
    find the user due by what they did at or before it."""
    user = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, user, "2026-03-01T00:00:00")
    add_event(admin, user, later)
    assert decide() == {user: ("nudge", "2026-03-01T00:00:00+00:00")}


@pytest.mark.parametrize("not_activity", ["soft-deleted", "a nudge", "a type the rule does not count"])
def test_the_log_read_past_as_of_counts_activity_only(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, not_activity: str
) -> None:
    """Where the summary is after as_of the decide query reads the log back from as_of: a
    soft-deleted event, a nudge and (for a rule narrowing the types) another type inside the
    threshold are not activity there either."""
    narrowed = not_activity == "a type the rule does not count"
    rules(monkeypatch, {"name": "r48", "threshold_hours": 48, "event_types": ["app_open"] if narrowed else None})
    user = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, user, "2026-03-01T00:00:00")
    inside = "2026-03-03T00:00:00"
    if not_activity == "soft-deleted":
        admin.execute("update engagement_events set is_deleted = true where id = %s", (add_event(admin, user, inside),))
    else:
        add_event(admin, user, inside, "nudge_sent" if not_activity == "a nudge" else "coach_message")
    add_event(admin, user, "2026-03-10T00:00:00")  # the summaries are after as_of: the log is read
    assert decide() == {user: ("nudge", "2026-03-01T00:00:00+00:00")}


def test_activity_exactly_at_as_of_counts(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, user, "2026-03-01T00:00:00")
    add_event(admin, user, AS_OF)
    add_event(admin, user, "2026-03-10T00:00:00")
    assert decide() == {}


def test_a_user_with_only_later_activity_is_last_active_at_sign_up(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, user, "2026-03-10T00:00:00")
    assert decide() == {user: ("nudge", "2026-01-01T00:00:00+00:00")}


def test_a_rule_narrowing_the_types_reads_its_types_only(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(monkeypatch, {"name": "goals_48h", "threshold_hours": 48, "event_types": ["goal_complete"]})
    lapsed = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, lapsed, "2026-03-01T00:00:00", "goal_complete")
    add_event(admin, lapsed, "2026-03-04T00:00:00", "app_open")  # not counted by this rule
    add_event(admin, lapsed, "2026-03-10T00:00:00", "goal_complete")  # after as_of
    active = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, active, "2026-03-02T12:00:00.000001", "goal_complete")
    assert decide() == {lapsed: ("nudge", "2026-03-01T00:00:00+00:00")}


def test_the_per_user_summary_follows_every_write(admin: psycopg.Connection) -> None:
    a = add_user(admin, "2026-01-01T00:00:00")
    b = add_user(admin, "2026-01-01T00:00:00")
    assert summary_of(admin, a) is None
    # One statement, several users and types: each user's latest counted event.
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type, is_deleted) values"
        " (%(a)s, '2026-03-01T00:00Z', 'app_open', false), (%(a)s, '2026-03-02T00:00Z', 'goal_complete', false),"
        " (%(a)s, '2026-03-05T00:00Z', 'nudge_sent', false), (%(a)s, '2026-03-06T00:00Z', 'app_open', true),"
        " (%(b)s, '2026-02-01T00:00Z', 'app_open', false)",
        {"a": a, "b": b},
    )
    assert (summary_of(admin, a), summary_of(admin, b)) == (at("2026-03-02T00:00:00"), at("2026-02-01T00:00:00"))
    add_event(admin, a, "2026-02-15T00:00:00")  # older: no change
    assert summary_of(admin, a) == at("2026-03-02T00:00:00")
    # A soft delete of the latest moves the user back; undoing it moves them forward again.
    admin.execute(
        "update engagement_events set is_deleted = true where user_id = %s and event_type = 'goal_complete'", (a,)
    )
    assert summary_of(admin, a) == at("2026-03-01T00:00:00")
    admin.execute(
        "update engagement_events set is_deleted = false where user_id = %s and event_type = 'goal_complete'", (a,)
    )
    assert summary_of(admin, a) == at("2026-03-02T00:00:00")
    # A correction of the time, then deleting everything counted: back to no activity.
    admin.execute(
        "update engagement_events set timestamp = '2026-03-03T00:00Z' where user_id = %s and event_type = 'goal_complete'",
        (a,),
    )
    assert summary_of(admin, a) == at("2026-03-03T00:00:00")
    admin.execute(
        "delete from engagement_events where user_id = %s and event_type <> 'nudge_sent' and not is_deleted", (a,)
    )
    assert summary_of(admin, a) is None
    assert drift(admin) == []


def arrange_population(admin: psycopg.Connection) -> None:
    """Users due, not due, never active, in quiet hours and opted out, with several types."""
    admin.execute("""
        insert into auth.users (id, created_at, raw_user_meta_data)
        select gen_random_uuid(), '2026-01-01T00:00Z'::timestamptz + g * interval '1 day',
               jsonb_build_object('timezone', (array['UTC','Asia/Tokyo','America/New_York'])[1 + g % 3],
                                  'nudges_opt_out', (g % 11 = 0)::text)
        from generate_series(1, 60) g""")
    # User g (signed up on day g) has five events 13 h apart, the latest 2 g hours before AS_OF;
    # every fifth user has none.
    admin.execute("""
        insert into engagement_events (user_id, timestamp, event_type)
        select u.id, '2026-03-04T12:00Z'::timestamptz - (k * 13 + 2 * g) * interval '1 hour',
               (array['app_open','goal_complete','coach_message'])[1 + k % 3]
        from (select id, extract(day from created_at - '2026-01-01T00:00Z')::int as g from auth.users) u,
             generate_series(0, 4) k
        where u.g % 5 <> 0""")


def summaries_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "--database-url", db_url, "summaries", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def due_by_the_log(admin: psycopg.Connection) -> dict[uuid.UUID, str]:
    """{user: last active} of everyone due at AS_OF for the default rule, from the log alone:
    the latest counted event at or before AS_OF, else the sign-up (no summary involved)."""
    rows = admin.execute(
        """
        select u.user_id, coalesce(max(e.timestamp), u.signed_up_at)
        from engagement_users u
        left join engagement_events e on e.user_id = u.user_id and not e.is_deleted
          and e.event_type <> all (public.engagement_reserved_event_types()) and e.timestamp <= %(as_of)s
        group by u.user_id, u.signed_up_at
        having coalesce(max(e.timestamp), u.signed_up_at) <= %(as_of)s::timestamptz - interval '48 hours'
    """,
        {"as_of": at(AS_OF)},
    ).fetchall()
    return {user: last.isoformat() for user, last in rows}


def due(decisions: dict[uuid.UUID, tuple[str, str]]) -> dict[uuid.UUID, str]:
    return {user: last for user, (_, last) in decisions.items()}


def test_edited_summaries_are_found_and_a_rebuild_gives_the_same_decisions(
    admin: psycopg.Connection, db_url: str
) -> None:
    arrange_population(admin)
    truth = decide()
    assert {d for d, _ in truth.values()} >= {"nudge", "quiet_hours", "opted_out"}
    assert due(truth) == due_by_the_log(admin)
    admin.execute(
        "update engagement_users set last_activity_at = '2026-03-04T00:00Z'"
        " where user_id in (select user_id from engagement_users order by user_id desc limit 10)"
    )
    admin.execute("delete from engagement_last_activity where event_type = 'coach_message'")
    admin.execute(
        "insert into engagement_last_activity select user_id, 'made_up', '2026-03-04T11:00Z' from engagement_users limit 3"
    )
    assert decide() != truth  # the drift changes decisions: it matters

    counts = Counter(row[0] for row in drift(admin))
    assert set(counts) == {"engagement_users.last_activity_at", "engagement_last_activity"}
    found = summaries_cli(db_url)
    assert found.returncode == 1, found
    assert all(f"{name}: {n}" in found.stdout for name, n in counts.items()), found
    rebuilt = summaries_cli(db_url, "--rebuild")
    assert rebuilt.returncode == 0 and "rows changed" in rebuilt.stdout, rebuilt
    assert drift(admin) == []
    agree = summaries_cli(db_url)
    assert (agree.returncode, agree.stdout.strip()) == (0, "summaries agree with the event log"), agree
    after = decide()
    assert {u: (after.get(u), truth.get(u)) for u in set(after) | set(truth) if after.get(u) != truth.get(u)} == {}


def test_a_load_with_triggers_off_drifts_and_a_rebuild_follows_the_log(admin: psycopg.Connection) -> None:
    arrange_population(admin)
    admin.execute("select public.fold_engagement_summaries()")  # the summaries hold the rows
    before = due_by_the_log(admin)
    admin.execute("set session_replication_role = replica")  # as a bulk load or restore does
    admin.execute(
        "update engagement_events set timestamp = timestamp - interval '9 days'"
        " where user_id in (select user_id from engagement_users order by user_id limit 15)"
    )
    admin.execute("reset session_replication_role")
    assert due_by_the_log(admin) != before and due(decide()) != due_by_the_log(admin)
    assert drift(admin)
    assert admin.execute("select public.rebuild_engagement_summaries()").fetchone()[0] > 0
    assert due(decide()) == due_by_the_log(admin)
    assert admin.execute("select public.rebuild_engagement_summaries()").fetchone()[0] == 0


@pytest.mark.parametrize("event_types", [None, ["app_open"]])
def test_due_exactly_at_the_threshold_in_a_full_scan(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, event_types: list[str] | None
) -> None:
    """Both kinds of full scan (the per-user range read, the walk of a rule narrowing the types)."""
    rules(monkeypatch, {"name": "r48", "threshold_hours": 48, "event_types": event_types})
    at_cutoff = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, at_cutoff, "2026-03-02T12:00:00")
    just_after = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, just_after, "2026-03-02T12:00:00.000001")
    assert decide() == {at_cutoff: ("nudge", "2026-03-02T12:00:00+00:00")}


def test_a_soft_delete_racing_an_insert_leaves_no_drift(admin: psycopg.Connection, db_url: str) -> None:
    """A writer inserts a newer event of a (user, type) and has not committed; another soft-deletes
    an older one of the same pair. The insert writes no summary (it is in the log's tail until a
    fold), so the recompute does not wait for it, and the tail brings it in when it commits."""
    user = add_user(admin, "2026-01-01T00:00:00")
    add_event(admin, user, "2026-03-01T00:00:00")
    older = add_event(admin, user, "2026-02-01T00:00:00")
    with connect(db_url) as inserter, connect(db_url, autocommit=True) as deleter:
        add_event(inserter, user, "2026-03-03T00:00:00")
        done = threading.Event()

        def soft_delete() -> None:
            deleter.execute("update engagement_events set is_deleted = true where id = %s", (older,))
            done.set()

        worker = threading.Thread(target=soft_delete)
        worker.start()
        join(worker)
        inserter.commit()
    assert done.is_set()
    assert summary_of(admin, user) == at("2026-03-03T00:00:00")
    assert drift(admin) == []
