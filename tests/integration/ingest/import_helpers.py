"""Arranging users and reading back what an import wrote, as the owner (never for RLS claims)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.integration.worker_process import PROJECT_ROOT

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def add_users(conn: psycopg.Connection, count: int = 1) -> list[uuid.UUID]:
    return [
        row[0]
        for row in conn.execute(
            "insert into auth.users (id) select gen_random_uuid() from generate_series(1, %s) returning id", (count,)
        ).fetchall()
    ]


def event(user: uuid.UUID, event_type: str = "app_open", **fields: Any) -> dict[str, Any]:
    """A valid event object with its own id, so a test can look it up."""
    return {
        "id": str(uuid.uuid4()),
        "user_id": str(user),
        "event_type": event_type,
        "timestamp": "2025-06-01T10:00:00Z",
        **fields,
    }


def stored_ids(conn: psycopg.Connection) -> set[str]:
    return {str(row[0]) for row in conn.execute("select id from engagement_events").fetchall()}


def quarantined(conn: psycopg.Connection) -> list[tuple[str, int, str, str]]:
    """(batch_id, position, raw, reason) of every quarantined row, in order."""
    return conn.execute(
        "select batch_id, position, raw, reason from engagement_import_quarantine order by batch_id, position"
    ).fetchall()


def write_ndjson(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def import_cli(args: list[str], db_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m worker import ...` as an operator runs it, against this test's database."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "import", *args],
        env={**os.environ, "DATABASE_URL": db_url, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
