"""The command lines with the database or the broker down: one error line (plus at most one
line of advice), a non-zero exit, never a traceback. Each runs under a 60 s timeout: a command
that retries a refused connection (Celery's publisher would for minutes) fails it. A bound about
hanging, not speed: how fast a refused connection fails is not timed here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.faults.servers import free_port
from tests.integration.worker_process import PROJECT_ROOT

pytestmark = pytest.mark.slow

DATABASE_COMMANDS = [
    ["worker", "scan"],
    ["worker", "scan", "--dry-run"],
    ["worker", "import", "{file}"],
    ["worker", "tail"],
    ["events_schema", "migrate"],
    ["events_schema", "status"],
    ["events_schema", "seed", "--users", "3"],
    ["events_schema", "audit"],
]
BROKER_COMMANDS = [["worker", "import", "{file}", "--enqueue"]]


def run_down(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps({"user_id": "00000000-0000-0000-0000-000000000001", "event_type": "app_open"}) + "\n")
    dead = free_port()  # nothing listens there
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dead}/engagement",
        "REDIS_URL": f"redis://127.0.0.1:{dead}/0",
        "EVENTS_STATE_DIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", *(a.format(file=path) for a in args)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("args", DATABASE_COMMANDS + BROKER_COMMANDS + [["worker", "metrics"]], ids=" ".join)
def test_a_command_with_its_server_down_says_so_in_one_line(args: list[str], tmp_path: Path) -> None:
    result = run_down(args, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and lines, result.stderr
    assert lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    expected = "PROMETHEUS_MULTIPROC_DIR" if args[-1] == "metrics" else "broker" if "--enqueue" in args else "connect"
    assert expected in lines[0]
