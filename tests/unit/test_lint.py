"""scripts/lint fails on each kind of violation it promises to catch, and scripts/test runs it
before the tests (so CI, which runs scripts/test, fails on a violation)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What scripts/lint reads: its config, the code it checks and the packages the contracts name.
LINTED = ["pyproject.toml", "scripts/lint", "celeryconfig.py", "worker", "events_schema", "bench"]
# One violation per step, each invisible to the other steps.
VIOLATIONS = {
    # ruff check: a blind except (BLE001), formatted and typed correctly.
    "worker/clock.py": "\n\ndef _swallow() -> None:\n    try:\n        pass\n    except Exception:\n        pass\n",
    # ruff format: `[1,2]` (pycodestyle's whitespace rules are not among ruff's stable ones).
    "bench/unformatted.py": "VALUE = [1,2]\n",
    # mypy: a str returned as int.
    "worker/database.py": '\n\ndef _typed() -> int:\n    return "text"\n',
    # import contracts: events_schema reaching into the engine (lazily, so only the layers see it).
    "events_schema/queries.py": "\n\ndef _reaches_the_engine() -> object:\n    from worker import clock\n\n    return clock\n",
    # import contracts again: a new worker module that no layer lists (the contract is exhaustive).
    "worker/unplaced.py": '"""A module no layer of the contract lists."""\n',
}


def _lint_copy(tmp_path: Path) -> Path:
    """A copy of what scripts/lint checks, using this interpreter's environment as its .venv."""
    tree = tmp_path / "tree"
    for name in LINTED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    (tree / ".venv").symlink_to(Path(sys.executable).parent.parent)
    if (ROOT / ".mypy_cache").is_dir():  # a warm start; mypy re-checks what changed
        shutil.copytree(ROOT / ".mypy_cache", tree / ".mypy_cache")
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MYPY_CACHE_DIR")}
    return subprocess.run(
        ["bash", str(tree / "scripts" / "lint")], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lint_passes_a_clean_tree_and_fails_each_kind_of_violation(tmp_path: Path) -> None:
    tree = _lint_copy(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    for name, addition in VIOLATIONS.items():
        path = tree / name
        path.write_text((path.read_text(encoding="utf-8") if path.exists() else "") + addition, encoding="utf-8")
    broken = _lint(tree)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stderr.splitlines()[-1] == "lint: failed: ruff check, ruff format, mypy, import contracts", (
        broken.stdout + broken.stderr
    )
    assert "BLE001" in broken.stdout and "worker/clock.py" in broken.stdout
    assert "bench/unformatted.py" in broken.stdout
    assert "worker/database.py:" in broken.stdout and "Incompatible return value" in broken.stdout
    assert "events_schema.queries -> worker.clock" in broken.stdout
    assert "- worker.unplaced" in broken.stdout  # "not listed as layers"


def test_scripts_test_runs_lint_before_pytest_and_stops_on_its_failure() -> None:
    lines = [line.strip() for line in (ROOT / "scripts" / "test").read_text(encoding="utf-8").splitlines()]
    assert "set -euo pipefail" in lines  # a failing step ends the script with its status
    lint = lines.index("scripts/lint")
    pytest_line = next(i for i, line in enumerate(lines) if line.startswith("exec .venv/bin/python -m pytest"))
    assert lines.index("scripts/bootstrap") < lint < pytest_line
