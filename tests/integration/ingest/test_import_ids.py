"""The database derives the same ids as worker/ingest/rows.py derive_event_id (UUIDv5 of the
batch id and position), with pgcrypto's SHA-1 or, where pgcrypto is absent, its own."""

from __future__ import annotations

import hashlib
import os

import psycopg
import pytest

from events_schema.settings import Settings
from tests.integration.ingest import import_cases
from worker.ingest.rows import derive_event_id

# Around SHA-1's block boundaries: 55 bytes is the most that pads into one 64-byte block.
LENGTHS = [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 128, 300]


@pytest.mark.parametrize("function", ["engagement_import_sha1_plpgsql", "engagement_import_sha1"])
def test_sha1_is_sha1(admin: psycopg.Connection, function: str) -> None:
    messages = [os.urandom(n) for n in LENGTHS] + [b"abc"]
    got = [admin.execute(f"select public.{function}(%s)", (m,)).fetchone()[0] for m in messages]
    assert got == [hashlib.sha1(m).digest() for m in messages]


def test_pgcrypto_is_what_runs_here(admin: psycopg.Connection) -> None:
    """This machine's PostgreSQL has contrib: the fast path is the one the tests exercise."""
    [body] = admin.execute("select prosrc from pg_proc where proname = 'engagement_import_sha1'").fetchone()
    assert ".digest(message, 'sha1')" in body


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
