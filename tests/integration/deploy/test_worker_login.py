"""The worker's own login (engagement_worker): no superuser, owns nothing, reaches the tables
only as service_role, cannot change the schema or read `auth`, and still runs real scans and
imports. Every refusal is checked from a connection that logged in as that role."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from events_schema.db import connect
from tests.integration.ingest.import_helpers import NOW, add_users, event, stored_ids
from tests.integration.scan.scan_helpers import add_event, add_user, at, nudges
from tests.integration.worker_process import PROJECT_ROOT
from worker.database import dispose_engines
from worker.ingest.importer import import_batch
from worker.scan.scanner import run_scan

WORKER_ROLE = "engagement_worker"


@pytest.fixture
def worker_url(db_url: str) -> Iterator[str]:
    """This test's database, as the worker's login (trust auth here; a password in production)."""
    yield make_url(db_url).set(username=WORKER_ROLE, password=None).render_as_string(hide_password=False)
    dispose_engines()


@pytest.fixture
def worker(worker_url: str) -> Iterator[psycopg.Connection]:
    with connect(worker_url, autocommit=True) as conn:
        assert conn.info.user == WORKER_ROLE
        yield conn


def refused(conn: psycopg.Connection, statement: str, *, as_service_role: bool) -> bool:
    """Whether `statement` fails for lack of privilege (42501), in a rolled-back transaction."""
    try:
        with conn.transaction(force_rollback=True):
            if as_service_role:
                conn.execute("set local role service_role")
            conn.execute(statement)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_the_login_is_no_superuser_and_owns_nothing(admin: psycopg.Connection) -> None:
    attributes = admin.execute(
        "select rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
        " from pg_roles where rolname = %s",
        (WORKER_ROLE,),
    ).fetchone()
    assert attributes == (True, False, False, False, False, False, False)
    owned = admin.execute(
        "select (select count(*) from pg_class where relowner = r.oid)"
        " + (select count(*) from pg_namespace where nspowner = r.oid)"
        " + (select count(*) from pg_proc where proowner = r.oid)"
        " from pg_roles r where r.rolname = %s",
        (WORKER_ROLE,),
    ).fetchone()[0]
    assert owned == 0
    member_of = admin.execute(
        "select array_agg(g.rolname order by g.rolname) from pg_auth_members m"
        " join pg_roles g on g.oid = m.roleid join pg_roles u on u.oid = m.member where u.rolname = %s",
        (WORKER_ROLE,),
    ).fetchone()[0]
    assert member_of == ["service_role"]


@pytest.mark.parametrize("as_service_role", [False, True], ids=["login", "as-service_role"])
@pytest.mark.parametrize(
    "statement",
    [
        "alter table public.engagement_events add column extra int",
        "drop table public.nudge_scan_state",
        "create table public.intruder (i int)",
        "create schema intruder",
        "create or replace function public.engagement_reserved_event_types() returns text[]"
        " language sql as $$ select '{}'::text[] $$",
        "alter table public.engagement_events disable row level security",
        'create policy "anyone reads everything" on public.engagement_events for select using (true)',
        "alter table public.engagement_events owner to service_role",
        "select id from auth.users",
        "insert into auth.users (id) values (gen_random_uuid())",
        "update auth.users set email = 'x@example.com'",
        "select statements from supabase_migrations.schema_migrations",
        "set role postgres",
        "set role authenticated",
    ],
)
def test_the_login_cannot_change_the_schema_or_read_auth(
    worker: psycopg.Connection, statement: str, as_service_role: bool
) -> None:
    assert refused(worker, statement, as_service_role=as_service_role), statement


def test_without_switching_role_it_reads_no_table_but_the_migration_versions(worker: psycopg.Connection) -> None:
    assert refused(worker, "select count(*) from public.engagement_events", as_service_role=False)
    assert refused(worker, "select count(*) from public.nudge_scan_state", as_service_role=False)
    versions = worker.execute("select count(version) from supabase_migrations.schema_migrations").fetchone()[0]
    assert versions > 0
    assert not refused(worker, "select count(*) from public.engagement_events", as_service_role=True)


def test_a_real_scan_and_import_run_through_the_worker_login(admin: psycopg.Connection, worker_url: str) -> None:
    lapsed = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, lapsed, "2026-03-02T10:00:00")
    summary = run_scan(at("2026-03-05T12:00:00"), url=worker_url)
    assert (summary.totals()["due"], summary.totals()["nudged"]) == (1, 1)
    assert len(nudges(admin, lapsed)) == 1
    [user] = add_users(admin)
    rows = [event(user), event(user, "goal_complete")]
    result = import_batch(rows, batch_id="least-privilege", now=NOW, url=worker_url)
    assert (result.inserted, result.rejected) == (2, 0)
    assert {r["id"] for r in rows} <= stored_ids(admin)


def test_the_scan_cli_runs_with_worker_database_url(admin: psycopg.Connection, db_url: str, worker_url: str) -> None:
    """DATABASE_URL names a server that does not answer: only the worker's login is used."""
    lapsed = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, lapsed, "2026-03-02T10:00:00")
    result = subprocess.run(
        [sys.executable, "-m", "worker", "scan", "--as-of", "2026-03-05T12:00:00+00:00", "--json"],
        env={
            **os.environ,
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
            "WORKER_DATABASE_URL": worker_url,
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(nudges(admin, lapsed)) == 1
