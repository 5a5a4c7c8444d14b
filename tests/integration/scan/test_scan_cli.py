"""`python -m worker scan`, as ops run it: a table of who is due and why, or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from tests.integration.scan.scan_helpers import add_event, add_user
from tests.integration.worker_process import PROJECT_ROOT


def scan_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "scan", *args],
        env={**os.environ, "DATABASE_URL": db_url},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_prints_who_is_due_and_why_and_writes_nothing(admin: psycopg.Connection, db_url: str) -> None:
    lapsed = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, lapsed, "2026-03-02T10:00:00")
    opted_out = add_user(admin, "2026-03-01T00:00:00", opt_out=True)
    result = scan_cli(db_url, "--as-of", "2026-03-05T12:00:00+00:00", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line[:1].isalnum()}
    assert lines[str(lapsed)].rstrip().endswith("nudge")
    assert lines[str(opted_out)].rstrip().endswith("opted_out")
    assert "(dry run): examined=2 due=2 nudged=1" in result.stdout
    assert admin.execute("select count(*) from engagement_events where event_type = 'nudge_sent'").fetchone()[0] == 0


def test_json_summary_and_a_real_scan(admin: psycopg.Connection, db_url: str) -> None:
    add_user(admin, "2026-03-01T00:00:00")
    result = scan_cli(db_url, "--as-of", "2026-03-05T12:00:00+00:00", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["examined"], summary["due"], summary["nudged"]) == (1, 1, 1)
    assert summary["rules"][0]["mode"] == "full" and summary["dry_run"] is False


def test_bad_input_is_one_line_and_a_non_zero_exit(db_url: str) -> None:
    for args in (["--as-of", "2026-03-05T12:00:00"], ["--rule", "no_such_rule"], ["--as-of", "yesterday"]):
        result = scan_cli(db_url, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
