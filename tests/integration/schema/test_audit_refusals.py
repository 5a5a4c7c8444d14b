"""The RLS audit fails on a wrongful refusal too, not only on a leak: a schema that stops users
logging their own events, or the service role writing, must not pass as "0 leaks"."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

INSERT_POLICY = '"Users can log own events, not future-dated, not reserved types"'

REFUSALS = {
    "user INSERT grant revoked": ["revoke insert on public.engagement_events from authenticated"],
    "user INSERT policy dropped": [f"drop policy {INSERT_POLICY} on public.engagement_events"],
    "service_role UPDATE grant revoked": ["revoke update on public.engagement_events from service_role"],
}


def audit_cli(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "audit", "--users", "3"],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_clean_schema_passes(db_url: str) -> None:
    result = audit_cli(db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrongly refused" not in result.stdout


@pytest.mark.parametrize("breakage", REFUSALS)
def test_a_wrongful_refusal_fails_the_audit(db_url: str, admin: psycopg.Connection, breakage: str) -> None:
    for statement in REFUSALS[breakage]:
        admin.execute(statement)
    result = audit_cli(db_url)
    assert result.returncode == 1, result.stdout
    *problems, verdict = result.stdout.splitlines()
    assert problems and all(line.startswith("wrongly refused: ") for line in problems), problems
    assert verdict.endswith(f", 0 leaks, {len(problems)} wrongly refused")
    assert result.stderr == ""
