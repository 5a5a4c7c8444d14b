"""Embedded PostgreSQL and Valkey, for running with nothing installed.

Used only for what the user has not configured (DATABASE_URL / REDIS_URL in the environment or
`.env`). Both servers run detached, so they outlive the command that started them, and as an
unprivileged user when we are root (PostgreSQL refuses root; Valkey does not need it). Everything
they need to be found and stopped again, by `down`, by a second terminal or by the watchdog after a
crash, lives in the state folder:

    services.lock    serialises up / down / watchdog
    users.lock       shared by the processes that use the servers (shared_use): the last stops them
    services.env     URLs of the embedded servers, read by Settings; kept by `down`, marked
                     stopped, so commands fail against them instead of reaching other servers
    postgres/        PostgreSQL data folder (service user, 0700); postmaster.pid inside
    postgres.port    port chosen once, reused while it stays free
    postgres.log
    valkey/          Valkey folder (service user, 0700) with valkey.pid and valkey.log
    valkey.port
    watchdog.pid, watchdog.log
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from events_schema.cli_args import CommandParser
from events_schema.cli_errors import keeping_status, run_command
from events_schema.errors import CommandError
from events_schema.settings import SERVICES_STOPPED_MARK, STATE_DIR
from worker.dev_servers import runtime as embedded_runtime
from worker.dev_servers.runtime import (
    VALKEY_STOP_TIMEOUT,
    Account,
    ServiceError,
    _locked,
    _process_of,
    _read_int,
    _terminate,
    command_line,
    runtime_home,
    server_home,
    service_account,
)
from worker.dev_servers.servers import (
    _pg_running,
    _pg_stop,
    _pg_url,
    _redis_url,
    broker_answers,
    ensure_broker,
    ensure_postgres,
    postgres_answers,
)

WATCH_INTERVAL = 1.0
DESCRIPTION = (
    "Embedded PostgreSQL and Valkey for what DATABASE_URL / REDIS_URL do not configure. Their data "
    "and logs live in the state folder (--state-dir, default .local/); as root the servers run as "
    f"the system user {embedded_runtime.SERVICE_USER}, and when the checkout is private to root "
    f"their data and read-only program copies (about 250 MB) live under {embedded_runtime.RUNTIME_ROOT} "
    "and outlive the checkout. `purge` deletes one state folder's servers and files; `purge --all` "
    "also the shared copies and the system user."
)
# Where `python -m worker.dev_servers.services` resolves, for the watchdog's working folder.
IMPORT_ROOT = Path(__file__).resolve().parents[2]

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


def mark_stopped(state_dir: Path) -> None:
    """Keep services.env naming the stopped servers, with a first line saying they are stopped."""
    target = state_dir / "services.env"
    if not target.exists():
        return
    text = target.read_text()
    if not text.startswith(SERVICES_STOPPED_MARK):
        target.write_text(
            f"{SERVICES_STOPPED_MARK} `services down` stopped these servers; "
            "commands fail against them rather than reach others\n" + text
        )


def _stop_watchdog(state_dir: Path) -> None:
    pid = _process_of(state_dir / "watchdog.pid", "worker.dev_servers.services watchdog")
    if pid is not None:
        _terminate(pid, 2.0)
    (state_dir / "watchdog.pid").unlink(missing_ok=True)


def stop_all(state_dir: Path) -> None:
    """Stop the watchdog and both embedded servers of this state folder; harmless when none run."""
    if not state_dir.is_dir():
        return
    with _locked(state_dir):
        _stop_watchdog(state_dir)
        mark_stopped(state_dir)
        problems: list[str] = []
        home = server_home(state_dir, service_account())
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


@contextmanager
def shared_use(state_dir: Path) -> Iterator[None]:
    """Use this state folder's servers alongside other processes (test runs, nested or side by side):
    each holds a shared lock on users.lock while it may use them, and the last one out stops them.

    A user that leaves takes the lock exclusively without waiting: if it gets it, nobody else uses
    them and it stops them (holding it, so a newcomer waits until they are down, then starts them
    again); if not, another user is still there and stops them later. A user killed outright lets
    go of its lock with its process, so the count cannot go stale.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # someone else still uses them
        stop_all(state_dir)
    finally:
        os.close(fd)


def start_watchdog(state_dir: Path, parent: int) -> None:
    """A detached process that runs stop_all once `parent` is gone, even if it died by SIGKILL.

    It has its own session, so the launcher's Ctrl-C or a kill of its process group spares it;
    it reports "ready" before we return, so a watchdog that cannot start is an error, not a gap.
    """
    with _locked(state_dir):
        _stop_watchdog(state_dir)  # one watchdog per state folder: the newest launcher owns the servers
        with open(state_dir / "watchdog.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "worker.dev_servers.services",
                    "watchdog",
                    "--parent",
                    str(parent),
                    "--state-dir",
                    str(state_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=IMPORT_ROOT,
                start_new_session=True,
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
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} process {parent} is gone; stopping the services", file=sys.stderr)
    stop_all(state_dir)


def purge(state_dir: Path, everything: bool) -> list[str]:
    """Stop this state folder's servers and delete their files; `everything` also removes what
    all checkouts share (RUNTIME_ROOT's program copies, the system user) once no other state
    folder keeps servers there. Returns what was removed."""
    removed: list[str] = []
    if state_dir.is_dir():
        # State folders inside this one (the tests' .local/tests/) go first: their servers too.
        for inner in sorted(p.parent for p in state_dir.glob("*/**/postgres.port")):
            removed += purge(inner, everything=False)
        stop_all(state_dir)
    for path in (runtime_home(state_dir), state_dir):
        if path.exists():
            shutil.rmtree(path)
            removed.append(str(path))
    if not everything:
        return removed
    root = embedded_runtime.RUNTIME_ROOT
    others = sorted((root / "servers").iterdir()) if (root / "servers").is_dir() else []
    if others:
        raise ServiceError(
            f"{len(others)} other state folder(s) keep servers under {root / 'servers'} "
            f"(e.g. {others[0].name}); purge them from their checkouts first"
        )
    if root.exists():
        shutil.rmtree(root)
        removed.append(str(root))
    try:
        uid = pwd.getpwnam(embedded_runtime.SERVICE_USER).pw_uid
    except KeyError:
        return removed
    running = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _owned_by(p, uid)]
    if running:
        raise ServiceError(
            f"user {embedded_runtime.SERVICE_USER} still runs process(es) {', '.join(running[:5])}; stop them first"
        )
    subprocess.run(["userdel", embedded_runtime.SERVICE_USER], check=True, capture_output=True)
    removed.append(f"system user {embedded_runtime.SERVICE_USER}")
    return removed


def _owned_by(proc: Path, uid: int) -> bool:
    try:
        return proc.stat().st_uid == uid
    except OSError:  # it exited meanwhile
        return False


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
    if embedded_db or embedded_broker:
        home = runtime_home(state_dir) if runtime_home(state_dir).exists() else state_dir
        print(f"embedded servers' data and logs: {home} (remove all: python -m worker services purge)", file=sys.stderr)
    print(f"DATABASE_URL={database_url or embedded_db}")
    print(f"REDIS_URL={redis_url or embedded_broker}")
    return 0


def _status(state_dir: Path) -> int:
    checks: list[tuple[str, str, Callable[[int], str], Callable[[str], bool]]] = [
        ("DATABASE_URL", "postgres.port", _pg_url, postgres_answers),
        ("REDIS_URL", "valkey.port", _redis_url, broker_answers),
    ]
    lines = []
    all_answer = True
    for name, port_file, url_for, answers in checks:
        url, origin = configured_url(name), "configured"
        if url is None:
            port = _read_int(state_dir / port_file)
            url, origin = (url_for(port) if port is not None else None), "embedded"
        ok = url is not None and answers(url)
        all_answer = all_answer and ok
        lines.append(f"{name}={_masked(url) if url else ''}  ({origin}, {'answering' if ok else 'not answering'})")
    status = 0 if all_answer else 1
    with keeping_status(status):
        print("\n".join(lines))
    return status


def main(argv: list[str] | None = None) -> int:
    """`up [--watch-parent PID]`, `down`, `status`; errors are one line on stderr and exit 1."""
    return run_command(lambda: _parse_and_run(argv))


def _parse_and_run(argv: list[str] | None) -> int:
    common = CommandParser(add_help=False)
    common.add_argument(
        "--state-dir", type=Path, default=STATE_DIR, help="where the servers keep data, ports, pid files and logs"
    )
    parser = CommandParser(prog="python -m worker services", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up", parents=[common], description=DESCRIPTION, help="start what DATABASE_URL / REDIS_URL do not configure"
    )
    up.add_argument("--watch-parent", type=int, metavar="PID", help="stop the servers when this process dies")
    down_help = "stop the embedded servers (their data stays)"
    commands.add_parser("down", parents=[common], help=down_help, description=down_help[0].upper() + down_help[1:])
    purge_help = "stop the servers and delete their data, logs and the state folder"
    purge_parser = commands.add_parser(
        "purge", parents=[common], help=purge_help, description=purge_help[0].upper() + purge_help[1:]
    )
    purge_parser.add_argument(
        "--all",
        action="store_true",
        dest="everything",
        help=f"as root, also {embedded_runtime.RUNTIME_ROOT} (program copies shared by "
        f"every checkout) and the system user {embedded_runtime.SERVICE_USER}",
    )
    commands.add_parser(
        "status",
        parents=[common],
        help="show the URLs and whether they answer",
        description="Show the database and broker URLs in use and whether each answers; exit 1 if one does not.",
    )
    watchdog = commands.add_parser("watchdog", parents=[common], help="internal: started by up --watch-parent")
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
        if args.command == "purge":
            for path in purge(state_dir, args.everything):
                print(f"removed {path}")
            return 0
        _watch(state_dir, args.parent)
        return 0
    except (CommandError, BrokenPipeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # servers and processes fail in many ways: still one line, never a traceback
        raise ServiceError(f"services: unexpected {type(exc).__name__}: {exc}") from exc


if __name__ == "__main__":
    raise SystemExit(main())
