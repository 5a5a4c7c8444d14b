"""`python -m bench` end to end at a tiny size, so the harness cannot rot. Nothing is timed: the
test checks the figures exist, that a reused dataset gives the same decisions as when it was
built (the engine's state is reset between runs), and that compare and the chart work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from events_schema.db import conninfo
from tests.integration.worker_process import PROJECT_ROOT

pytestmark = pytest.mark.slow

TINY = [
    "--users",
    "200",
    "--events-per-user",
    "5",
    "--beats",
    "8",
    "--import-events",
    "300",
    "--single-rows",
    "20",
    "--insert-batches",
    "1",
    "--max-nudges-per-scan",
    "3",
]


def bench(args: list[str], db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": db_url},
        timeout=600,
    )


# Two tiny benchmark runs back to back (each bounded by bench()'s own subprocess timeout).
@pytest.mark.timeout(1200)
def test_the_benchmark_runs_end_to_end_and_a_reused_dataset_decides_the_same(db_url: str, tmp_path: Path) -> None:
    name = f"bench_test_{uuid.uuid4().hex[:8]}"
    admin = make_url(db_url).set(database="postgres").render_as_string(hide_password=False)
    try:
        first = bench(
            [*TINY, "--reuse", name, "--json", str(tmp_path / "a.json"), "--png", str(tmp_path / "a.png")], db_url
        )
        assert first.returncode == 0, first.stderr
        second = bench([*TINY, "--reuse", name, "--json", str(tmp_path / "b.json")], db_url)
        assert second.returncode == 0, second.stderr
        # Every measure that writes rows of its own removes them: the dataset is as it was built.
        kept = make_url(db_url).set(database=name).render_as_string(hide_password=False)
        with psycopg.connect(conninfo(kept), autocommit=True) as conn:
            left = conn.execute("select count(*) from engagement_events where value ? 'bench'").fetchone()
            assert left == (0,), "a measure left its rows in the dataset"
    finally:
        with psycopg.connect(conninfo(admin), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    a, b = (json.loads((tmp_path / f).read_text())["sizes"][0] for f in ("a.json", "b.json"))
    assert (a["users"], a["events"]) == (200, 1000)
    assert a["nudged"] > 0 and a["copy_nudges_per_s"] > 0 and a["peak_rss_mb"] > 0
    assert len(a["day_beats"]) == 8 and a["day_nudged"] > 0  # the morning waves of the zones released someone
    # The same day under NUDGE_MAX_PER_SCAN=3: no beat sends more, and what it holds back is counted.
    assert a["cap"] == 3 and len(a["capped_beats"]) == 8
    assert max(x["nudged"] for x in a["capped_beats"]) <= 3 and a["capped_nudged"] > 0
    assert a["import_same_rows"] is True and a["import_summary"]["inserted"] == 300
    for case in ("single", "batch", "new_users"):
        assert min(a[f"insert_{case}{side}_per_s"] for side in ("", "_twin", "_bare")) > 0
    for case in ("single", "batch", "new_users"):
        assert min(a[f"insert_{case}{side}_per_s"] for side in ("_same_table", "_no_triggers")) > 0
    assert a["fold_events"] == 1 and a["fold_total_s"] >= a["fold_writes_s"] > 0  # 200 x 5 / 2,880, at least 1
    assert a["import_peak_rss_mb"] > 0 and a["schema"] == b["schema"] and len(a["schema"]) == 14
    machine = json.loads((tmp_path / "a.json").read_text())["machine"]
    assert machine["memory_gb"] > 0 and machine["shared_buffers"] and len(machine["load_before"]) == 3
    assert a["copy_nudges_in_table_per_s"] > 0
    for case in ("single_1user", "single_1000users", "batch_1user", "batch_1000users"):
        assert min(a[f"broadcast_{case}_{side}_per_s"] for side in ("on", "off")) > 0
    # Same data, engine state reset: the same nudges, at the full scan and over the day.
    assert (b["nudged"], b["due"], b["day_nudged"]) == (a["nudged"], a["due"], a["day_nudged"])
    assert [x["nudged"] for x in b["day_beats"]] == [x["nudged"] for x in a["day_beats"]]
    assert "  baseline / full scan " in first.stdout
    assert "broadcast trigger, 200 users, batch_1000users: with" in first.stdout
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    compared = bench(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], db_url)
    assert compared.returncode == 0, compared.stderr
    assert any(
        line.strip().startswith("nudges written ") and line.endswith("x1.00") for line in compared.stdout.splitlines()
    )


def test_bad_arguments_and_a_missing_file_are_one_line_errors(db_url: str, tmp_path: Path) -> None:
    for args in (
        ["--users", "0"],
        ["--skip", "nope"],
        ["compare", str(tmp_path / "missing.json"), str(tmp_path / "missing.json")],
    ):
        done = bench(args, db_url)
        assert done.returncode == 1
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
