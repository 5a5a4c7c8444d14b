"""The RLS audit: clean on a correct schema, leaves nothing behind, and is able to fail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from events_schema.__main__ import main
from events_schema.postgrest import claims_for, request
from events_schema.seed.seed import seed

VERDICT = re.compile(r"^(\d+) users, (\d+) checks, (\d+) leaks")
TABLES = (
    "auth.users",
    "public.engagement_events",
    "public.engagement_users",
    "public.engagement_last_activity",
    "public.device_tokens",
)
SELECT_POLICY = '"Users can read their own events that are not deleted"'
INSERT_POLICY = '"Users can log own events, not future-dated, not reserved types"'


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {table: conn.execute(f"select count(*) from {table}").fetchone()[0] for table in TABLES}


def test_clean_verdict_and_nothing_left_behind(
    db_url: str, admin: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db_url, users=30, days=3)  # real users beside the throwaway ones, as in production
    before = row_counts(admin)
    assert main(["--database-url", db_url, "audit", "--users", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    users, checks, leaks = map(int, VERDICT.match(out).groups())
    assert (users, leaks) == (4, 0) and checks > 40
    assert row_counts(admin) == before


def test_migrate_then_audit_on_a_fresh_database(empty_db_url: str) -> None:
    """The issue's "done when": both commands, as a newcomer runs them."""
    env = {**os.environ, "DATABASE_URL": empty_db_url}
    for command in ("migrate", "audit"):
        result = subprocess.run(
            [sys.executable, "-m", "events_schema", command], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"5 users, \d+ checks, 0 leaks\n", result.stdout)


BREAKAGES = {
    "users read every row": [
        f"drop policy {SELECT_POLICY} on public.engagement_events",
        "create policy broken on public.engagement_events for select to authenticated using (true)",
    ],
    "users read their soft-deleted rows": [
        f"drop policy {SELECT_POLICY} on public.engagement_events",
        "create policy broken on public.engagement_events for select to authenticated "
        "using ((select auth.uid()) = user_id)",
    ],
    "users insert anything of their own": [
        f"drop policy {INSERT_POLICY} on public.engagement_events",
        "create policy broken on public.engagement_events for insert to authenticated "
        "with check ((select auth.uid()) = user_id)",
    ],
    "users update": [
        "grant update on public.engagement_events to authenticated",
        "create policy broken on public.engagement_events for update to authenticated using (true)",
    ],
    "users read every device token": [
        'drop policy "Users can read their own device tokens" on public.device_tokens',
        "create policy broken on public.device_tokens for select to authenticated using (true)",
    ],
    "users read the engine's private events about them": [
        'drop policy "Users never see the engine\'s private events" on public.engagement_events',
    ],
    "anon reads": [
        "grant select on public.engagement_events to anon",
        "create policy broken on public.engagement_events for select to anon using (true)",
    ],
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_finds_a_deliberately_broken_policy(
    db_url: str, admin: psycopg.Connection, capsys: pytest.CaptureFixture[str], breakage: str
) -> None:
    for statement in BREAKAGES[breakage]:
        admin.execute(statement)
    assert main(["--database-url", db_url, "audit"]) == 1
    *leaks, verdict = capsys.readouterr().out.splitlines()
    assert leaks and all(line.startswith("leak: ") for line in leaks)
    assert int(VERDICT.match(verdict)[3]) == len(leaks)


def test_switching_role_subjects_the_owner_to_rls(admin: psycopg.Connection) -> None:
    """What the audit relies on: its owner (here superuser) session sees all, until SET ROLE."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with admin.transaction(force_rollback=True):
        admin.execute("insert into auth.users (id) values (%s), (%s)", (alice, bob))
        admin.execute(
            "insert into public.engagement_events (user_id, event_type) values (%s, 'a'), (%s, 'b')", (alice, bob)
        )
        assert admin.execute("select count(*) from public.engagement_events").fetchone() == (2,)
        with request(admin, "authenticated", claims_for("authenticated", alice)):
            assert admin.execute("select user_id from public.engagement_events").fetchall() == [(alice,)]


def test_refuses_a_role_that_cannot_create_the_throwaway_users(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    api_url = make_url(db_url).set(username="authenticator", password=None).render_as_string(hide_password=False)
    assert main(["--database-url", api_url, "audit"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create the throwaway users and events as authenticator: permission denied")
    assert err.count("\n") == 1
