"""`health` and `import` against the servers scripts/run started and then stopped: the same
hint as every other command (start scripts/run again, or configure the URLs), in their one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events_schema.settings import SERVICES_STOPPED_MARK
from tests.integration.faults.servers import free_port
from tests.integration.worker_process import PROJECT_ROOT

HINT = "the servers scripts/run started are stopped"


def run_with_stopped_servers(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A new user's environment: nothing configured, services.env naming servers now stopped."""
    dead = free_port()
    (state_dir / "services.env").write_text(
        f"{SERVICES_STOPPED_MARK} `services down` stopped these servers\n"
        f"DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:{dead}/engagement\n"
        f"REDIS_URL=redis://127.0.0.1:{dead}/0\n"
    )
    unset = {"DATABASE_URL", "REDIS_URL", "WORKER_DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", *args],
        env={**env, "EVENTS_STATE_DIR": str(state_dir)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_health_names_the_stopped_servers(tmp_path: Path) -> None:
    result = run_with_stopped_servers(tmp_path, "worker", "health", "--timeout", "1")
    assert result.returncode == 1 and result.stderr == ""
    last = result.stdout.splitlines()[-1]
    assert last.startswith("unhealthy: database") and HINT in last and "start scripts/run again" in last
    report = json.loads(run_with_stopped_servers(tmp_path, "worker", "health", "--json", "--timeout", "1").stdout)
    assert HINT in report["note"]


@pytest.mark.parametrize("extra", [(), ("--enqueue",)], ids=["in this process", "--enqueue"])
def test_import_names_the_stopped_servers_in_one_line(tmp_path: Path, extra: tuple[str, ...]) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps({"user_id": "00000000-0000-0000-0000-000000000001", "event_type": "app_open"}) + "\n")
    result = run_with_stopped_servers(tmp_path, "worker", "import", str(path), *extra)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and HINT in result.stderr and "Traceback" not in result.stderr


def test_no_hint_when_the_servers_are_simply_configured_elsewhere(tmp_path: Path) -> None:
    """The other side: nothing in the state folder, so a server that is down is just down."""
    env = {
        **os.environ,
        "EVENTS_STATE_DIR": str(tmp_path),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    }
    result = subprocess.run(
        [sys.executable, "-m", "worker", "health", "--timeout", "1"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and HINT not in result.stdout
