"""Fixtures for running the engine behind PgBouncer in transaction mode (issue 15).

`settings_env` is overridden here: every test of this folder, including the scan scenarios
imported from tests/integration/scan, runs with DATABASE_URL pointing at the pooler, in front of
the test's own database. `admin` still connects directly, to arrange data.

Without PgBouncer (tests/integration/pooler/pgbouncer.py says where it looks) this folder's tests
are not run, and the run fails with one line saying why and how to install it: loud, as a missing
server would be, but one line instead of an error per test. `--ignore=tests/integration/pooler`
leaves them out on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from events_schema.settings import get_settings
from tests.integration.pooler.pgbouncer import find_pgbouncer, missing_pgbouncer, running_pgbouncer
from worker.database import dispose_engines

POOL_SIZE = 3
HERE = Path(__file__).parent
# What the run left out for want of PgBouncer (a number of tests), for the summary and exit status.
NOT_RUN = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if find_pgbouncer() is not None:
        return
    pooler = [item for item in items if HERE in item.path.parents]
    if pooler:
        config.stash[NOT_RUN] = len(pooler)
        config.hook.pytest_deselected(items=pooler)
        items[:] = [item for item in items if item not in pooler]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if NOT_RUN in config.stash:
        terminalreporter.write_line(
            f"FAILED: {config.stash[NOT_RUN]} pooler tests not run: {missing_pgbouncer()}", red=True, bold=True
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Tests left out for want of PgBouncer fail the run, however the others did."""
    if NOT_RUN in session.config.stash and session.exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
