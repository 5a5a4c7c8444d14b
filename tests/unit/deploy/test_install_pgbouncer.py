"""scripts/install-pgbouncer and its place in scripts/test: the pooler tests' PgBouncer, installed
where it can be, and one line saying how where it cannot (issue 20)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "install-pgbouncer"


def install(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)], env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_pgbouncer_named_by_PGBOUNCER_is_used_as_it_is(tmp_path: Path) -> None:
    binary = tmp_path / "pgbouncer"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    result = install(PGBOUNCER=str(binary))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_PGBOUNCER_that_is_not_a_program_is_one_line_saying_so(tmp_path: Path) -> None:
    for path in (tmp_path / "nowhere", tmp_path):
        result = install(PGBOUNCER=str(path))
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"PGBOUNCER={path} is not an executable" in result.stderr


def test_scripts_test_installs_it_before_the_tests_and_ci_leaves_that_to_it() -> None:
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    install_line = lines.index("scripts/install-pgbouncer || true")
    assert install_line < next(n for n, line in enumerate(lines) if "-m pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci
    assert ci.rstrip().splitlines()[-1].startswith("exec scripts/test")
