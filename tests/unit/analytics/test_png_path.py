"""`report --png PATH`: the chart goes exactly where asked, or the command refuses in one line.

Refused before any query runs, so these need no database: the URL names a closed port and the
refusal must come first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from events_schema.analytics.cli import png_problem

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NO_SERVER = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "report", "--weeks", "1", *args],
        env={**os.environ, "DATABASE_URL": NO_SERVER, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("r.txt", "--png r.txt: the chart is a PNG; name the file with .png (e.g. r.png)"),
        ("r", "--png r: the chart is a PNG; name the file with .png (e.g. r.png)"),
        ("r.png.bak", "name the file with .png"),
        ("no-such-dir/r.png", "--png no-such-dir/r.png: no folder no-such-dir (create it first)"),
    ],
)
def test_a_path_the_chart_cannot_go_to_is_refused_in_one_line_before_any_query(
    tmp_path: Path, name: str, message: str
) -> None:
    result = report("--png", name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {message}\n" if message.startswith("--png") else message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing written, no folder created"


def test_a_png_in_an_existing_folder_passes_the_check_and_reaches_the_database(tmp_path: Path) -> None:
    """The other side of the boundary: a good path is not refused (the closed port fails next)."""
    (tmp_path / "out").mkdir()
    for name in ("r.png", "R.PNG", "out/r.png"):
        assert png_problem(tmp_path / name) is None
        result = report("--png", name, cwd=tmp_path)
        assert result.returncode == 1 and "--png" not in result.stderr, result.stderr
    assert png_problem(tmp_path / "out" / "r") is not None
