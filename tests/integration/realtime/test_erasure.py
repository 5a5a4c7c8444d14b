"""No stored broadcast outlives what the user may still see: forget_user, deleting the auth user,
and retention (72 hours for every message; at once for one carrying a retired event)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from tests.integration.ingest.import_helpers import NOW, add_users
from tests.integration.realtime.realtime_helpers import messages, topic_of
from worker.retention.retention import MESSAGE_LIFETIME, apply_retention, forget_user

pytestmark = pytest.mark.usefixtures("settings_env")


def log(admin: psycopg.Connection, user: uuid.UUID, when: datetime = NOW) -> None:
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')", (user, when)
    )


def stamp_messages(admin: psycopg.Connection, user: uuid.UUID, inserted_at: datetime) -> None:
    """Date a user's messages as if Realtime had stored them then (UTC, as Realtime stamps)."""
    admin.execute(
        "update realtime.messages set inserted_at = (%s::timestamptz at time zone 'UTC') where topic = %s",
        (inserted_at, topic_of(user)),
    )


def test_forget_user_deletes_their_messages_and_only_theirs(admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    for user in (alice, bob, alice):
        log(admin, user)
    summary = forget_user(alice)
    assert summary["messages_deleted"] == 2
    assert messages(admin, alice) == []
    assert len(messages(admin, bob)) == 1


def test_deleting_the_auth_user_deletes_their_messages(admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    log(admin, alice)
    log(admin, bob)
    admin.execute("delete from auth.users where id = %s", (alice,))
    assert [m["topic"] for m in messages(admin)] == [topic_of(bob)]


def test_messages_live_72_hours_even_with_retention_off(admin: psycopg.Connection) -> None:
    old, edge, young = add_users(admin, 3)
    for user in (old, edge, young):
        log(admin, user)
    stamp_messages(admin, old, NOW - MESSAGE_LIFETIME - timedelta(microseconds=1))
    stamp_messages(admin, edge, NOW - MESSAGE_LIFETIME)
    stamp_messages(admin, young, NOW - timedelta(hours=1))
    summary = apply_retention(NOW)
    assert summary["soft_deleted"] == 0 and summary["messages_deleted"] == 1
    assert sorted(m["topic"] for m in messages(admin)) == sorted([topic_of(edge), topic_of(young)])


def test_retention_deletes_at_once_a_message_carrying_an_event_it_retired(admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    # Alice's import of an old event today; Bob's recent one.
    log(admin, alice, NOW - timedelta(days=31))
    log(admin, bob, NOW - timedelta(days=29))
    stamp_messages(admin, alice, NOW - timedelta(hours=1))
    stamp_messages(admin, bob, NOW - timedelta(hours=1))
    summary = apply_retention(NOW, retention_days=30)
    assert (summary["soft_deleted"], summary["messages_deleted"]) == (1, 1)
    assert [m["topic"] for m in messages(admin)] == [topic_of(bob)]
