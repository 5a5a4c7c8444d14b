"""`python -m events_schema report` as an analyst runs it: table, CSVs that match it, a real PNG."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
from matplotlib.image import imread

from tests.integration.analytics.cohorts import build_cohorts, build_nudges
from tests.integration.analytics.test_holdout_lift import arm
from tests.integration.worker_process import PROJECT_ROOT

AS_OF = "2026-11-25T12:00:00+00:00"


def report(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "report", *args],
        env={**os.environ, "DATABASE_URL": db_url},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def printed_retention(stdout: str) -> list[list[str]]:
    """The cohort rows of the printed retention table, cells as printed."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cohort (week of)")) + 2
    end = lines.index("", start)
    return [line.split() for line in lines[start:end]]


def test_the_table_the_csv_and_the_png(admin: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    build_cohorts(admin)
    png = tmp_path / "chart" / "report.png"
    png.parent.mkdir()
    result = report(db_url, "--from", "2026-11-02", "--as-of", AS_OF, "--csv", str(tmp_path / "csv"), "--png", str(png))
    assert result.returncode == 0, result.stderr
    table = printed_retention(result.stdout)
    assert table == [
        ["2026-11-02", "4", "50.0%", "50.0%", "0.0%", "50.0%"],
        ["2026-11-16", "2", "100.0%", "50.0%", "-", "-"],
        ["2026-11-23", "1", "0.0%", "-", "-", "-"],
    ]
    # Aligned: every row of the table is as wide as its header and the columns line up.
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("cohort (week of)"))
    assert len({line.rstrip().rfind("%") for line in lines[head + 2 : head + 5] if line.endswith("%")}) == 1
    with (tmp_path / "csv" / "retention.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["cohort_week", "cohort_size", "week_0", "week_1", "week_2", "week_3"]
    # The same cells, as fractions (the unit of nudge_effect.csv's shares too): 0.5 is 50.0%.
    assert [
        [f"{100 * float(c):.1f}%" if i > 1 and c else (c or "-") for i, c in enumerate(r)] for r in rows[1:]
    ] == table
    assert rows[1][2] == "0.5" and rows[2][2] == "1.0"
    assert {p.name for p in (tmp_path / "csv").iterdir()} == {
        "retention.csv",
        "weekly_active.csv",
        "event_mix.csv",
        "nudge_effect.csv",
        "holdout_lift.csv",
        "shadow_vs_live.csv",
    }
    with (tmp_path / "csv" / "weekly_active.csv").open(newline="") as handle:
        assert [r["active_users"] for r in csv.DictReader(handle)] == ["2", "3", "2", "3"]
    pixels = imread(png)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 50  # heatmap, line and text: far from a blank canvas
    assert (pixels[..., :3] < 0.5).mean() > 0.01  # and real ink, not near-white noise


def test_nudge_comparison_is_printed_and_written(admin: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    build_nudges(admin)
    result = report(db_url, "--from", "2026-11-02", "--to", "2026-11-08", "--as-of", AS_OF, "--csv", str(tmp_path))
    assert result.returncode == 0, result.stderr
    printed = [line.split() for line in result.stdout.splitlines() if "inactive_48h" in line]
    assert printed == [
        ["2026-11-02", "inactive_48h", "nudged", "4", "50.0%", "4", "75.0%", "4"],
        ["2026-11-02", "inactive_48h", "held", "3", "66.7%", "3", "66.7%", "3"],
    ]
    with (tmp_path / "nudge_effect.csv").open(newline="") as handle:
        written = {r["group"]: r for r in csv.DictReader(handle)}
    assert (written["nudged"]["back_24h"], written["held"]["back_72h"]) == ("2", "2")


def test_holdout_lift_is_printed_and_written(admin: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    arm(admin, "nudge_sent", 70, 56, "2026-11-03T10:00")
    arm(admin, "nudge_withheld", 80, 48, "2026-11-03T10:00")
    arm(admin, "nudge_sent", 5, 5, "2026-11-10T10:00", holdout={"holdout_percent": 10, "holdout_salt": ""})
    result = report(db_url, "--from", "2026-11-02", "--as-of", AS_OF, "--csv", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Holdout lift")) + 4
    table = lines[start : lines.index("", start)]
    assert [" ".join(line.split()) for line in table] == [
        "2026-11-02 inactive_48h 50% s1 24 h 80.0% (56/70) 60.0% (48/80) +20.0 [+5.2, +33.4]",
        "2026-11-02 inactive_48h 50% s1 72 h 80.0% (56/70) 60.0% (48/80) +20.0 [+5.2, +33.4]",
        "2026-11-09 inactive_48h 10% (no salt) 24 h 100.0% (5/5) - not enough data",
        "2026-11-09 inactive_48h 10% (no salt) 72 h 100.0% (5/5) - not enough data",
        "all inactive_48h 10% (no salt) 24 h 100.0% (5/5) - not enough data",
        "all inactive_48h 10% (no salt) 72 h 100.0% (5/5) - not enough data",
        "all inactive_48h 50% s1 24 h 80.0% (56/70) 60.0% (48/80) +20.0 [+5.2, +33.4]",
        "all inactive_48h 50% s1 72 h 80.0% (56/70) 60.0% (48/80) +20.0 [+5.2, +33.4]",
    ]
    with (tmp_path / "holdout_lift.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["week_start"][:10], r["window_hours"], r["note"]) for r in written[:1]] == [("2026-11-02", "24", "")]
    assert float(written[0]["lift_low"]) == pytest.approx(0.0524, abs=5e-5)


def test_no_progress_line_when_stderr_is_not_a_terminal(db_url: str) -> None:
    result = report(db_url, "--weeks", "2", "--as-of", AS_OF)
    assert result.returncode == 0 and result.stderr == ""
    assert "(no sign-ups in the range)" in result.stdout


def test_expected_failures_are_one_line(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    cases = [
        (report(db_url, "--from", "2026-11-10", "--to", "2026-11-01"), 2, "before --from"),
        (report(db_url, "--to", "2026-11-01"), 2, "--to needs --from"),
        (report(db_url, "--from", "2027-01-01", "--as-of", AS_OF), 2, "in the future"),
        (report(db_url, "--weeks", "0"), 2, "must be at least 1"),
        (report(db_url, "--from", "yesterday"), 2, "not a date"),
        (report(db_url, "--weeks", "1", "--from", "2026-11-02"), 2, "not allowed with"),
        (report(empty_db_url, "--weeks", "1"), 1, "is the database migrated?"),
        (report("postgresql+psycopg://postgres@127.0.0.1:1/x", "--weeks", "1"), 1, "cannot connect"),
    ]
    (tmp_path / "file").write_text("")
    cases.append((report(db_url, "--weeks", "1", "--csv", str(tmp_path / "file" / "sub")), 1, "cannot write"))
    for result, code, message in cases:
        assert result.returncode == code, (result.args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 or code == 2, result.stderr
    assert report(db_url, "--help").returncode == 0


def test_a_progress_line_on_a_terminal(admin: psycopg.Connection, db_url: str) -> None:
    """stderr on a pseudo-terminal: the progress line is drawn there, the table still goes to stdout."""
    import pty

    build_cohorts(admin)
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "events_schema", "report", "--from", "2026-11-02", "--as-of", AS_OF],
            env={**os.environ, "DATABASE_URL": db_url},
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert result.returncode == 0
    assert b"report [" in drawn and b"running retention" in drawn and b"done" in drawn
    assert "report [" not in result.stdout and printed_retention(result.stdout)


def test_the_default_range_starts_where_the_data_does(admin: psycopg.Connection, db_url: str) -> None:
    """No --weeks or --from: 8 weeks, but from the first week with activity (2026-11-02 here), so
    weeks before the history starts add no cohorts of zeros; --weeks 8 still shows all eight."""
    build_cohorts(admin)
    fitted = report(db_url, "--as-of", AS_OF)
    assert fitted.returncode == 0, fitted.stderr
    assert "2026-11-02 to 2026-11-25 12:00 UTC" in fitted.stdout.splitlines()[0]
    assert [row[0] for row in printed_retention(fitted.stdout)] == ["2026-11-02", "2026-11-16", "2026-11-23"]
    asked = report(db_url, "--weeks", "8", "--as-of", AS_OF)
    assert "2026-10-05 to 2026-11-25 12:00 UTC" in asked.stdout.splitlines()[0]
    weekly = [line.split()[0] for line in asked.stdout.split("Weekly active users", 1)[1].splitlines()[4:12]]
    assert weekly[0] == "2026-10-05" and len(weekly) == 8
