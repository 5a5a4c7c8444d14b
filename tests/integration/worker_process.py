"""Real Celery worker processes for tests: one worker on a queue of its own, ready before use,
stopped by its pid afterwards, and the `celery` command line run the way an operator runs it.

Every test passes its own queue (e.g. f"test-{uuid4().hex}") in CELERY_QUEUE, so workers of
other tests, other runs or a running engine never take its tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def celery_env(queue: str, **settings: str) -> dict[str, str]:
    """This process's environment with the queue and settings (e.g. DATABASE_URL=...) applied."""
    env = dict(os.environ)
    env.update({key.upper(): value for key, value in settings.items()})
    env["CELERY_QUEUE"] = queue
    return env


def celery_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m celery -A worker <args>`, e.g. ["call", "import_events", "--kwargs", "{...}"]."""
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def task_result(redis_url: str, task_id: str, timeout: float = 60) -> Any:
    """A task's return value from the result backend (a client of its own, not the app's)."""
    from celery import Celery

    client = Celery(broker=redis_url, backend=redis_url)
    result = client.AsyncResult(task_id)
    try:
        return result.get(timeout=timeout)
    finally:
        result.forget()


@contextmanager
def running_worker(
    env: Mapping[str, str],
    queue: str,
    ready_timeout: float = 60,
    pool: str = "solo",
    name: str = "",
    log_to: list[str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker (solo pool unless told) consuming only `queue`, yielded once it has logged "ready".
    `log_to`, when given, receives its log when the block ends.

    Its log is attached to the error when it does not start, and it is terminated (then killed,
    if it ignores that) by pid when the block ends.
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                f"--pool={pool}",
                "--concurrency=1",
                "-Q",
                queue,
                "-n",
                f"{name}{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            env={**env, "CELERY_QUEUE": queue},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_ready(process, log, ready_timeout)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
            if log_to is not None:
                log_to.append(_read(log))


def _read(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def _wait_until_ready(process: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in _read(log):
            return
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}:\n{_read(log)}")
        time.sleep(0.1)
    raise RuntimeError(f"the worker was not ready within {timeout} s:\n{_read(log)}")


def pool_children(worker: subprocess.Popen[bytes]) -> list[int]:
    """The pids of a prefork worker's pool children (Linux /proc)."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    return [int(pid) for pid in children]
