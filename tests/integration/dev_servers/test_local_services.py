"""The embedded PostgreSQL and Valkey, end to end: start, use, stop, and no orphans after a SIGKILL.

Uses a fresh state folder under the temporary folder (not pytest's tmp_path, whose parent is
private to us and so out of reach for the unprivileged server user when we run as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from events_schema.db import conninfo
from worker.dev_servers import runtime as embedded_runtime
from worker.dev_servers import services as ls

pytestmark = pytest.mark.slow


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="engagement-services-"))
    try:
        yield path
    finally:
        ls.stop_all(path)  # whatever the test did, leave no server behind
        shutil.rmtree(path)


def _process_uid(pid: int) -> int:
    if Path("/proc/self").exists():
        return Path(f"/proc/{pid}").stat().st_uid
    ps = subprocess.run(["ps", "-o", "uid=", "-p", str(pid)], capture_output=True, text=True, check=True, timeout=30)
    return int(ps.stdout)


def _port_open(url: str) -> bool:
    parsed = make_url(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.host, parsed.port)) == 0


def _pids(state_dir: Path) -> tuple[int, int]:
    return (
        int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0]),
        int((state_dir / "valkey" / "valkey.pid").read_text().split()[0]),
    )


def _assert_gone(pids: tuple[int, ...], urls: tuple[str, ...]) -> None:
    for pid in pids:
        assert embedded_runtime.command_line(pid) is None, f"process {pid} still runs"
    for url in urls:
        assert not _port_open(url), f"{url} still accepts connections"


def test_embedded_servers_start_answer_and_stop(state_dir: Path) -> None:
    database_url = ls.ensure_postgres(state_dir)
    assert make_url(database_url).database == "engagement"
    with psycopg.connect(conninfo(database_url)) as conn:
        assert "PostgreSQL 17" in conn.execute("select version()").fetchone()[0]
        assert conn.execute("show wal_level").fetchone()[0] == "logical"
        assert conn.execute("show max_connections").fetchone()[0] == "100"

    data_dir = state_dir / "postgres"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    redis_url = ls.ensure_broker(state_dir)
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()

    pg_pid, valkey_pid = _pids(state_dir)
    for pid in (pg_pid, valkey_pid):
        assert _process_uid(pid) != 0, "a server runs as root"
        assert _process_uid(pid) == data_dir.stat().st_uid
    assert ls.postgres_answers(database_url) and ls.broker_answers(redis_url)

    # A second `up` (another terminal) reuses the running servers on the same ports.
    assert (ls.ensure_postgres(state_dir), ls.ensure_broker(state_dir)) == (database_url, redis_url)
    assert _pids(state_dir) == (pg_pid, valkey_pid)

    ls.write_services_env(state_dir, database_url, redis_url)
    assert (state_dir / "services.env").read_text() == f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\n"

    ls.stop_all(state_dir)
    _assert_gone((pg_pid, valkey_pid), (database_url, redis_url))
    # The URLs stay, marked stopped: commands fail against them instead of reaching other servers.
    assert (state_dir / "services.env").read_text().startswith("# stopped:")
    assert not ls.postgres_answers(database_url) and not ls.broker_answers(redis_url)

    # A crashed broker (SIGKILL, pid file left behind) is noticed and restarted on the same port.
    # (A SIGKILLed postmaster is left to PostgreSQL's own stale-lock handling, which needs an init
    # that reaps orphans; this machine's may not.)
    assert ls.ensure_broker(state_dir) == redis_url
    os.kill(int((state_dir / "valkey" / "valkey.pid").read_text()), signal.SIGKILL)
    assert ls.ensure_broker(state_dir) == redis_url
    assert ls.broker_answers(redis_url)


def test_watchdog_stops_servers_when_launcher_is_killed(state_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("DATABASE_URL", "REDIS_URL")}
    launcher = subprocess.Popen(["sleep", "300"])
    try:
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "worker.dev_servers.services",
                "up",
                "--watch-parent",
                str(launcher.pid),
                "--state-dir",
                str(state_dir),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=state_dir,
            timeout=60,
        )
        assert up.returncode == 0, up.stderr
        urls = dict(line.split("=", 1) for line in up.stdout.splitlines())
        assert set(urls) == {"DATABASE_URL", "REDIS_URL"}
        assert (state_dir / "services.env").read_text() == up.stdout
        status = subprocess.run(
            [sys.executable, "-m", "worker.dev_servers.services", "status", "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            env=env,
            cwd=state_dir,
            timeout=30,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        pids = (*_pids(state_dir), int((state_dir / "watchdog.pid").read_text()))
    finally:
        launcher.kill()
        launcher.wait(timeout=30)

    deadline = time.monotonic() + 15
    while any(embedded_runtime.command_line(pid) is not None for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    _assert_gone(pids, (urls["DATABASE_URL"], urls["REDIS_URL"]))
    assert (state_dir / "services.env").read_text().startswith("# stopped:")


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root do the servers run as another user")
def test_private_state_folder_opens_nothing_up(state_dir: Path) -> None:
    """A state folder the service user cannot reach (a checkout under /root, a 0700 CI folder):
    the servers get folders of their own under RUNTIME_ROOT, and no parent is loosened."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the servers as another user")
    private = state_dir / "private"
    private.mkdir(mode=0o700)
    inner = private / "state"
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("DATABASE_URL", "REDIS_URL")}
    try:
        up = subprocess.run(
            [sys.executable, "-m", "worker.dev_servers.services", "up", "--state-dir", str(inner)],
            capture_output=True,
            text=True,
            cwd=state_dir,
            timeout=60,
            env=env,
        )
        assert up.returncode == 0, up.stderr
        urls = dict(line.split("=", 1) for line in up.stdout.split())
        assert ls.postgres_answers(urls["DATABASE_URL"]) and ls.broker_answers(urls["REDIS_URL"])
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, "a parent folder was opened up"
        home = embedded_runtime.server_home(inner, embedded_runtime.service_account())
        assert home.parent == embedded_runtime.RUNTIME_ROOT / "servers" and (home / "postgres" / "PG_VERSION").exists()
    finally:
        ls.stop_all(inner)
        shutil.rmtree(embedded_runtime.server_home(inner, embedded_runtime.service_account()))
    assert not ls.postgres_answers(urls["DATABASE_URL"]) and not ls.broker_answers(urls["REDIS_URL"])
