"""Celery tasks: thin wrappers that parse arguments, call a plain function and return JSON.

Task names are registered explicitly so `celery -A worker call NAME` and the beat schedule
use short, stable names.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import psycopg
import sqlalchemy.exc

from events_schema.settings import get_settings
from worker.app import app
from worker.clock import parse_instant
from worker.metrics import registry as metrics

logger = logging.getLogger(__name__)

_settings = get_settings()
# A lost or refused database connection (a restart, a failover, pg_terminate_backend) is
# retried with exponential backoff; every task is idempotent, so a retry re-does only what the
# failed attempt did not commit.
RETRY_ON_DATABASE_ERRORS: dict[str, Any] = {
    "autoretry_for": (psycopg.OperationalError, sqlalchemy.exc.OperationalError),
    "retry_backoff": _settings.task_retry_backoff_seconds,
    "retry_backoff_max": _settings.task_retry_backoff_max_seconds,
    "retry_jitter": True,
    "max_retries": _settings.task_max_retries,
}


@app.task(name="scan_inactive", **RETRY_ON_DATABASE_ERRORS)
def scan_inactive(
    as_of: str | None = None,
    rules: list[str] | None = None,
    dry_run: bool = False,
    full: bool | None = None,
    shards: int | None = None,
) -> dict[str, Any]:
    """Nudge users inactive past a rule's threshold at `as_of`; returns the scan's summary.
    `full` defaults to true for a dry run, false otherwise. With `shards` (default SCAN_SHARDS)
    above 1 the scan is a chord of `scan_inactive_shard` tasks, all deciding at the same as_of:
    this returns at once, with the id of the chord's merged summary."""
    count = shards or get_settings().scan_shards
    if count > 1:
        return _fan_out(parse_instant(as_of).isoformat(), rules, dry_run, full, count)
    from worker.scan.scanner import run_scan

    started = time.monotonic()
    # The task id owns the scan's leases: a re-delivery after a lost worker takes them back at once.
    summary = run_scan(
        parse_instant(as_of),
        rule_names=rules,
        dry_run=dry_run,
        full=full,
        owner=f"task {scan_inactive.request.id}" if scan_inactive.request.id else None,
    )
    logger.info("scan_inactive %s", summary.log_line())
    result = summary.as_dict()
    metrics.record_scan(result, time.monotonic() - started)
    return result


def _fan_out(as_of: str, rules: list[str] | None, dry_run: bool, full: bool | None, count: int) -> dict[str, Any]:
    """Reserve every shard's lease for its task (so no later beat starts while a shard runs or
    waits in the queue), then send the chord."""
    from celery import chord

    from worker.scan.leases import reserve

    scan_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(count)]
    if not dry_run and (note := reserve(rules, [f"task {t}" for t in task_ids], scan_id)):
        logger.warning("scan_inactive %s", note)
        return {"scan_id": scan_id, "as_of": as_of, "shards": count, "ran": False, "note": note}
    header = [
        scan_inactive_shard.s(as_of, rules, dry_run, full, index, count).set(task_id=task_id)
        for index, task_id in enumerate(task_ids)
    ]
    merged = chord(header)(scan_inactive_merge.s())
    logger.info("scan_inactive %s as_of=%s: %d shards sent, summary %s", scan_id, as_of, count, merged.id)
    return {
        "scan_id": scan_id,
        "as_of": as_of,
        "shards": count,
        "ran": True,
        "note": "",
        "summary_id": merged.id,
        "shard_task_ids": task_ids,
    }


@app.task(name="scan_inactive_shard", **RETRY_ON_DATABASE_ERRORS)
def scan_inactive_shard(
    as_of: str, rules: list[str] | None, dry_run: bool, full: bool | None, index: int, count: int
) -> dict[str, Any]:
    """One shard of a sharded scan: idempotent (the lease is this task id's; one nudge per
    episode), re-delivered when its worker dies and retried on its own when the database drops."""
    from worker.scan.scanner import run_scan
    from worker.scan.shards import Shard

    started = time.monotonic()
    summary = run_scan(
        parse_instant(as_of),
        rule_names=rules,
        dry_run=dry_run,
        full=full,
        owner=f"task {scan_inactive_shard.request.id}",
        shard=Shard(index, count),
    )
    logger.info("scan_inactive_shard %d/%d %s", index, count, summary.log_line())
    result = summary.as_dict()
    metrics.record_scan(result, time.monotonic() - started)
    return result


@app.task(name="scan_inactive_merge")
def scan_inactive_merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The chord's callback: the shards' summaries as one."""
    from worker.scan.shards import merge

    merged = merge(summaries)
    logger.info(
        "scan_inactive %d shards at %s: ran=%s nudged=%d",
        merged["shards"],
        merged["as_of"],
        merged["ran"],
        merged["nudged"],
    )
    return merged


@app.task(name="import_events", **RETRY_ON_DATABASE_ERRORS)
def import_events(
    batch: list[Any],
    batch_id: str | None = None,
    positions: list[int] | None = None,
    unparsed: list[dict[str, Any]] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Validate a batch of event objects and insert the valid ones once; safe to deliver twice.

    Without `batch_id` the batch's content hash is its id. `positions` and `unparsed` are for
    senders that split a file (`python -m worker import --enqueue`); `now` (ISO-8601 with offset)
    is for tests. Returns {"inserted", "duplicates", "rejected", "errors": [{"index", "error"}]}.
    """
    from worker.ingest.importer import import_batch

    summary = import_batch(
        batch,
        batch_id=batch_id,
        positions=positions,
        unparsed=unparsed,
        now=parse_instant(now) if now else None,
    )
    logger.info("import_events %s", summary.log_line())
    result = summary.as_dict()
    metrics.record_import(result)
    return result


@app.task(name="apply_retention", **RETRY_ON_DATABASE_ERRORS)
def apply_retention(as_of: str | None = None) -> dict[str, Any]:
    """Soft-delete events older than RETENTION_DAYS at `as_of` (default now); a no-op when unset."""
    from worker.retention import retention

    summary = retention.apply_retention(parse_instant(as_of))
    logger.info("apply_retention %s", summary)
    return summary


@app.task(name="forget_user", **RETRY_ON_DATABASE_ERRORS)
def forget_user(user_id: str) -> dict[str, Any]:
    """Soft-delete all of one user's events and drop their quarantined input; safe to re-run."""
    from uuid import UUID

    from worker.retention import retention

    summary = retention.forget_user(UUID(user_id))
    logger.info("forget_user %s", summary)
    return summary


@app.task(name="deliver_nudges", **RETRY_ON_DATABASE_ERRORS)
def deliver_nudges(max_seconds: float | None = None) -> dict[str, Any]:
    """Send every nudge_sent not yet delivered, in commit order, and record each outcome; returns
    when caught up or after `max_seconds` (default DELIVERY_PASS_SECONDS). On the beat: a pass
    that overlaps another stands aside (the state row's lock), so duplicates are harmless."""
    from worker.delivery.dispatcher import deliver
    from worker.delivery.providers import DeliveryConfigError

    settings = get_settings()
    try:
        summary = deliver(max_seconds=max_seconds or settings.delivery_pass_seconds)
    except DeliveryConfigError as exc:
        # Retrying cannot help; `python -m worker health` reports the same line.
        logger.error("deliver_nudges: %s", exc)
        return {"provider": settings.delivery_provider, "ran": False, "note": str(exc)}
    logger.info("deliver_nudges %s", summary.log_line())
    result = summary.as_dict()
    metrics.record_delivery(result)
    return result
