"""Celery tasks: thin wrappers that parse arguments, call a plain function and return JSON.

Task names are registered explicitly so `celery -A worker call NAME` and the beat schedule
use short, stable names.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from worker.app import app

logger = logging.getLogger(__name__)


def parse_instant(value: str | None) -> datetime:
    """ISO-8601 with an offset, as UTC; None means now from Python's clock."""
    if value is None:
        return datetime.now(timezone.utc)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"as_of {value!r} has no UTC offset; ambiguous")
    return parsed.astimezone(timezone.utc)


@app.task(name="scan_inactive")
def scan_inactive(
    as_of: str | None = None,
    rules: list[str] | None = None,
    dry_run: bool = False,
    full: bool = False,
) -> dict[str, Any]:
    """Nudge users inactive past a rule's threshold at `as_of`; returns the scan's summary."""
    from worker.scan import run_scan

    summary = run_scan(parse_instant(as_of), rule_names=rules, dry_run=dry_run, full=full)
    logger.info("scan_inactive %s", summary.log_line())
    return summary.as_dict()
