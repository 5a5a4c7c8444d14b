"""The Celery application: `celery -A worker worker|beat|call` finds it as `worker.app`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from events_schema.errors import Unreachable
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


class BrokerUnavailable(Unreachable):
    """The broker did not answer a command that needs it (exit 1, one line)."""


def reach_broker(connection: Connection, timeout: float | None = None) -> None:
    """Connect now, trying once more at most: a broker that is down is BrokerUnavailable at once,
    not a traceback after a publisher's retries."""
    try:
        # kombu takes float seconds; celery-types' stub says int.
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)  # type: ignore[arg-type]
    except Exception as exc:  # whatever the transport raises for a server that does not answer
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        url = maybe_sanitize_url(connection.as_uri(include_password=True))
        raise BrokerUnavailable(f"cannot reach the broker at {url}: {reason}") from exc


@worker_process_init.connect
def _fresh_pool_in_child(**_: Any) -> None:
    """A prefork child must not reuse the parent's database connections."""
    dispose_after_fork()
