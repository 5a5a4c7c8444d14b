"""What each write path sends on the users' private topics: one message per user per statement,
with the count, the newest 20 rows and `truncated`; nudges as `nudge`; nothing private, nothing
soft-deleted, nothing in postgres_changes mode."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from events_schema.db import connect
from events_schema.postgrest import claims_for, request
from events_schema.settings import get_settings
from tests.integration.ingest.import_helpers import NOW, add_users, event, import_cli, write_ndjson
from tests.integration.ingest.rpc_helpers import body_of, call
from tests.integration.realtime.realtime_helpers import messages, topic_of
from tests.integration.scan.scan_helpers import add_event, add_user, scan_at


def insert(conn: psycopg.Connection, rows: list[tuple[uuid.UUID, str]], deleted: bool = False) -> None:
    """One statement: every row in a single INSERT (executemany would be one statement a row)."""
    values = ", ".join(["(%s, %s, %s, '{}'::jsonb, %s)"] * len(rows))
    params = [p for user, kind in rows for p in (user, NOW, kind, deleted)]
    conn.execute(
        f"insert into engagement_events (user_id, timestamp, event_type, value, is_deleted) values {values}", params
    )


def test_a_single_row_through_the_api_is_one_message_on_the_users_topic(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    alice, bob = add_users(admin, 2)
    with request(api, "authenticated", claims_for("authenticated", alice)) as conn:
        [event_id] = conn.execute(
            "insert into engagement_events (user_id, event_type, value) values (%s, 'goal_complete', %s) returning id",
            (alice, json.dumps({"goal": "walk"})),
        ).fetchone()
    [message] = messages(admin)
    assert message["topic"] == topic_of(alice) and message["topic"] != topic_of(bob)
    assert (message["extension"], message["event"], message["private"]) == ("broadcast", "events", True)
    payload = message["payload"]
    assert payload["id"] == message["id"]
    assert (payload["count"], payload["truncated"]) == (1, False)
    [carried] = payload["events"]
    assert carried["id"] == str(event_id)
    assert (carried["event_type"], carried["value"]) == ("goal_complete", {"goal": "walk"})
    assert set(carried) == {"id", "timestamp", "event_type", "value"}


def test_one_statement_for_three_users_is_one_message_each(admin: psycopg.Connection) -> None:
    a, b, c = add_users(admin, 3)
    insert(admin, [(a, "app_open"), (b, "app_open"), (a, "goal_complete"), (c, "app_open"), (a, "app_open")])
    sent = messages(admin)
    assert sorted(m["topic"] for m in sent) == sorted(topic_of(u) for u in (a, b, c))
    counts = {m["topic"]: m["payload"]["count"] for m in sent}
    assert counts == {topic_of(a): 3, topic_of(b): 1, topic_of(c): 1}
    # A second statement is a second message.
    insert(admin, [(b, "app_open")])
    assert [m["payload"]["count"] for m in messages(admin, b)] == [1, 1]


def test_twenty_rows_are_carried_whole_twenty_one_are_truncated_to_the_newest(admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    stamps = [NOW - timedelta(minutes=i) for i in range(21)]
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type)"
        " select u, t, 'app_open' from unnest(%s::uuid[], %s::timestamptz[]) as x (u, t)",
        ([alice] * 20 + [bob] * 21, stamps[:20] + stamps),
    )
    [whole] = messages(admin, alice)
    [cut] = messages(admin, bob)
    assert (whole["payload"]["count"], whole["payload"]["truncated"], len(whole["payload"]["events"])) == (
        20,
        False,
        20,
    )
    assert (cut["payload"]["count"], cut["payload"]["truncated"], len(cut["payload"]["events"])) == (21, True, 20)
    carried = [e["timestamp"] for e in cut["payload"]["events"]]
    assert carried == sorted(carried, reverse=True)
    assert carried[-1] == stamps[19].isoformat()


def test_an_import_of_1000_rows_of_one_user_is_one_message(
    db_url: str, admin: psycopg.Connection, tmp_path: Path
) -> None:
    [alice] = add_users(admin)
    rows = [
        event(alice, "steps", timestamp=(NOW - timedelta(seconds=i)).isoformat().replace("+00:00", "Z"))
        for i in range(1000)
    ]
    result = import_cli([str(write_ndjson(tmp_path / "a.ndjson", rows))], db_url)
    assert result.returncode == 0, result.stderr
    [message] = messages(admin)
    payload = message["payload"]
    assert (message["topic"], message["event"]) == (topic_of(alice), "events")
    assert (payload["count"], payload["truncated"]) == (1000, True)
    assert [e["id"] for e in payload["events"]] == [r["id"] for r in rows[:20]]


def test_import_events_rpc_sends_one_message_per_user(admin: psycopg.Connection, api: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    batch = [event(alice), event(bob), event(alice, "goal_complete")]
    summary = call(api, body_of(batch, "b1"))
    assert summary["inserted"] == 3
    assert {m["topic"]: m["payload"]["count"] for m in messages(admin)} == {topic_of(alice): 2, topic_of(bob): 1}


@pytest.mark.usefixtures("settings_env")
def test_the_scans_nudges_arrive_on_the_same_topic_as_nudge(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    assert [m["event"] for m in messages(admin, user)] == ["events"]
    assert scan_at("2026-03-04T10:00:00").totals()["nudged"] == 1
    sent = messages(admin, user)
    assert [m["event"] for m in sent] == ["events", "nudge"]
    [nudge] = sent[1]["payload"]["events"]
    assert nudge["event_type"] == "nudge_sent" and nudge["value"]["rule"] == "inactive_48h"


def test_a_statement_mixing_nudges_and_other_events_is_events(admin: psycopg.Connection) -> None:
    a, b = add_users(admin, 2)
    insert(admin, [(a, "nudge_sent"), (a, "app_open"), (b, "nudge_sent")])
    assert {m["topic"]: m["event"] for m in messages(admin)} == {topic_of(a): "events", topic_of(b): "nudge"}


@pytest.mark.parametrize("private", ["nudge_withheld", "nudge_shadow", "nudge_delivered", "nudge_failed"])
def test_private_event_types_are_never_broadcast(admin: psycopg.Connection, private: str) -> None:
    a, b = add_users(admin, 2)
    insert(admin, [(a, private), (b, private), (b, "app_open")])
    [message] = messages(admin)
    assert message["topic"] == topic_of(b)
    assert [e["event_type"] for e in message["payload"]["events"]] == ["app_open"]
    assert message["payload"]["count"] == 1


def test_soft_deleted_rows_are_never_broadcast(admin: psycopg.Connection) -> None:
    a, b = add_users(admin, 2)
    insert(admin, [(a, "app_open"), (b, "app_open")], deleted=True)
    assert messages(admin) == []
    insert(admin, [(a, "app_open")])
    admin.execute("update engagement_events set is_deleted = true where user_id = %s", (a,))
    assert len(messages(admin)) == 1, "an update sends nothing"


@pytest.mark.parametrize(("mode", "sends"), [("broadcast", True), ("both", True), ("postgres_changes", False)])
def test_the_mode_switch_as_a_session_setting(admin: psycopg.Connection, mode: str, sends: bool) -> None:
    [alice] = add_users(admin)
    admin.execute("select set_config('engagement.realtime_mode', %s, false)", (mode,))
    insert(admin, [(alice, "app_open")])
    assert len(messages(admin)) == (1 if sends else 0)


def test_the_mode_switch_as_a_database_setting_reaches_new_sessions(db_url: str, admin: psycopg.Connection) -> None:
    [alice] = add_users(admin)
    name = admin.execute("select current_database()").fetchone()[0]
    admin.execute(f"alter database \"{name}\" set engagement.realtime_mode = 'postgres_changes'")
    with connect(db_url, autocommit=True) as fresh:
        insert(fresh, [(alice, "app_open")])
    assert messages(admin) == []
    admin.execute(f'alter database "{name}" reset engagement.realtime_mode')
    with connect(db_url, autocommit=True) as fresh:
        insert(fresh, [(alice, "app_open")])
    assert len(messages(admin)) == 1


def test_the_broadcast_excludes_every_type_the_schema_calls_private(admin: psycopg.Connection) -> None:
    """The holdout's list of private types (hidden from users by RLS) is a subset of the broadcast's."""
    private, unsent = admin.execute(
        "select public.engagement_private_event_types(), public.engagement_realtime_private_event_types()"
    ).fetchone()
    assert set(private) <= set(unsent)


@pytest.mark.usefixtures("settings_env")
def test_a_scan_withholding_every_nudge_broadcasts_nothing(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100, "holdout_salt": "x"}
    monkeypatch.setenv("NUDGE_RULES", json.dumps([rule]))
    get_settings.cache_clear()
    users = [add_user(admin, "2026-03-01T00:00:00") for _ in range(3)]
    for user in users:
        add_event(admin, user, "2026-03-02T10:00:00")
    before = len(messages(admin))
    assert scan_at("2026-03-04T10:00:00").totals()["withheld"] == 3
    assert len(messages(admin)) == before
