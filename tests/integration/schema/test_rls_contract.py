"""The engagement_events contract from the outside, exactly as PostgREST applies each request.

Every assertion runs on the `api` connection (logged in as `authenticator`, neither superuser nor
owner) inside `postgrest.request`, with the anon key's, a user's or the service key's claims. The
owner connection (`admin`) only arranges data: RLS asserted as the owner would prove nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from events_schema.db import conninfo
from events_schema.postgrest import claims_for, request

RESERVED = ("nudge_sent", "nudge_delivered", "nudge_failed", "nudge_withheld", "nudge_shadow")
INSERT = (
    'insert into public.engagement_events (user_id, "timestamp", event_type, value, is_deleted) '
    "values (%(user_id)s, coalesce(%(ts)s, now()), %(event_type)s, %(value)s, %(is_deleted)s) "
    'returning id, user_id, "timestamp", event_type, value'
)


@dataclass
class World:
    alice: uuid.UUID
    bob: uuid.UUID
    alice_visible: set[uuid.UUID]
    alice_deleted: uuid.UUID
    bob_visible: set[uuid.UUID]

    @property
    def every(self) -> set[uuid.UUID]:
        return self.alice_visible | self.bob_visible | {self.alice_deleted}


@pytest.fixture
def world(admin: psycopg.Connection) -> World:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    admin.execute(
        "insert into auth.users (id, email) values (%s, 'alice@example.com'), (%s, 'bob@example.com')", (alice, bob)
    )

    def add(user: uuid.UUID, event_type: str, deleted: bool = False) -> uuid.UUID:
        return admin.execute(
            "insert into public.engagement_events (user_id, event_type, is_deleted) values (%s, %s, %s) returning id",
            (user, event_type, deleted),
        ).fetchone()[0]

    alice_visible = {add(alice, "app_open"), add(alice, "goal_complete"), add(alice, "nudge_sent")}
    return World(
        alice,
        bob,
        alice_visible,
        add(alice, "coach_message", deleted=True),
        {add(bob, "app_open"), add(bob, "steps_import")},
    )


def as_request(
    conn: psycopg.Connection, role: str, user: uuid.UUID | None, sql: str, params: Any = None
) -> list[tuple]:
    with request(conn, role, claims_for(role, user)):
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def event(user: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "ts": None,
        "event_type": "app_open",
        "value": '{"platform": "ios"}',
        "is_deleted": False,
        **overrides,
    }


def test_the_api_connection_proves_something(api: psycopg.Connection) -> None:
    """Guard: the role these tests log in as is neither superuser, nor BYPASSRLS, nor the owner."""
    row = api.execute(
        "select r.rolsuper, r.rolbypassrls, pg_has_role(session_user, c.relowner, 'usage') "
        "from pg_roles r, pg_class c where r.rolname = session_user and c.oid = 'public.engagement_events'::regclass"
    ).fetchone()
    assert api.info.user == "authenticator" and row == (False, False, False)


# anon key


def test_anon_reads_nothing(api: psycopg.Connection, world: World) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as raised:
        as_request(api, "anon", None, "select id from public.engagement_events")
    assert raised.value.sqlstate == "42501"


@pytest.mark.parametrize(
    "sql",
    [
        INSERT,
        "update public.engagement_events set value = '{}' where user_id = %(user_id)s",
        "delete from public.engagement_events where user_id = %(user_id)s",
    ],
)
def test_anon_writes_nothing(api: psycopg.Connection, world: World, sql: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_request(api, "anon", None, sql, event(world.alice))


# a user's token


def test_user_reads_only_their_own_rows_that_are_not_deleted(api: psycopg.Connection, world: World) -> None:
    rows = as_request(api, "authenticated", world.alice, "select id from public.engagement_events")
    assert {r[0] for r in rows} == world.alice_visible
    asked = as_request(
        api,
        "authenticated",
        world.alice,
        "select id from public.engagement_events where id = any(%s)",
        (list(world.every),),
    )
    assert {r[0] for r in asked} == world.alice_visible, "neither Bob's rows nor a deleted one, even by id"


def test_user_logs_their_own_event(api: psycopg.Connection, world: World) -> None:
    (row,) = as_request(api, "authenticated", world.alice, INSERT, event(world.alice))
    assert row[1] == world.alice and row[3] == "app_open" and row[4] == {"platform": "ios"}


def test_a_little_clock_skew_is_tolerated(api: psycopg.Connection, world: World) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=2)
    assert as_request(api, "authenticated", world.alice, INSERT, event(world.alice, ts=soon))


@pytest.mark.parametrize("case", ["another user", "an hour ahead", "soft-deleted", *RESERVED])
def test_user_insert_refused_by_policy(api: psycopg.Connection, world: World, case: str) -> None:
    overrides: dict[str, Any] = {
        "another user": {"user_id": world.bob},
        "an hour ahead": {"ts": datetime.now(UTC) + timedelta(hours=1)},
        "soft-deleted": {"is_deleted": True},
    }.get(case, {"event_type": case})
    with pytest.raises(errors.InsufficientPrivilege, match="violates row-level security policy") as raised:
        as_request(api, "authenticated", world.alice, INSERT, event(world.alice, **overrides))
    assert raised.value.sqlstate == "42501"


@pytest.mark.parametrize(
    "sql",
    [
        "update public.engagement_events set value = '{}' where user_id = %(user_id)s",
        "update public.engagement_events set is_deleted = false where user_id = %(user_id)s",
        "delete from public.engagement_events where user_id = %(user_id)s",
    ],
)
def test_user_cannot_update_or_delete(api: psycopg.Connection, world: World, sql: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        as_request(api, "authenticated", world.alice, sql, event(world.alice))


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_type": "AppOpen"},
        {"event_type": "1st_open"},
        {"event_type": "a" * 64},
        {"event_type": ""},
        {"value": "[1, 2]"},
        {"value": '"text"'},
    ],
)
def test_malformed_events_violate_checks(api: psycopg.Connection, world: World, overrides: dict[str, Any]) -> None:
    with pytest.raises(errors.CheckViolation) as raised:
        as_request(api, "authenticated", world.alice, INSERT, event(world.alice, **overrides))
    assert raised.value.sqlstate == "23514"


# service key


def test_service_role_reads_everyones_rows_deleted_too(api: psycopg.Connection, world: World) -> None:
    rows = as_request(api, "service_role", None, "select id from public.engagement_events")
    assert {r[0] for r in rows} == world.every


def test_service_role_writes_everyones_rows(api: psycopg.Connection, world: World) -> None:
    (row,) = as_request(api, "service_role", None, INSERT, event(world.bob, event_type="nudge_sent"))
    assert row[1] == world.bob
    updated = as_request(
        api,
        "service_role",
        None,
        "update public.engagement_events set is_deleted = true where user_id = %s returning id",
        (world.alice,),
    )
    assert {r[0] for r in updated} == world.alice_visible | {world.alice_deleted}
    deleted = as_request(
        api, "service_role", None, "delete from public.engagement_events where user_id = %s returning id", (world.bob,)
    )
    assert len(deleted) == len(world.bob_visible) + 1


# auth.uid() as Supabase defines it


def test_uid_is_null_on_a_pooled_connection_after_a_request(api: psycopg.Connection, world: World) -> None:
    """After a request's transaction, the setting reads '' (not NULL): it must not raise, nor match."""
    as_request(api, "authenticated", world.alice, "select 1")
    with api.transaction():
        api.execute("set local role authenticated")
        assert api.execute("select current_setting('request.jwt.claims', true)").fetchone() == ("",)
        assert api.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone() == (None, None, None)
        assert api.execute("select count(*) from public.engagement_events").fetchone() == (0,)
    with api.transaction():
        api.execute("set local role authenticated")
        api.execute("select set_config('request.jwt.claims', '', false)")
        assert api.execute("select auth.uid()").fetchone() == (None,)


def test_uid_reads_the_legacy_claim_setting(api: psycopg.Connection, world: World) -> None:
    """Older PostgREST versions set `request.jwt.claim.sub` instead of the claims JSON."""
    with api.transaction():
        api.execute("set local role authenticated")
        api.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(world.alice),))
        assert api.execute("select auth.uid()").fetchone() == (world.alice,)
        rows = api.execute("select id from public.engagement_events").fetchall()
        assert {r[0] for r in rows} == world.alice_visible


# time


def test_timestamps_come_back_in_utc(api: psycopg.Connection, world: World) -> None:
    sent = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    (row,) = as_request(api, "authenticated", world.alice, INSERT, event(world.alice, ts=sent))
    assert row[2] == sent and row[2].utcoffset() == timedelta(0) and row[2].hour == 6


def test_api_sessions_default_to_utc(db_url: str) -> None:
    """PostgREST passes no options: the authenticator role's own setting makes its sessions UTC."""
    url = make_url(db_url).set(username="authenticator", password=None).render_as_string(hide_password=False)
    with psycopg.connect(conninfo(url)) as conn:
        assert conn.execute("show timezone").fetchone() == ("UTC",)
