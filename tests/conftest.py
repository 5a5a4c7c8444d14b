"""Test databases: one migrated template per run, cloned per test that needs a clean slate.

Runs use the PostgreSQL server that DATABASE_URL (or the default) points at; where none answers,
an embedded one is started. A missing Redis fails the tests that need it, loudly.
"""

from __future__ import annotations

from tests.state import TEST_STATE_DIR  # first: the settings read the state folder when imported

# isort: split
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from events_schema.db import connect, conninfo
from events_schema.migrate import migrate
from events_schema.settings import get_settings

RUN_ID = uuid.uuid4().hex[:10]


def _masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _answers(kind: str, url: str) -> bool:
    """Whether the server answers within a second (the fixtures decide the same way, later)."""
    try:
        if kind == "postgres":
            admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
            psycopg.connect(conninfo(admin), connect_timeout=1).close()
        else:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:  # whatever the reason, it is not usable: say so in the header  # noqa: BLE001
        return False


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Once, at the start of the run: which servers the tests will use."""
    return _servers_lines()


def pytest_sessionstart(session: pytest.Session) -> None:
    """`-q` hides the report header; the servers are still worth one line each."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0:
        for line in _servers_lines():
            reporter.write_line(line)


def _servers_lines() -> list[str]:
    settings = get_settings()
    lines = []
    for kind, url in (
        ("postgres", settings.database_url),
        ("redis", os.environ.get("REDIS_URL") or settings.redis_url),
    ):
        if _answers(kind, url):
            where = "answering"
        elif kind == "redis" and os.environ.get("REDIS_URL"):
            where = "not answering; REDIS_URL is set, so the tests that need it fail"
        else:
            where = f"not answering: an embedded server in {TEST_STATE_DIR} is started when first needed"
        lines.append(f"{kind}: {_masked(url)} ({where})")
    return ["servers used by this run:", *(f"  {line}" for line in lines)]


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    """The embedded servers of the tests' state folder (tests/state.py) are stopped by the last run
    that uses them: a nested run, or one beside this, leaves them to this one, and the other way round."""
    from worker.dev_servers.services import shared_use

    with shared_use(TEST_STATE_DIR):
        yield


def _server_url() -> URL:
    """The server to test against, as an admin URL on its maintenance database."""
    url = make_url(get_settings().database_url).set(database="postgres")
    try:
        psycopg.connect(conninfo(url.render_as_string(hide_password=False)), connect_timeout=3).close()
        return url
    except psycopg.OperationalError:
        from worker.dev_servers.services import ensure_postgres

        return make_url(ensure_postgres(TEST_STATE_DIR)).set(database="postgres")


@pytest.fixture(scope="session")
def pg_server() -> URL:
    return _server_url()


def _create_database(server: URL, name: str, template: str | None = None) -> str:
    with connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        statement = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("{} template {}").format(statement, sql.Identifier(template))
        conn.execute(statement)
    return server.set(database=name).render_as_string(hide_password=False)


def _drop_database(server: URL, name: str) -> None:
    with connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(pg_server: URL) -> Iterator[str]:
    """Name of this run's migrated template database."""
    name = f"events_test_{RUN_ID}_tpl"
    url = _create_database(pg_server, name)
    migrate(url)
    yield name
    _drop_database(pg_server, name)


@pytest.fixture
def db_url(pg_server: URL, template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own (SQLAlchemy URL); dropped afterwards."""
    name = f"events_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = _create_database(pg_server, name, template=template_db)
    yield url
    _drop_database(pg_server, name)


@pytest.fixture
def empty_db_url(pg_server: URL) -> Iterator[str]:
    """A fresh database with nothing in it, for migration-runner tests."""
    name = f"events_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = _create_database(pg_server, name)
    yield url
    _drop_database(pg_server, name)


@pytest.fixture
def settings_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the project's settings (and child processes) at this test's database; its pooled
    connections are closed afterwards, before the database is dropped."""
    from worker.database import dispose_engines

    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield db_url
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection as the migrating (owner) role, for arranging test data only."""
    with connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def api(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection logged in as `authenticator`, as PostgREST is: RLS applies to what it does."""
    url = make_url(db_url).set(username="authenticator", password=None)
    with connect(url.render_as_string(hide_password=False)) as conn:
        yield conn


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The configured Redis; where REDIS_URL is unset and none answers, an embedded one.

    A REDIS_URL that is set but unreachable fails the tests that need it, never skips them.
    """
    import redis

    configured = os.environ.get("REDIS_URL")
    url = configured or get_settings().redis_url
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return url
    except redis.RedisError as exc:
        if configured:
            pytest.fail(f"Redis at {url} (REDIS_URL) is not reachable: {exc}")
    from worker.dev_servers.services import ensure_broker

    url = ensure_broker(TEST_STATE_DIR)
    os.environ["REDIS_URL"] = url  # the workers and commands the tests start use it too
    return url
