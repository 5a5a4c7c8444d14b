"""Embedded servers used by several runs at once (a nested test run, two terminals): only the last
user out stops them, whichever order they leave in, and a user killed outright does not count."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.worker_process import PROJECT_ROOT
from worker.dev_servers import services as ls

# Another process that uses the servers until its stdin closes (or it is killed).
USER = """
import sys
from pathlib import Path
from worker.dev_servers.services import shared_use
with shared_use(Path(sys.argv[1])):
    print("in", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="engagement-shared-"))  # reachable by the servers' user
    try:
        yield path
    finally:
        ls.purge(path, everything=False)  # the servers, the folder, and their home outside it if any


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.ConnectionError:
        return False


def _other_user(state_dir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", USER, str(state_dir)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "in\n"
    return process


def test_a_nested_user_leaves_them_running_and_the_last_stops_them(state_dir: Path) -> None:
    with ls.shared_use(state_dir):
        url = ls.ensure_broker(state_dir)
        with ls.shared_use(state_dir):
            assert _answers(url)
        assert _answers(url), "the nested user stopped the servers of the user around it"
    assert not _answers(url)


def test_the_last_to_leave_stops_them_whichever_it_is(state_dir: Path) -> None:
    with ls.shared_use(state_dir):
        url = ls.ensure_broker(state_dir)
        other = _other_user(state_dir)
    assert _answers(url), "left first, yet stopped the servers another process uses"
    assert other.stdin is not None
    other.stdin.close()
    assert other.wait(timeout=60) == 0
    assert not _answers(url)


def test_a_user_killed_outright_does_not_keep_them_running(state_dir: Path) -> None:
    other = _other_user(state_dir)
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=30)
    with ls.shared_use(state_dir):
        url = ls.ensure_broker(state_dir)
    assert not _answers(url)
