"""The database derives the same ids as worker/ingest/rows.py derive_event_id (UUIDv5 of the
batch id and position) with pgcrypto's SHA-1, and ids made before by its own PL/pgSQL SHA-1 are
the same: a batch imported then is all duplicates when sent again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.migrate import MIGRATIONS_DIR, migrate
from events_schema.settings import Settings
from tests.integration.ingest import import_cases
from tests.integration.ingest.rpc_helpers import body_of, call
from tests.integration.scan.scan_helpers import add_user
from worker.ingest.rows import derive_event_id

PGCRYPTO_MIGRATION = "20261204110100"
# What migration 20261201100200 made where pgcrypto was absent.
PLPGSQL_SHA1 = """
create or replace function public.engagement_import_sha1(message bytea) returns bytea
language sql immutable strict parallel safe set search_path = ''
as $f$ select public.engagement_import_sha1_plpgsql(message) $f$
"""


@pytest.fixture
def api_url(empty_db_url: str) -> Iterator[str]:
    """The empty database as PostgREST logs in to it (authenticator)."""
    yield make_url(empty_db_url).set(username="authenticator", password=None).render_as_string(hide_password=False)


def test_the_ids_are_pgcryptos_sha1(admin: psycopg.Connection) -> None:
    """No SHA-1 of our own: the id function calls pgcrypto's digest() in schema extensions."""
    [body] = admin.execute("select prosrc from pg_proc where proname = 'engagement_import_event_id'").fetchone()
    assert "extensions.digest(" in body and "'sha1'" in body
    assert (
        admin.execute("select count(*) from pg_proc where proname like 'engagement_import_sha1%%'").fetchone()[0] == 0
    )


def test_a_batch_imported_before_the_pgcrypto_migration_is_all_duplicates_after_it(
    empty_db_url: str, api_url: str, tmp_path: Path
) -> None:
    """A database migrated up to just before 20261204110100, whose ids came from the PL/pgSQL
    SHA-1 (as where pgcrypto was absent), imports a batch without ids, with and without a
    batch_id; after the migration the same requests insert nothing: every row a duplicate."""
    before = tmp_path / "migrations"
    before.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < PGCRYPTO_MIGRATION:
            shutil.copy(path, before / path.name)
    migrate(empty_db_url, before)
    with connect(empty_db_url, autocommit=True) as admin:
        admin.execute(PLPGSQL_SHA1)
        [body] = admin.execute("select prosrc from pg_proc where proname = 'engagement_import_sha1'").fetchone()
        assert "sha1_plpgsql" in body
        users = [str(add_user(admin, "2026-01-01T00:00:00")) for _ in range(3)]
    batch = [{"user_id": users[i % 3], "event_type": "app_open", "value": {"n": i, "é": 1.5}} for i in range(40)]
    requests = [body_of(batch, "crm-2026-11-26"), body_of(batch)]
    with connect(api_url) as api:
        first = [call(api, body) for body in requests]
    assert [r["inserted"] for r in first] == [40, 40]
    with connect(empty_db_url, autocommit=True) as admin:
        ids = {row[0] for row in admin.execute("select id from engagement_events")}
    assert {derive_event_id("crm-2026-11-26", p) for p in range(40)} <= ids

    migrate(empty_db_url)
    with connect(api_url) as api:
        again = [call(api, body) for body in requests]
    assert [(r["inserted"], r["duplicates"]) for r in again] == [(0, 40), (0, 40)]
    assert [r["batch_id"] for r in again] == [r["batch_id"] for r in first]


@pytest.mark.parametrize(
    "batch_id", ["crm-2026-11-26", "", "é😀 batch", "x" * 150, "sha256:0123456789abcdef0123456789abcdef"]
)
def test_event_ids_are_the_python_importers(admin: psycopg.Connection, batch_id: str) -> None:
    positions = [0, 1, 41, 10**12]
    got = [
        admin.execute("select public.engagement_import_event_id(%s, %s)", (batch_id, p)).fetchone()[0]
        for p in positions
    ]
    assert got == [derive_event_id(batch_id, p) for p in positions]


def test_the_case_tables_limits_are_the_settings_defaults() -> None:
    """import_events() falls back to these when its engagement.* settings are unset."""
    defaults = Settings.model_fields
    assert defaults["import_max_value_bytes"].default == import_cases.MAX_VALUE_BYTES
    assert defaults["max_clock_skew_seconds"].default == import_cases.SKEW
