"""Running the command lines as an operator does: a real process, and a real pipe whose reader leaves."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.worker_process import PROJECT_ROOT


def cli(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS...` with this environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def piped_to_a_reader_that_leaves(
    module: str, *args: str, env: dict[str, str] | None = None, read: int = 1, timeout: float = 120
) -> tuple[int, str, bytes]:
    """`python -m MODULE ARGS... | head -c READ`: the reader reads once (READ bytes; 0: not at all)
    and closes the pipe. Returns the exit status, stderr and what the reader got."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, "PYTHONUNBUFFERED": "", **(env or {})},
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    got = process.stdout.read(read) if read else b""
    process.stdout.close()
    try:
        status = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return status, process.stderr.read().decode(), got
