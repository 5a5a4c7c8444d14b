"""The Celery application: `celery -A worker worker|beat|call` finds it as `worker.app`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from events_schema.settings import stopped_services_note
from worker.database import dispose_after_fork
from worker.metrics import hooks, logs  # noqa: F401  (connect their Celery signals)

app = Celery("worker")
app.config_from_object("celeryconfig")

# `celery -A worker call|inspect|worker` against servers `services down` stopped fails (it never
# falls back to the defaults); Celery's own error does not say why, so its command line says it
# first. (Our own commands put the reason in their one error line.)
_celery_cli = Path(sys.argv[0]).name == "celery" or Path(sys.argv[0]).parent.name == "celery"
if _celery_cli and (note := stopped_services_note()):
    print(f"warning: {note}", file=sys.stderr)


@worker_process_init.connect
def _fresh_pool_in_child(**_: Any) -> None:
    """A prefork child must not reuse the parent's database connections."""
    dispose_after_fork()
