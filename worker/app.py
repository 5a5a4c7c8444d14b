"""The Celery application: `celery -A worker worker|beat|call` finds it as `worker.app`."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from worker.database import dispose_after_fork
from worker.metrics import hooks, logs  # noqa: F401  (connect their Celery signals)

app = Celery("worker")
app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_pool_in_child(**_: Any) -> None:
    """A prefork child must not reuse the parent's database connections."""
    dispose_after_fork()
