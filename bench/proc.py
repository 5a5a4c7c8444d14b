"""A child process measured on its own: its output and its own peak memory (os.wait4's rusage
is that child's, where RUSAGE_CHILDREN is the largest of every child this process waited for)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float


def run_measured(command: Sequence[str], env: Mapping[str, str]) -> Finished:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(list(command), env=dict(env), stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        out.seek(0)
        err.seek(0)
        # Linux reports ru_maxrss in KiB.
        return Finished(child.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss / 1024)
