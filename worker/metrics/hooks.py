"""Celery signal handlers: task outcomes as metrics, and the worker's own /metrics endpoint.

Imported by worker.app, so every worker and beat process connects them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import task_failure, task_retry, task_success, worker_init

from events_schema.settings import get_settings
from worker.metrics import registry
from worker.metrics.exporter import remove_dead_files, serve

logger = logging.getLogger(__name__)


def _name(task: Any) -> str:
    return getattr(task, "name", None) or "unknown"


@task_success.connect
def _count_success(sender: Any = None, **_: Any) -> None:
    registry.TASKS_SUCCEEDED.labels(_name(sender)).inc()


@task_failure.connect
def _count_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    registry.TASK_FAILURES.labels(_name(sender), type(exception).__name__).inc()


@task_retry.connect
def _count_retry(sender: Any = None, reason: Any = None, **_: Any) -> None:
    """`reason` is Celery's Retry; the error behind it is its `exc`."""
    cause = getattr(reason, "exc", None) or reason
    registry.TASK_RETRIES.labels(_name(sender), type(cause).__name__).inc()


@worker_init.connect
def _start_exporter(**_: Any) -> None:
    """In the worker's main process, before the pool starts: tidy the folder, serve if asked."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    removed = remove_dead_files()
    if removed:
        logger.info("metrics: removed %d files of processes that are gone", removed)
    port = get_settings().metrics_port
    if port is not None:
        serve(port)
        logger.info("metrics: serving /metrics on port %d", port)
