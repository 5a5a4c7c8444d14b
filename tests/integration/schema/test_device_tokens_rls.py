"""device_tokens as PostgREST serves it: a user registers, refreshes, reads and removes only their
own tokens; anon nothing; the service role everything; the delivery state is the engine's alone."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors

from events_schema.postgrest import claims_for, request


def as_request(
    conn: psycopg.Connection, role: str, user: uuid.UUID | None, sql: str, params: Any = None
) -> list[tuple]:
    with request(conn, role, claims_for(role, user)):
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def users(admin: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    alice, bob = (
        admin.execute("insert into auth.users (id) values (gen_random_uuid()) returning id").fetchone()[0]
        for _ in range(2)
    )
    admin.execute(
        "insert into device_tokens (user_id, token, platform) values (%s, 'alice-phone', 'ios'), (%s, 'bob-phone', 'android')",
        (alice, bob),
    )
    return alice, bob


REGISTER = "insert into public.device_tokens (user_id, token, platform) values (%s, %s, %s) returning token"


def test_a_user_registers_a_token_for_themselves_and_reads_only_their_own(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    assert as_request(api, "authenticated", alice, REGISTER, (alice, "alice-tablet", "web")) == [("alice-tablet",)]
    rows = as_request(api, "authenticated", alice, "select token from public.device_tokens order by token")
    assert rows == [("alice-phone",), ("alice-tablet",)]


def test_the_token_defaults_to_the_callers_own_user(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    sql = "insert into public.device_tokens (token, platform) values ('alice-watch', 'android') returning user_id"
    assert as_request(api, "authenticated", alice, sql) == [(alice,)]


def test_a_user_cannot_register_a_token_for_someone_else(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """As PostgREST's return=minimal sends it (no RETURNING, which the read policy alone would refuse)."""
    alice, bob = users
    plant = "insert into public.device_tokens (user_id, token, platform) values (%s, 'planted', 'ios')"
    with pytest.raises(errors.InsufficientPrivilege):
        as_request(api, "authenticated", alice, plant, (bob,))
    assert as_request(api, "service_role", None, "select token from public.device_tokens where token = 'planted'") == []


def test_a_user_refreshes_and_removes_only_their_own(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = users
    refresh = "update public.device_tokens set last_seen_at = now(), platform = 'web' returning token"
    assert as_request(api, "authenticated", alice, refresh) == [("alice-phone",)]
    remove = "delete from public.device_tokens where token = %s returning token"
    assert as_request(api, "authenticated", alice, remove, ("bob-phone",)) == []
    assert as_request(api, "authenticated", alice, remove, ("alice-phone",)) == [("alice-phone",)]
    assert as_request(api, "service_role", None, "select token from public.device_tokens") == [("bob-phone",)]
    # Nor can a token be handed over to another user by an update.
    with pytest.raises(errors.InsufficientPrivilege):
        as_request(api, "authenticated", bob, "update public.device_tokens set user_id = %s", (alice,))


def test_a_platform_outside_android_ios_web_is_refused(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    with pytest.raises(errors.CheckViolation):
        as_request(api, "authenticated", alice, REGISTER, (alice, "alice-tv", "tvos"))


@pytest.mark.parametrize(
    "sql",
    [
        "select token from public.device_tokens",
        "insert into public.device_tokens (token, platform) values ('anon', 'ios')",
        "update public.device_tokens set platform = 'web'",
        "delete from public.device_tokens",
    ],
)
def test_anon_can_do_nothing_with_tokens(api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID], sql: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_request(api, "anon", None, sql)


def test_the_service_role_reads_and_removes_every_token(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    rows = as_request(api, "service_role", None, "select token from public.device_tokens order by token")
    assert rows == [("alice-phone",), ("bob-phone",)]
    assert len(as_request(api, "service_role", None, "delete from public.device_tokens returning token")) == 2


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_engine_touches_the_delivery_state(
    api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID], role: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_request(
            api, role, users[0] if role == "authenticated" else None, "select * from public.nudge_delivery_state"
        )


def test_users_cannot_write_delivery_outcomes(api: psycopg.Connection, users: tuple[uuid.UUID, uuid.UUID]) -> None:
    alice, _ = users
    for event_type in ("nudge_delivered", "nudge_failed"):
        with pytest.raises(errors.InsufficientPrivilege):
            as_request(
                api,
                "authenticated",
                alice,
                "insert into public.engagement_events (user_id, event_type, value) values (%s, %s, %s)",
                (alice, event_type, '{"nudge_id": "x"}'),
            )
