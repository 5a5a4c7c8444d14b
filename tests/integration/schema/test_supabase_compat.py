"""The migrations stay valid for a real Supabase project.

The compatibility layer stands in for what Supabase provides; the migration files must apply on top
of that alone, as a role that is not a superuser (Supabase's `postgres` is not one), and the runner
must leave an existing `auth` schema (Supabase's own) untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from events_schema.db import connect
from events_schema.migrate import COMPAT_SQL, REALTIME_COMPAT_SQL, discover, migrate

SENTINEL_UID = "00000000-0000-0000-0000-00000000c0de"


@pytest.fixture
def supabase_like(pg_server: URL, template_db: str) -> Iterator[tuple[str, str]]:
    """A database prepared as Supabase prepares one, and a non-superuser owner like its `postgres`
    (CREATEROLE, ADMIN OPTION on the API roles as on PostgreSQL 16+, no superuser).

    Roles are cluster-wide: the role made here is dropped afterwards (the database first).
    """
    role, name = f"supabase_like_{uuid.uuid4().hex[:8]}", f"events_test_supabase_{uuid.uuid4().hex[:8]}"
    server = pg_server.render_as_string(hide_password=False)
    with connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin nosuperuser createrole").format(sql.Identifier(role)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(role)))
    url = pg_server.set(database=name).render_as_string(hide_password=False)
    try:
        with connect(url, autocommit=True) as conn:
            conn.execute(COMPAT_SQL.read_text())
            conn.execute(REALTIME_COMPAT_SQL.read_text())
            # What Supabase grants its `postgres` role on the API roles, on auth.users and (through
            # Realtime's admin role, as Realtime's migrations grant it) on realtime.messages.
            conn.execute(
                sql.SQL(
                    "grant supabase_realtime_admin to {role};"
                    "grant anon, authenticated, service_role to {role} with admin option;"
                    "grant usage on schema auth to {role};"
                    "grant select, insert, update, delete, references, trigger on auth.users to {role}"
                ).format(role=sql.Identifier(role))
            )
        yield url, role
    finally:
        with connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def test_migrations_apply_as_a_non_superuser_after_the_compat_layer_alone(supabase_like: tuple[str, str]) -> None:
    url, role = supabase_like
    with connect(url, autocommit=True) as conn:
        for migration in discover():
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                try:
                    conn.execute(migration.sql)
                except psycopg.Error as exc:
                    pytest.fail(f"{migration.path.name} needs more than Supabase grants: {exc}")
        owner = conn.execute("select tableowner from pg_tables where tablename = 'engagement_events'").fetchone()
    assert owner == (role,)


def test_compat_layer_is_skipped_where_auth_exists(empty_db_url: str, template_db: str) -> None:
    """An `auth` schema means Supabase (or someone) provides it: the runner must not touch it.

    The API roles already exist (cluster-wide, from this run's template); only the schema is new.
    """
    with connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "create schema auth;"
            "create table auth.users (id uuid primary key, email text,"
            " created_at timestamptz not null default now(), raw_user_meta_data jsonb not null default '{}');"
            f"create function auth.uid() returns uuid language sql stable as $$ select '{SENTINEL_UID}'::uuid $$;"
            "grant usage on schema auth to anon, authenticated, service_role;"
        )
    assert [m.version for m in migrate(empty_db_url)] == [m.version for m in discover()]
    with connect(empty_db_url) as conn:
        assert (
            SENTINEL_UID
            in conn.execute("select prosrc from pg_proc where oid = 'auth.uid()'::regprocedure").fetchone()[0]
        )
        assert conn.execute("select to_regprocedure('auth.jwt()'), to_regprocedure('auth.role()')").fetchone() == (
            None,
            None,
        )
        columns = conn.execute(
            "select count(*) from information_schema.columns where table_schema = 'auth' and table_name = 'users'"
        ).fetchone()
        assert columns == (4,), "the compat layer's auth.users columns were not added"


def test_the_worker_login_can_be_created_by_a_non_superuser(supabase_like: tuple[str, str], pg_server: URL) -> None:
    """Supabase's `postgres` creates the login: the migration's SQL, under a fresh role name
    (the real one already exists cluster-wide), run as the non-superuser owner."""
    url, role = supabase_like
    fresh = f"worker_login_{uuid.uuid4().hex[:8]}"
    [migration] = [m for m in discover() if m.name == "worker_login"]
    try:
        with connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            conn.execute(migration.sql.replace("engagement_worker", fresh))
        with connect(url) as conn:
            made = conn.execute(
                "select r.rolcanlogin, r.rolsuper, pg_has_role(r.oid, 'service_role', 'member')"
                " from pg_roles r where r.rolname = %s",
                (fresh,),
            ).fetchone()
        assert made == (True, False, True)
    finally:
        with connect(pg_server.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(fresh)))
