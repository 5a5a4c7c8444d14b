"""Who may join which private topic, checked as Realtime checks it (role, claims and
realtime.topic set in the transaction, then the user's policies on realtime.messages)."""

from __future__ import annotations

import psycopg

from tests.integration.ingest.import_helpers import NOW, add_users
from tests.integration.realtime.realtime_helpers import can_receive, can_send, topic_of, visible


def test_a_user_receives_their_own_topic_and_no_other(db_url: str, admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    assert can_receive(db_url, "authenticated", topic_of(alice), alice)
    assert not can_receive(db_url, "authenticated", topic_of(bob), alice)
    assert not can_receive(db_url, "authenticated", "user:*", alice)
    assert not can_receive(db_url, "authenticated", f"user:{alice}:x", alice)


def test_anon_receives_nothing_and_the_service_role_everything(db_url: str, admin: psycopg.Connection) -> None:
    [alice] = add_users(admin)
    assert not can_receive(db_url, "anon", topic_of(alice))
    assert can_receive(db_url, "service_role", topic_of(alice))


def test_nobody_but_the_service_role_can_send(db_url: str, admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    assert not can_send(db_url, "authenticated", topic_of(alice), alice)
    assert not can_send(db_url, "authenticated", topic_of(bob), alice)
    assert not can_send(db_url, "anon", topic_of(alice))
    assert can_send(db_url, "service_role", topic_of(alice))


def test_stored_messages_are_readable_only_on_the_users_own_topic(db_url: str, admin: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'a'), (%s, %s, 'b')",
        (alice, NOW, bob, NOW),
    )
    assert visible(db_url, "authenticated", topic_of(alice), alice) == [topic_of(alice)]
    # Naming another user's topic as the channel reads nothing of theirs.
    assert visible(db_url, "authenticated", topic_of(bob), alice) == []
    assert visible(db_url, "anon", topic_of(alice)) == []
    assert sorted(visible(db_url, "service_role", topic_of(alice))) == sorted([topic_of(alice), topic_of(bob)])


def test_presence_on_the_own_topic_is_refused(db_url: str, admin: psycopg.Connection) -> None:
    """The policy admits broadcast rows only: Realtime's presence probe on the topic is not read."""
    [alice] = add_users(admin)
    assert not can_receive(db_url, "authenticated", topic_of(alice), alice, extension="presence")
