"""Without PgBouncer the pooler tests are not run and the run fails, in one line saying how to
install it, instead of an error per test (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.worker_process import PROJECT_ROOT


def nested_pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_pgbouncer_the_pooler_tests_fail_the_run_in_one_line() -> None:
    result = nested_pytest(
        "tests/integration/pooler",
        "tests/unit/deploy/test_keys.py",
        "-k",
        "years or through_pgbouncer",
        PGBOUNCER="/nonexistent/pgbouncer",
    )
    assert result.returncode == 1, result.stdout
    [line] = [line for line in result.stdout.splitlines() if "PgBouncer" in line]
    assert "pooler tests not run: PgBouncer is missing (PGBOUNCER=/nonexistent/pgbouncer is not an executable)" in line
    assert "scripts/install-pgbouncer" in line
    assert " 1 passed" in result.stdout or result.stdout.splitlines()[-1].startswith("1 passed"), result.stdout
    assert "error" not in result.stdout.splitlines()[-1], result.stdout


def test_with_pgbouncer_left_out_on_purpose_the_run_passes() -> None:
    result = nested_pytest(
        "tests/unit/deploy/test_keys.py",
        "-k",
        "years",
        "--ignore=tests/integration/pooler",
        PGBOUNCER="/nonexistent/pgbouncer",
    )
    assert result.returncode == 0, result.stdout
    assert "PgBouncer" not in result.stdout
