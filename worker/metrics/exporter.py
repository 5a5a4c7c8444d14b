"""Serve the numbers of every process that shares the metrics folder, and keep the folder tidy.

prometheus_client's multiprocess mode: each process writes its own files, named by pid, and a
scrape adds them up (counters summed, the latest gauge value kept). Files of processes that are
gone stay, so counts survive a pool child being replaced; a starting worker removes those of
processes no longer running, so the folder does not grow across restarts (Prometheus handles
the resulting counter reset as it does any restart).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from events_schema.errors import UsageError

logger = logging.getLogger(__name__)
_PID_FILE = re.compile(r"_(\d+)\.db$")


class MetricsUnavailable(UsageError):
    """Metrics cannot be served as configured (exit 2)."""


def folder() -> Path:
    """The multiprocess folder, which must exist (a scrape of nothing would look like zeros)."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not value:
        raise MetricsUnavailable("PROMETHEUS_MULTIPROC_DIR is not set: the workers keep no metrics to serve")
    path = Path(value)
    if not path.is_dir():
        raise MetricsUnavailable(f"PROMETHEUS_MULTIPROC_DIR {value} is not a folder")
    return path


def collecting_registry() -> CollectorRegistry:
    """A registry that reads the folder afresh at each scrape."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder()))
    return registry


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_files() -> int:
    """Delete the files of processes that no longer run; returns how many."""
    removed = 0
    for path in folder().glob("*.db"):
        match = _PID_FILE.search(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def serve(port: int, host: str = "0.0.0.0") -> tuple[WSGIServer, Thread]:
    """/metrics on a daemon thread: the worker's main process (which runs no tasks) or the CLI."""
    return start_http_server(port, addr=host, registry=collecting_registry())
