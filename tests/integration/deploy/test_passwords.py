"""Passwords with `@`, `/`, `#` (and spaces, quotes, `%`) log in, against a PostgreSQL server
that really asks for them: the shared test server trusts loopback, so these tests start an
embedded one of their own whose pg_hba.conf demands SCRAM-SHA-256 over TCP."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from events_schema.db import DatabaseUnavailable, connect, conninfo, engine
from events_schema.settings import Settings
from tests.conftest import TEST_STATE_DIR
from tests.integration.worker_process import PROJECT_ROOT

OWNER_PASSWORD = "own@er/pa#ss w:o%rd'q\"1"
WORKER_PASSWORD = "w@rk/er#?&=+ 2"


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """URL (no password) of the `postgres` database on a server that refuses a wrong password."""
    from worker.dev_servers.runtime import server_home, service_account
    from worker.dev_servers.servers import ensure_postgres
    from worker.dev_servers.services import purge

    state_dir = TEST_STATE_DIR / f"passwords-{uuid.uuid4().hex[:8]}"
    url = make_url(ensure_postgres(state_dir)).set(database="postgres")
    try:
        with psycopg.connect(conninfo(url.render_as_string(False)), autocommit=True) as conn:
            conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(OWNER_PASSWORD)))
            hba = server_home(state_dir, service_account()) / "postgres" / "pg_hba.conf"
            hba.write_text("host all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8")
            conn.execute("select pg_reload_conf()")
        yield url.render_as_string(False)
    finally:
        purge(state_dir, everything=False)


def test_the_server_refuses_a_wrong_or_missing_password(password_server: str) -> None:
    """The other side: without this, a login below would prove nothing."""
    for password in (None, "wrong", OWNER_PASSWORD.replace("@", "%40")):
        url = make_url(password_server).set(password=password).render_as_string(False)
        with pytest.raises(DatabaseUnavailable, match="password"):
            connect(url, connect_timeout=5).close()


def test_database_password_logs_in_through_psycopg_and_sqlalchemy(password_server: str) -> None:
    settings = Settings(_env_file=None, database_url=password_server, database_password=OWNER_PASSWORD)
    with connect(settings.database_url, connect_timeout=5) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "postgres"
    pooled = engine(settings.database_url)
    try:
        with pooled.connect() as conn:
            assert conn.execute(text("select current_user")).scalar() == "postgres"
    finally:
        pooled.dispose()


def test_the_same_password_spliced_into_the_url_is_what_broke(password_server: str) -> None:
    """What docker-compose.yml did before: `${POSTGRES_PASSWORD}` pasted into the URL."""
    parsed = make_url(password_server)
    spliced = f"postgresql+psycopg://postgres:{OWNER_PASSWORD}@{parsed.host}:{parsed.port}/postgres"
    with pytest.raises(Exception):  # noqa: B017 - misparsed one way or another: never this login
        connect(spliced, connect_timeout=5).close()


def test_logins_sets_a_worker_password_the_worker_then_logs_in_with(password_server: str) -> None:
    """`events_schema logins` as compose runs it (passwords apart from the URLs), then the engine's login."""
    role = f"login_test_{uuid.uuid4().hex[:8]}"
    owner = Settings(_env_file=None, database_url=password_server, database_password=OWNER_PASSWORD).database_url
    worker_url = make_url(password_server).set(username=role).render_as_string(False)
    with connect(owner, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "events_schema", "logins"],
            env={
                **{k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "_PASSWORD"))},
                "DATABASE_URL": password_server,
                "DATABASE_PASSWORD": OWNER_PASSWORD,
                "WORKER_DATABASE_URL": worker_url,
                "WORKER_DATABASE_PASSWORD": WORKER_PASSWORD,
            },
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"password set for {role}"
        settings = Settings(_env_file=None, worker_database_url=worker_url, worker_database_password=WORKER_PASSWORD)
        with connect(settings.engine_database_url, connect_timeout=5) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role
    finally:
        with connect(owner, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_libpq_takes_a_password_missing_from_the_uri_from_pgpassword(password_server: str) -> None:
    """How PostgREST gets authenticator's password in docker-compose.yml (PGRST_DB_URI without one,
    PGPASSWORD beside it): PostgREST connects through libpq, as psycopg does here."""
    parsed = make_url(password_server)
    uri = f"postgres://postgres@{parsed.host}:{parsed.port}/postgres"
    probe = "import psycopg, sys; print(psycopg.connect(sys.argv[1], connect_timeout=5).info.user)"
    for password, expected in ((OWNER_PASSWORD, 0), ("wrong", 1)):
        result = subprocess.run(
            [sys.executable, "-c", probe, uri],
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode != 0) == bool(expected), result.stderr
    assert result.returncode != 0 and "password authentication failed" in result.stderr


def test_a_password_given_twice_or_without_its_url_is_refused() -> None:
    with pytest.raises(ValueError, match="give it in one place"):
        Settings(_env_file=None, database_url="postgresql://postgres:x@h/db", database_password="y")
    with pytest.raises(ValueError, match="WORKER_DATABASE_PASSWORD needs WORKER_DATABASE_URL"):
        Settings(_env_file=None, worker_database_password="y")
