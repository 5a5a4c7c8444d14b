"""Fixtures for running the engine behind PgBouncer in transaction mode (issue 15).

`settings_env` is overridden here: every test of this folder, including the scan scenarios
imported from tests/integration/scan, runs with DATABASE_URL pointing at the pooler, in front of
the test's own database. `admin` still connects directly, to arrange data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL, make_url

from events_schema.settings import get_settings
from tests.integration.pooler.pgbouncer import running_pgbouncer
from worker.database import dispose_engines

POOL_SIZE = 3


@pytest.fixture(scope="session")
def pgbouncer(pg_server: URL) -> Iterator[URL]:
    """One PgBouncer for the run: pool_mode=transaction, three server connections per database."""
    with running_pgbouncer(pg_server, pool_size=POOL_SIZE) as url:
        yield url


@pytest.fixture
def pooler_url(pgbouncer: URL, db_url: str) -> str:
    """This test's database, through PgBouncer in transaction mode."""
    return pgbouncer.set(database=make_url(db_url).database).render_as_string(hide_password=False)


@pytest.fixture
def settings_env(pooler_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project's settings (and child processes) use the pooler as DATABASE_URL, and nothing
    else: no DATABASE_SESSION_URL."""
    monkeypatch.setenv("DATABASE_URL", pooler_url)
    monkeypatch.delenv("DATABASE_SESSION_URL", raising=False)
    get_settings.cache_clear()
    yield pooler_url
    dispose_engines()
    get_settings.cache_clear()
