"""Servers a fault test owns: a redis-server and a PostgreSQL cluster on free loopback ports.

Only these are ever stopped or restarted by the fault tests, never the machine's shared ones.
A missing binary fails the test (pytest.fail), it is never skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str, pattern: str | None = None) -> str:
    found = sorted(glob.glob(pattern)) if pattern else []
    path = found[-1] if found else shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed; the fault tests need it (.ci/run installs it)")
    return path


class RedisServer:
    """redis-server on a free port; `appendonly` keeps the queue across a restart, as the
    deployment docs recommend for a broker."""

    def __init__(self, appendonly: bool = True) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="fault-redis-"))
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                _binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temp folder, run as the postgres OS user)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.folder / "data"
        self.initdb = _binary("initdb", "/usr/lib/postgresql/*/bin/initdb")
        self.pg_ctl = str(Path(self.initdb).with_name("pg_ctl"))
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/engagement"

    def _as_postgres(self, *args: str) -> None:
        user = "postgres" if os.geteuid() == 0 else None
        subprocess.run(list(args), check=True, user=user, capture_output=True, timeout=60)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._as_postgres(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self._as_postgres(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-w",
            "-t",
            "30",
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> None:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("create database engagement")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
