"""`python -m worker scan --via-queue [--wait]`: one scan now, through the queue, as ops want it.

`celery -A worker call scan_inactive` cannot be changed from here: with the broker down it
retries its publish and the result backend's connection for about 20 s and then prints a
traceback. This sends the same task with a short connect timeout and no publish retries (a
broker that is down is one line at once), and with `--wait` waits for the workers' outcome
(the merged summary of a sharded scan included) and prints it in one line.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult

from events_schema.errors import CommandError
from worker.app import reach_broker

# Seconds to reach the broker before saying it is down; a publish is never retried.
CONNECT_TIMEOUT_SECONDS = 3.0


def send_scan(
    app: Celery, kwargs: dict[str, Any], connect_timeout: float = CONNECT_TIMEOUT_SECONDS
) -> AsyncResult[Any]:
    """Queue `scan_inactive` with these arguments; BrokerUnavailable at once if the broker is down."""
    with app.connection_for_write() as connection:
        reach_broker(connection, connect_timeout)
        return app.send_task("scan_inactive", kwargs=kwargs, connection=connection, retry=False)


def _get(result: AsyncResult[Any], timeout: float, what: str) -> dict[str, Any]:
    try:
        outcome: dict[str, Any] = result.get(timeout=timeout)
    except ResultTimeout as exc:
        raise CommandError(
            f"no outcome within {timeout:g} s: {what} is still queued or running (task {result.id}); "
            "is a worker consuming the queue? (python -m worker health)"
        ) from exc
    except Exception as exc:  # the worker's own failure, re-created here
        raise CommandError(f"the scan failed in the worker (task {result.id}): {type(exc).__name__}: {exc}") from exc
    finally:
        # Celery keeps a waited-for result registered; let go of it before the interpreter exits.
        result.backend.remove_pending_result(result)  # type: ignore[attr-defined]  # the base backend has it; the stub does not
    result.forget()
    return outcome


def wait_for_outcome(app: Celery, result: AsyncResult[Any], timeout: float) -> dict[str, Any]:
    """The scan's summary; for a sharded scan, the shards' merged summary (within the same timeout)."""
    outcome = _get(result, timeout, "the scan")
    if outcome.get("summary_id") and outcome.get("ran"):
        merged = _get(app.AsyncResult(outcome["summary_id"]), timeout, "the sharded scan's summary")
        return {**merged, "scan_id": outcome["scan_id"], "task_id": result.id}
    return {**outcome, "task_id": result.id}


def outcome_line(outcome: dict[str, Any]) -> str:
    """One line: what the scan did, or why it did not run."""
    scan = f"scan {outcome.get('scan_id', '?')} as_of={outcome.get('as_of')}"
    if not outcome.get("ran"):
        return f"{scan} did not run: {outcome.get('note') or 'no reason given'}"
    skipped = " ".join(f"{k}={v}" for k, v in (outcome.get("skipped") or {}).items())
    dry = " (dry run)" if outcome.get("dry_run") else ""
    shards = f" in {outcome['shards']} shards" if outcome.get("shards") else ""
    return (
        f"{scan}{dry}{shards}: examined={outcome.get('examined')} due={outcome.get('due')} "
        f"nudged={outcome.get('nudged')} withheld={outcome.get('withheld')} shadow={outcome.get('shadow')} "
        f"skipped: {skipped}"
    )
