"""The engine's metrics, and the functions that record them from what the tasks return.

Under Celery's prefork pool each task runs in a child process of its own, so the numbers live
in prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR) that `exporter` adds up.
The folder must be known before prometheus_client is first imported, hence the order below.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from events_schema.settings import get_settings

try:
    _folder = get_settings().prometheus_multiproc_dir
except ValidationError:
    # Invalid settings (a bad rule in NUDGE_RULES) are for the command that reads them to report,
    # in one line; failing here, at import, would print a traceback instead. The folder then
    # comes from the environment alone.
    _folder = None
if _folder is not None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_folder)

from prometheus_client import Counter, Gauge, Histogram

SCAN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

SCANS = Counter("engagement_scans", "Rule scans run, by rule and mode (full/incremental).", ["rule", "mode", "dry_run"])
SCAN_RUNS = Counter(
    "engagement_scan_runs", "scan_inactive runs: ran, or turned away by another scan's lock.", ["outcome"]
)
EXAMINED = Counter("engagement_scan_candidates_examined", "Candidates a scan examined.", ["rule"])
DUE = Counter("engagement_scan_users_due", "Users a scan found due (nudged, skipped or held).", ["rule"])
NUDGES = Counter("engagement_scan_nudges_written", "Nudge events written (dry runs write none).", ["rule"])
WITHHELD = Counter("engagement_scan_nudges_withheld", "Withheld nudges written for a holdout's control arm.", ["rule"])
SHADOW = Counter(
    "engagement_scan_nudges_shadow", "A shadow rule's would-be nudges recorded (nudge_shadow, never sent).", ["rule"]
)
SKIPS = Counter("engagement_scan_skips", "Due users not nudged, by reason.", ["rule", "reason"])
LAST_DUE = Gauge(
    "engagement_scan_last_users_due", "Users due at the rule's latest scan.", ["rule"], multiprocess_mode="mostrecent"
)
LAST_SCAN = Gauge(
    "engagement_scan_last_completed_timestamp_seconds",
    "When the rule's latest (non-dry) scan completed, Unix time.",
    ["rule"],
    multiprocess_mode="mostrecent",
)
SCAN_SECONDS = Histogram("engagement_scan_duration_seconds", "Wall time of a scan_inactive run.", buckets=SCAN_BUCKETS)
IMPORTED = Counter("engagement_import_rows", "Imported rows by outcome (inserted/duplicate/rejected).", ["outcome"])
FEED_LAG = Histogram(
    "engagement_feed_lag_seconds",
    "Delivery time minus event timestamp, per event a feed consumer printed "
    "(the feed's lag for live writers, which stamp events when they occur).",
    buckets=LAG_BUCKETS,
)
DELIVERED = Counter("engagement_nudges_delivered", "Nudges the push provider accepted.", ["provider"])
DELIVERY_FAILED = Counter(
    "engagement_nudges_delivery_failed", "Nudges recorded as not delivered, by reason.", ["provider", "reason"]
)
TOKENS_REMOVED = Counter("engagement_device_tokens_removed", "Device tokens the provider called dead.", ["provider"])
DELIVERY_LAG = Gauge(
    "engagement_delivery_lag_seconds",
    "How long the dispatcher has been behind the feed at its latest pass (0: caught up).",
    multiprocess_mode="mostrecent",
)
TASKS_SUCCEEDED = Counter("engagement_task_successes", "Tasks that returned.", ["task"])
TASK_FAILURES = Counter("engagement_task_failures", "Tasks that raised (after any retries).", ["task", "exception"])
TASK_RETRIES = Counter(
    "engagement_task_retries", "Task retries scheduled, by the error that caused them.", ["task", "exception"]
)


def record_scan(summary: dict[str, Any], seconds: float) -> None:
    """Count one scan from the summary dict the scan_inactive task returns."""
    SCAN_SECONDS.observe(seconds)
    SCAN_RUNS.labels("ran" if summary["ran"] else "turned_away").inc()
    dry = str(summary["dry_run"]).lower()
    for rule in summary["rules"]:
        name = rule["rule"]
        SCANS.labels(name, rule["mode"], dry).inc()
        EXAMINED.labels(name).inc(rule["examined"])
        DUE.labels(name).inc(rule["due"])
        LAST_DUE.labels(name).set(rule["due"])
        for reason, count in rule["skipped"].items():
            SKIPS.labels(name, reason).inc(count)
        if not summary["dry_run"]:
            NUDGES.labels(name).inc(rule["nudged"])
            WITHHELD.labels(name).inc(rule["withheld"])
            SHADOW.labels(name).inc(rule.get("shadow", 0))
            LAST_SCAN.labels(name).set(time.time())


def record_import(summary: dict[str, Any]) -> None:
    """Count one batch from the summary dict the import_events task returns."""
    IMPORTED.labels("inserted").inc(summary["inserted"])
    IMPORTED.labels("duplicate").inc(summary["duplicates"])
    IMPORTED.labels("rejected").inc(summary["rejected"])


def record_delivery(summary: dict[str, Any]) -> None:
    """Count one dispatcher pass from the summary dict the deliver_nudges task returns."""
    provider = summary["provider"]
    if not summary["ran"] and not summary["batches"]:
        return
    DELIVERED.labels(provider).inc(summary["delivered"])
    for reason, count in summary["failed"].items():
        DELIVERY_FAILED.labels(provider, reason).inc(count)
    TOKENS_REMOVED.labels(provider).inc(summary["tokens_removed"])
    if summary["lag_seconds"] is not None:
        DELIVERY_LAG.set(summary["lag_seconds"])


def record_feed_delivery(timestamp: datetime, now: datetime | None = None) -> None:
    """One event handed to a feed consumer (a writer clock ahead of ours counts as no lag)."""
    now = now or datetime.now(UTC)
    FEED_LAG.observe(max(0.0, (now - timestamp).total_seconds()))
