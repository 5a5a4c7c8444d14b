"""The engine's work behind PgBouncer in transaction mode (three server connections): a scan
long enough to repeat its statements on other server connections, a scan killed by SIGKILL
and the one after it, import and replay, retention, seed and the audit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest

from events_schema.audit.audit import audit
from events_schema.db import connect
from events_schema.seed.seed import seed
from events_schema.settings import get_settings
from tests.integration.ingest.import_helpers import NOW, add_users, event, quarantined
from tests.integration.scan.scan_helpers import add_user, at
from tests.integration.worker_process import PROJECT_ROOT
from worker.ingest.importer import import_batch, replay_rejected
from worker.retention.retention import apply_retention, forget_user
from worker.scan import scanner
from worker.scan.scanner import Decision, run_scan

AS_OF = "2026-03-05T12:00:00+00:00"


def add_lapsed_users(admin: psycopg.Connection, count: int) -> None:
    """`count` users who signed up days before AS_OF and never came back: all due, in UTC."""
    admin.execute(
        "insert into auth.users (id, created_at) select gen_random_uuid(), %s from generate_series(1, %s)",
        (at("2026-03-01T00:00:00"), count),
    )


def nudges_per_user(admin: psycopg.Connection) -> dict[object, int]:
    return dict(
        admin.execute(
            "select user_id, count(*) from engagement_events where event_type = 'nudge_sent' group by user_id"
        ).fetchall()
    )


def test_a_scan_repeating_its_statements_on_other_server_connections_completes(
    admin: psycopg.Connection, settings_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """15 batches: each statement runs 15 times on one client connection (psycopg would prepare
    it after 5), while another client takes the server connection the scan has just released
    after every batch, so the scan's next batch runs on another server connection."""
    users = [add_user(admin, "2026-03-01T00:00:00") for _ in range(30)]
    monkeypatch.setenv("SCAN_BATCH_SIZE", "2")
    get_settings.cache_clear()
    scan_pids: list[int] = []
    begin = scanner.begin_batch

    def begin_and_note_the_server(conn: psycopg.Connection) -> None:
        begin(conn)
        scan_pids.append(conn.execute("select pg_backend_pid()").fetchone()[0])

    monkeypatch.setattr(scanner, "begin_batch", begin_and_note_the_server)
    decided = 0
    with connect(settings_env) as hog:

        def between_batches(_: Decision) -> None:
            nonlocal decided
            decided += 1
            if decided % 2:  # once per batch of two
                if hog.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                    hog.rollback()
                else:
                    hog.execute("select 1")  # holds the server connection the scan just released

        summary = run_scan(at(AS_OF), on_decision=between_batches)
        hog.rollback()
    assert summary.ran and summary.totals()["nudged"] == 30
    assert nudges_per_user(admin) == dict.fromkeys(users, 1)
    # The scan's transactions did run on more than one server connection, one after the other.
    assert len(set(scan_pids)) >= 2 and len(scan_pids) >= 15


def _scan_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "scan", "--full", "--as-of", AS_OF, "--json", *args],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_scan_killed_mid_way_leaks_nothing_and_the_next_one_completes(
    admin: psycopg.Connection, settings_env: str
) -> None:
    total = 3000
    add_lapsed_users(admin, total)
    env = {**os.environ, "SCAN_BATCH_SIZE": "25", "SCAN_LEASE_SECONDS": "3"}
    first = _scan_cli(env)
    deadline = time.monotonic() + 120
    while nudges_count(admin) == 0:  # the first batch has committed
        assert first.poll() is None, first.communicate(timeout=60)
        assert time.monotonic() < deadline, "the first scan wrote nothing in 120 s"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    time.sleep(1)  # its in-flight transaction is rolled back when PgBouncer sees the client go
    written = nudges_count(admin)
    assert 0 < written < total
    # The dead scan's lease is still there, expiring: the next scan waits it out, then runs.
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 1

    # ran: true is the proof it waited the dead scan's 3 s lease out; the timeout bounds a hang.
    second = _scan_cli(env)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    summary = json.loads(out)
    assert summary["ran"] and summary["nudged"] == total - written
    assert summary["skipped"]["already_nudged"] == written
    assert set(nudges_per_user(admin).values()) == {1} and nudges_count(admin) == total
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 0
    print(
        f"\nkilled scan through PgBouncer: {written} of {total} written before SIGKILL; "
        f"the next scan nudged {summary['nudged']}, skipped {written} as already nudged; total {total}"
    )


def nudges_count(admin: psycopg.Connection) -> int:
    return admin.execute("select count(*) from engagement_events where event_type = 'nudge_sent'").fetchone()[0]


def test_import_and_a_replay_of_two_batches_in_one_transaction(admin: psycopg.Connection, settings_env: str) -> None:
    [user] = add_users(admin)
    late = add_users(admin)[0]
    admin.execute("delete from auth.users where id = %s", (late,))  # unknown until re-created
    a = import_batch([event(user, value=[]), event(late)], batch_id="a", now=NOW)
    b = import_batch([event(late), event(user, value=[])], batch_id="b", now=NOW)
    assert (a.inserted, a.rejected, b.inserted, b.rejected) == (0, 2, 0, 2)
    admin.execute("insert into auth.users (id) values (%s)", (late,))
    # One chunk claims both batches' rows, one transaction: each group stages only its own, so
    # a's row 1 passing does not take b's row 1, which still fails, out of the quarantine.
    replay = replay_rejected(clock=lambda: NOW)
    assert (replay.inserted, replay.duplicates, replay.rejected) == (2, 0, 2)
    assert [(batch, position) for batch, position, _, _ in quarantined(admin)] == [("a", 0), ("b", 1)]
    again = import_batch([event(user), event(user)], batch_id="c", now=NOW)
    assert again.inserted == 2


def test_retention_and_forget_through_the_pooler(admin: psycopg.Connection, settings_env: str) -> None:
    [old_user, user] = add_users(admin, 2)
    for stamp in (NOW - timedelta(days=400), NOW - timedelta(days=1)):
        admin.execute(
            "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')",
            (old_user, stamp),
        )
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type)"
        " select %s, %s - g * interval '1 minute', 'app_open' from generate_series(1, 25) g",
        (user, NOW),
    )
    assert apply_retention(NOW, retention_days=365, chunk_size=200)["soft_deleted"] == 1
    assert forget_user(user, chunk_size=10) == {
        "user_id": str(user),
        "soft_deleted": 25,
        "chunks": 4,
        "quarantine_purged": 0,
        "messages_deleted": 1,
    }


def test_seed_and_the_audit_through_the_pooler(settings_env: str) -> None:
    report = seed(settings_env, users=20, days=3, seed=7)
    assert report is not None and report.users == 20
    result = audit(settings_env, users=3)
    assert result.ok, result.leaks + result.refusals
