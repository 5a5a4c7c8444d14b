"""The README's two commands in one checkout, in the order run, test, run, test (issue 19): each
works whatever the other left behind.

`scripts/run` is the real script, stopped with Ctrl-C once its engine is up; the test command is
what `scripts/test` runs after its set-up (pytest), on three tests: one that runs pytest itself (a
nested run, which once stopped the servers of the run around it) between two that need the
database, Redis and a worker. Both use a state folder of their own standing for the checkout's
`.local/`. As root they run in a network namespace of their own, where nothing answers on
127.0.0.1:5432 or :6379: a machine with no servers, so both start embedded ones; otherwise the
servers on loopback serve the tests and `scripts/run` still starts its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from tests.integration.faults.processes import wait_until
from tests.integration.worker_process import PROJECT_ROOT

# Servers in use (and, on a machine with none, started) before the nested run ends, and used after it.
TESTS = [
    "tests/integration/health/test_health.py::test_workers_of_other_queues_do_not_count",
    "tests/integration/deploy/test_first_use.py::test_the_test_run_says_which_servers_it_uses_once",
    "tests/integration/health/test_health.py::test_healthy_with_a_real_worker_on_the_queue_and_the_worker_login",
]
NO_SERVERS = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def _isolated() -> list[str]:
    """The prefix that runs a command on a machine with no servers, where this one can."""
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        return NO_SERVERS
    return []


def _env(state_dir: Path) -> dict[str, str]:
    """A fresh terminal in the checkout: nothing configured, the state folder standing for .local/."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "EVENTS_TEST_STATE_DIR"}}
    return {**env, "EVENTS_STATE_DIR": str(state_dir)}


def _run(state_dir: Path) -> None:
    """`scripts/run` until its engine is up, then Ctrl-C (SIGINT to its process group)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*_isolated(), "scripts/run"],
            cwd=PROJECT_ROOT,
            env=_env(state_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            wait_until(lambda: "engine running" in output(), 300, output, process=process)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=120)
    assert (state_dir / "services.env").read_text().startswith("# stopped:"), "scripts/run left its servers up"


def _test(state_dir: Path) -> None:
    """The test command; it never takes the URLs of the servers scripts/run stopped."""
    stopped = dotenv_values(state_dir / "services.env")
    result = subprocess.run(
        [*_isolated(), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=PROJECT_ROOT,
        env=_env(state_dir),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(TESTS)} passed" in result.stdout, result.stdout
    header = "\n".join(result.stdout.split("servers used by this run:\n")[1].splitlines()[:2])
    for url in filter(None, stopped.values()):
        assert f":{make_url(url).port}/" not in header, header


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_run_test_run_test_in_one_checkout(tmp_path: Path) -> None:
    state_dir = tmp_path / "local"
    try:
        _run(state_dir)
        _test(state_dir)
        _run(state_dir)
        _test(state_dir)
    finally:
        subprocess.run(
            [sys.executable, "-m", "worker", "services", "purge", "--state-dir", str(state_dir)],
            cwd=PROJECT_ROOT,
            env=_env(state_dir),
            capture_output=True,
            timeout=120,
        )


def test_a_test_run_does_not_take_the_servers_scripts_run_stopped(tmp_path: Path) -> None:
    """The test command right after scripts/run ended, without starting any server: the URLs of
    services.env, marked stopped, are not the run's."""
    state_dir = tmp_path / "local"
    state_dir.mkdir()
    (state_dir / "services.env").write_text(
        "# stopped: `services down` stopped these servers; commands fail against them rather than reach others\n"
        "DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:1/engagement\nREDIS_URL=redis://127.0.0.1:1/0\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/deploy/test_keys.py",
            "-k",
            "years",
        ],
        cwd=PROJECT_ROOT,
        env=_env(state_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
    header = result.stdout.split("servers used by this run:\n")[1].splitlines()[:2]
    assert not any("127.0.0.1:1/" in line for line in header), header
