"""auth.users as GoTrue really shapes it: the compatibility layer's copy, and sign-up times.

GoTrue's created_at is nullable with no default; any writer but GoTrue may leave it NULL. The
engine's sign-up time is then the inserting statement's start, and follows created_at whenever a
later update sets it (events_schema/migrations/20261201100000_supabase_auth_users_and_lints.sql).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import at, nudges
from worker.database import dispose_engines
from worker.scan.scanner import run_scan

# (column, type, nullable, default) as supabase/auth's migrations leave them; see supabase_compat.sql.
GOTRUE_COLUMNS = [
    ("id", "uuid", "NO", None),
    ("email", "character varying(255)", "YES", None),
    ("raw_app_meta_data", "jsonb", "YES", None),
    ("raw_user_meta_data", "jsonb", "YES", None),
    ("created_at", "timestamp with time zone", "YES", None),
    ("updated_at", "timestamp with time zone", "YES", None),
    ("deleted_at", "timestamp with time zone", "YES", None),
    ("is_sso_user", "boolean", "NO", "false"),
]


def test_compat_auth_users_has_gotrue_types_nullability_and_defaults(admin: psycopg.Connection) -> None:
    columns = admin.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod), case when a.attnotnull then 'NO' else 'YES' end,"
        " pg_get_expr(d.adbin, d.adrelid)"
        " from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
        " where a.attrelid = 'auth.users'::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum"
    ).fetchall()
    assert columns == GOTRUE_COLUMNS
    # Email is unique among non-SSO users only, as GoTrue's partial index has it.
    admin.execute(
        "insert into auth.users (id, email, is_sso_user) values"
        " (gen_random_uuid(), 'same@example.com', false), (gen_random_uuid(), 'same@example.com', true)"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        admin.execute("insert into auth.users (id, email) values (gen_random_uuid(), 'same@example.com')")


def signed_up_at(admin: psycopg.Connection, user: uuid.UUID) -> datetime:
    return admin.execute("select signed_up_at from public.engagement_users where user_id = %s", (user,)).fetchone()[0]


def clock(admin: psycopg.Connection) -> datetime:
    return admin.execute("select clock_timestamp()").fetchone()[0]


def test_a_user_without_created_at_signs_up_when_inserted(admin: psycopg.Connection) -> None:
    user = uuid.uuid4()
    before = clock(admin)
    admin.execute("insert into auth.users (id, email) values (%s, 'no-created-at@example.com')", (user,))
    after = clock(admin)
    assert before <= signed_up_at(admin, user) <= after


def test_sign_up_time_is_the_statement_not_an_earlier_transaction_start(admin: psycopg.Connection) -> None:
    user = uuid.uuid4()
    with admin.transaction():
        started = admin.execute("select now()").fetchone()[0]
        admin.execute("select pg_sleep(0.2)")
        admin.execute("insert into auth.users (id) values (%s)", (user,))
    assert signed_up_at(admin, user) - started >= timedelta(seconds=0.2)


def test_created_at_filled_in_later_becomes_the_sign_up_time(admin: psycopg.Connection) -> None:
    user = uuid.uuid4()
    admin.execute("insert into auth.users (id) values (%s)", (user,))
    admin.execute("update auth.users set created_at = %s where id = %s", (at("2026-01-05T12:00:00"), user))
    assert signed_up_at(admin, user) == at("2026-01-05T12:00:00")
    # Cleared again: the sign-up time once known stays.
    admin.execute("update auth.users set created_at = null where id = %s", (user,))
    assert signed_up_at(admin, user) == at("2026-01-05T12:00:00")


def test_other_updates_keep_the_sign_up_time_of_a_user_without_created_at(admin: psycopg.Connection) -> None:
    user = uuid.uuid4()
    admin.execute("insert into auth.users (id) values (%s)", (user,))
    first = signed_up_at(admin, user)
    admin.execute(
        "update auth.users set raw_user_meta_data = %s where id = %s", (json.dumps({"timezone": "Europe/Paris"}), user)
    )
    row = admin.execute(
        "select signed_up_at, timezone from public.engagement_users where user_id = %s", (user,)
    ).fetchone()
    assert row == (first, "Europe/Paris")


@pytest.fixture
def no_quiet_hours(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Default rule (48 h), quiet hours off: the test's wall clock decides nothing."""
    monkeypatch.delenv("NUDGE_RULES", raising=False)
    monkeypatch.setenv("QUIET_HOURS_ENABLED", "false")
    get_settings.cache_clear()
    yield
    dispose_engines()
    get_settings.cache_clear()


@pytest.mark.usefixtures("no_quiet_hours")
def test_the_engine_counts_inactivity_from_that_sign_up_time(admin: psycopg.Connection) -> None:
    user = uuid.uuid4()
    admin.execute("insert into auth.users (id) values (%s)", (user,))
    due = signed_up_at(admin, user) + timedelta(hours=48)
    assert run_scan(due - timedelta(seconds=1), full=True).totals()["due"] == 0
    assert run_scan(due, full=True).totals()["nudged"] == 1
    [(stamp, value)] = nudges(admin, user)
    assert stamp == due and value["last_active_at"] == signed_up_at(admin, user).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
