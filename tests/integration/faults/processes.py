"""Worker and beat processes a fault test can kill and restart, each in a session of its own,
so SIGKILL reaches the worker and its pool children and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence

from tests.integration.worker_process import PROJECT_ROOT


class Process:
    """A `celery -A worker <args>` process whose output goes to a temp file."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", *args],
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        wait_until(
            lambda: text in self.output(),
            timeout,
            lambda: f"{text!r} not in the output:\n{self.output()}",
            process=self.popen,
        )

    def kill(self) -> None:
        """SIGKILL to the whole session: the worker and its pool children, no shutdown."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=20)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def start_worker(
    env: Mapping[str, str],
    queue: str,
    name: str = "w",
    *,
    pool: str = "prefork",
    concurrency: int = 1,
    ready: bool = True,
    extra: Sequence[str] = (),
    quiet: bool = False,
) -> Process:
    """A worker on `queue`; `quiet` drops Celery's banner (printed, not logged), as LOG_FORMAT=json wants."""
    worker = Process(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            queue,
            "-n",
            f"{name}-{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            *extra,
        ],
        {**env, "CELERY_QUEUE": queue},
    )
    if ready:
        worker.wait_for(" ready.")
    return worker


def start_beat(env: Mapping[str, str], folder: str) -> Process:
    return Process(["beat", "-l", "info", f"--schedule={folder}/beat-schedule", f"--pidfile={folder}/beat.pid"], env)


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    message: Callable[[], str] | str = "timed out",
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `condition` until true; fail with `message` after `timeout` s or if `process` exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"process exited ({process.returncode}): {message() if callable(message) else message}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)
