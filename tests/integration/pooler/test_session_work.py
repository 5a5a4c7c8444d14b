"""What needs one server session (migrations, the feed's LISTEN) refuses a transaction-mode
pooler with one line, and runs on DATABASE_SESSION_URL; how a transaction pooler is detected."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from events_schema.db import connect
from events_schema.pooler import transaction_pooler_evidence
from events_schema.settings import get_settings
from tests.integration.pooler.pgbouncer import running_pgbouncer
from tests.integration.worker_process import PROJECT_ROOT
from worker.feed import Feed

REFUSED = "is a transaction-mode pooler (the server session changed between two transactions of one connection"


def run_module(module: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("module", "args", "purpose"),
    [
        ("events_schema", ["migrate"], "the migration runner (its advisory lock, its DDL) needs one server session"),
        ("worker", ["tail"], "the feed (LISTEN) needs one server session"),
    ],
)
def test_given_only_the_pooler_url_migrate_and_tail_fail_with_one_line(
    settings_env: str, module: str, args: list[str], purpose: str
) -> None:
    result = run_module(module, args, dict(os.environ))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: DATABASE_URL (DATABASE_SESSION_URL unset) {REFUSED}")
    assert purpose in line and "set DATABASE_SESSION_URL to a direct or session-mode connection" in line


def test_a_session_url_pointing_at_the_pooler_is_refused_by_its_own_name(settings_env: str) -> None:
    result = run_module("events_schema", ["migrate"], {**os.environ, "DATABASE_SESSION_URL": settings_env})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: DATABASE_SESSION_URL {REFUSED}")


def test_with_a_direct_session_url_migrate_and_the_feed_work(
    settings_env: str, db_url: str, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "DATABASE_SESSION_URL": db_url}
    result = run_module("events_schema", ["migrate"], env)
    assert (result.returncode, result.stdout.strip()) == (0, "database is up to date"), result.stderr
    monkeypatch.setenv("DATABASE_SESSION_URL", db_url)
    get_settings.cache_clear()
    [user] = [row[0] for row in admin.execute("insert into auth.users (id) values (gen_random_uuid()) returning id")]
    with Feed(page_size=10).subscribe() as subscription:
        admin.execute("insert into engagement_events (user_id, event_type) values (%s, 'app_open')", (user,))
        assert [e.user_id for e in subscription.next_batch(timeout=10)] == [user]


@pytest.fixture(scope="module")
def session_pgbouncer(pg_server: URL) -> Iterator[URL]:
    with running_pgbouncer(pg_server, pool_mode="session", pool_size=3) as url:
        yield url


def _evidence(url: str) -> str | None:
    with connect(url, autocommit=True) as probe:
        return transaction_pooler_evidence(url, probe)


def test_detection_on_both_sides(db_url: str, pooler_url: str, session_pgbouncer: URL) -> None:
    assert _evidence(db_url) is None  # direct: the server sees our own socket
    assert "server session changed" in (_evidence(pooler_url) or "")
    session_url = session_pgbouncer.set(database=make_url(db_url).database).render_as_string(hide_password=False)
    assert _evidence(session_url) is None  # a session pooler keeps one server session
    # Supavisor's transaction port, by convention: no probe needed.
    supavisor = make_url(db_url).set(port=6543).render_as_string(hide_password=False)
    with connect(db_url, autocommit=True) as probe:
        assert "Supavisor" in (transaction_pooler_evidence(supavisor, probe) or "")


def test_sessions_through_the_pooler_are_utc_on_every_server_connection(pooler_url: str) -> None:
    """No `options` startup parameter (PgBouncer < 1.20 refuses it): a SET that PgBouncer tracks."""
    with connect(pooler_url, autocommit=True) as conn, connect(pooler_url) as hog:
        before = conn.execute("select pg_backend_pid()").fetchone()[0]
        hog.execute("select 1")  # takes the server connection `conn` just gave back
        after, zone = conn.execute("select pg_backend_pid(), current_setting('timezone')").fetchone()
        hog.rollback()
    assert before != after and zone == "UTC"
