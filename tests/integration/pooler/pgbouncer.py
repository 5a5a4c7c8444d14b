"""A real PgBouncer (the Debian package `pgbouncer`) in front of the test server, started by the
test: its own ini and userlist in a temporary folder, a free loopback port, trust auth.

PgBouncer refuses to run as root, so as root it runs as an unprivileged system user. The binary is
PGBOUNCER, else `pgbouncer` on PATH or /usr/sbin/pgbouncer; scripts/test installs it where it can
(scripts/install-pgbouncer). Where it is missing, the pooler tests are not run and the run fails
with one line saying why and how to install it (conftest.py beside this file).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

# Tried in order when running as root; `nobody` exists everywhere.
UNPRIVILEGED_USERS = ("postgres", "nobody")
INI = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 200
logfile = {folder}/pgbouncer.log
"""


def find_pgbouncer() -> str | None:
    """PGBOUNCER when set (then only it), else `pgbouncer` on PATH or in the Debian package's place."""
    configured = os.environ.get("PGBOUNCER")
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


def missing_pgbouncer() -> str:
    """Why no PgBouncer was found, and what to do: one line."""
    configured = os.environ.get("PGBOUNCER")
    where = f"PGBOUNCER={configured} is not an executable" if configured else "not on PATH nor in /usr/sbin"
    return (
        f"PgBouncer is missing ({where}): run scripts/install-pgbouncer as root (apt-get install pgbouncer), "
        "install the pgbouncer package, or set PGBOUNCER=/path/to/pgbouncer"
    )


def pgbouncer_binary() -> str:
    found = find_pgbouncer()
    if found is None:
        pytest.fail(f"{missing_pgbouncer()}: the pooler tests cannot run", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail(f"running as root and none of {UNPRIVILEGED_USERS} exists to run PgBouncer as", pytrace=False)


@contextmanager
def running_pgbouncer(
    server: URL,
    *,
    pool_mode: str = "transaction",
    pool_size: int = 3,
    users: tuple[str, ...] = ("postgres", "authenticator"),
) -> Iterator[URL]:
    """PgBouncer in front of `server`; yields the same URL on PgBouncer's port (any database)."""
    binary = pgbouncer_binary()
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = _free_port()
    (folder / "pgbouncer.ini").write_text(
        INI.format(
            host=server.host or "127.0.0.1",
            port=server.port or 5432,
            listen_port=port,
            folder=folder,
            pool_mode=pool_mode,
            pool_size=pool_size,
        )
    )
    (folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    account = _run_as()
    if account is not None:
        for path in (folder, *folder.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
    process = subprocess.Popen(
        [binary, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
    )
    url = server.set(host="127.0.0.1", port=port)
    try:
        _wait_until_ready(process, url, folder)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _log(folder: Path) -> str:
    path = folder / "pgbouncer.log"
    return path.read_text(errors="replace") if path.exists() else "(no log)"


def _wait_until_ready(process: subprocess.Popen[bytes], url: URL, folder: Path, timeout: float = 20) -> None:
    conninfo = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"PgBouncer exited with {process.returncode}:\n{_log(folder)}", pytrace=False)
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                pytest.fail(f"PgBouncer did not answer within {timeout} s:\n{_log(folder)}", pytrace=False)
            time.sleep(0.1)
