"""`python -m worker simulate` as a product owner runs it: the comparison as text, JSON, CSV and
PNG; bad input is one line naming the field (exit 2); a window without data says so (exit 1);
Ctrl-C stops it with one line (exit 130); and it writes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.integration.scan.scan_helpers import add_event, add_user
from tests.integration.worker_process import PROJECT_ROOT

WINDOW = ["--from", "2026-03-01T00:00:00Z", "--to", "2026-03-08T00:00:00Z"]


def simulate(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "simulate", *args],
        env={
            **os.environ,
            "DATABASE_URL": db_url,
            "NUDGE_RULES": '[{"name": "inactive_48h", "threshold_hours": 48}]',
            **env,
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def history(admin: psycopg.Connection) -> None:
    """Users active every 40 h (due for a 36 h rule, never for 48 h), and users who lapse for good."""
    for i in range(4):
        user = add_user(admin, "2026-02-20T00:00:00", tz="Europe/Berlin")
        for k in range(6):
            add_event(admin, user, _at(k * 40 + i))
    for i in range(3):
        user = add_user(admin, "2026-02-20T00:00:00")
        add_event(admin, user, f"2026-03-0{1 + i}T12:00:00")


def _at(hours: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime(2026, 2, 27, 3, tzinfo=UTC) + timedelta(hours=hours)).isoformat()


def test_the_comparison_as_text(db_url: str, history: None, admin: psycopg.Connection) -> None:
    before = admin.execute("select count(*), max(id::text) from engagement_events").fetchone()
    result = simulate(db_url, *WINDOW, "--rules", '[{"name": "inactive_36h", "threshold_hours": 36}]')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "current  inactive_48h 48 h" in out and "proposed inactive_36h 36 h" in out
    assert "users reached only by proposed: 4; only by current: 0" in out
    assert "Per rule and day" in out and "Local hour of sends" in out
    assert admin.execute("select count(*), max(id::text) from engagement_events").fetchone() == before


def test_json_csv_and_png(db_url: str, history: None, tmp_path: Path) -> None:
    result = simulate(
        db_url,
        *WINDOW,
        "--rules",
        '{"quiet_hours": "21:00-09:00"}',
        "--json",
        "--csv",
        str(tmp_path / "csv"),
        "--png",
        str(tmp_path / "chart.png"),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["beats"] == 7 * 96
    current, proposed = out["sides"]["current"], out["sides"]["proposed"]
    # Three users idle since sign-up at the window start, then 48 h after their one event (midday UTC).
    assert current["sent"] == proposed["sent"] == 6
    assert sum(current["rules"][0]["local_hour_of_sends"]) == 6
    assert "quiet hours 21:00-09:00" in proposed["policy"]
    header = (tmp_path / "csv" / "simulate_days.csv").read_text().splitlines()[0]
    assert header.startswith("side,rule,day,sent,withheld,users,opted_out")
    assert (tmp_path / "chart.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rules", '[{"name": "a", "threshold_hours": 36, "treshold": 1}]'], "rule 0 (a): treshold: unknown field"),
        (
            ["--rules", '[{"name": "a", "threshold_hours": -1}]'],
            "rule 0 (a): threshold_hours: Input should be greater than 0",
        ),
        (["--rules", '[{"name": "a", "threshold_hours": 1, "holdout_percent": 101}]'], "holdout_percent"),
        (["--rules", '{"rules": [], "x": 1}'], "unknown field 'x'"),
        (["--rules", '{"quiet_hours": "22:00 to 08:00"}'], "quiet_hours must be 'HH:MM-HH:MM'"),
        (["--rules", '{"cooldown_hours": -2}'], "cooldown_hours must be"),
        (["--rules", "[{"], "--rules: not JSON"),
        (["--tz", "Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus'"),
        (["--every", "soon"], "not an interval"),
        (["--rules-file", "/nonexistent/rules.json"], "--rules-file"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(db_url: str, args: list[str], says: str) -> None:
    result = simulate(db_url, *WINDOW, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert says in result.stderr


def test_a_window_without_data_says_so(db_url: str, history: None) -> None:
    result = simulate(db_url, "--from", "2027-01-01T00:00:00Z", "--to", "2027-01-02T00:00:00Z")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "no data: no activity within the window" in result.stderr
    assert "the log's activity runs from 2026-02-27" in result.stderr
    early = simulate(db_url, "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z")
    assert early.returncode == 1 and "no user had signed up" in early.stderr
    backwards = simulate(db_url, "--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z")
    assert backwards.returncode == 2 and "must be after --from" in backwards.stderr


LONG_WINDOW = ["--from", "2026-02-01T00:00:00Z", "--to", "2026-03-03T00:00:00Z", "--every", "1s"]


def test_ctrl_c_stops_with_one_line(db_url: str, history: None, admin: psycopg.Connection) -> None:
    # One-second beats over 30 days (2.6M instants): interrupted while the server works on them.
    child = subprocess.Popen(
        [sys.executable, "-m", "worker", "simulate", *LONG_WINDOW],
        env={**os.environ, "DATABASE_URL": db_url},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not admin.execute(
            "select exists (select 1 from pg_stat_activity where datname = current_database()"
            " and pid <> pg_backend_pid() and state = 'active' and query like '%%generate_series%%')"
        ).fetchone()[0]:
            assert child.poll() is None and time.monotonic() < deadline, "the replay never got to the server"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err == "error: interrupted: the replay stopped; it had written nothing\n"
    assert out == ""
