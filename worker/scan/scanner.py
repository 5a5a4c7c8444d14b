"""The inactivity scan: decide, per rule, who is due at an instant and nudge each episode once.

Definitions (docs/engine.md has them in full; tests pin them):
- activity: a non-deleted event of a non-reserved type (narrowed per rule by `event_types`);
- last active at T: the latest activity at or before T, else the sign-up time;
- due at T: last active <= T - threshold; an episode is (user, rule, last active);
- at most one nudge per episode (a unique index), one per user per cool-down window, none in
  the user's quiet hours (held for the next scan) and none for opted-out users;
- a rule's holdout (control arm, by a hash of salt, rule and user) gets `nudge_withheld` where
  the other arm gets `nudge_sent`, decided and written the same way;
- a shadow rule (`"mode": "shadow"`) records `nudge_shadow` where it would nudge, and reads its
  own records for its episodes and cool-down (and has its own cap): it never changes what a live
  rule decides.

An incremental scan examines only users who crossed the threshold since the rule's previous
scan plus those held back; a full scan (the first, a changed rule, `full=True`, time going
backwards) examines everyone who may be due and reconciles what incremental scans cannot see
(back-dated imports older than the threshold, soft deletes).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from events_schema.queries import QueryFolder
from events_schema.settings import NudgeRule, Settings, get_settings
from events_schema.summaries.summaries import fold as fold_summaries
from worker.database import act_as_service_role, connection
from worker.scan.batch import NudgeBudget, batch_params, batch_query, run_batch
from worker.scan.leases import Lease, LeaseLost
from worker.scan.outcome import HELD_REASONS, SKIP_REASONS, WRITTEN, Decision, RuleSummary, ScanSummary
from worker.scan.rules import select_rules
from worker.scan.shards import Shard, state_key

# The scan's types and statements, where callers and tests have always found them.
__all__ = [
    "HELD_REASONS",
    "SKIP_REASONS",
    "WRITTEN",
    "Decision",
    "NudgeBudget",
    "RuleSummary",
    "ScanSummary",
    "batch_params",
    "batch_query",
    "begin_batch",
    "run_scan",
]

query = QueryFolder.beside(__file__)

logger = logging.getLogger(__name__)


def run_scan(
    as_of: datetime,
    *,
    rule_names: Iterable[str] | None = None,
    dry_run: bool = False,
    full: bool | None = None,
    lock: bool = True,
    owner: str | None = None,
    url: str | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    shard: Shard | None = None,
) -> ScanSummary:
    """Scan every selected rule at `as_of` (timezone-aware), each under its rule's lease.

    `full=None` means full for a dry run (it answers "who is due now", which an incremental dry
    run right after a scan cannot) and incremental otherwise. `owner` names who runs the scan
    (the Celery task id: a re-delivered task takes its own lease back at once); by default this
    process and scan. `lock=False` exists so tests can show the database alone keeps nudges
    exactly-once. Every transaction stands alone (no session state), so the scan runs unchanged
    behind a transaction-mode pooler. `shard` scans only that shard's users, under leases and
    scan state of its own (worker/scan/shards.py).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    full = dry_run if full is None else full
    settings = get_settings()
    rules = select_rules(settings, rule_names)
    summary = ScanSummary(scan_id=str(uuid.uuid4()), as_of=as_of, dry_run=dry_run)
    budget = NudgeBudget.for_scan(settings, shard)
    lease = None
    if lock and not dry_run:
        lease = Lease(
            summary.scan_id,
            owner or f"{socket.gethostname()}:{os.getpid()}:{summary.scan_id}",
            timedelta(seconds=settings.scan_lease_seconds),
        )
    with connection(url) as conn:
        conn.rollback()  # the pool's liveness ping may have opened a transaction
        conn.autocommit = True
        # The summaries lag the log by the rows written since the last fold; folding them first
        # keeps the tail every batch merges small. A fold already running elsewhere is skipped.
        with conn.transaction():
            begin_batch(conn)
            fold_summaries(conn)
        try:
            for rule in rules:
                key = state_key(rule.name, shard)
                if lease is not None and (note := lease.take(conn, key)):
                    summary.ran, summary.note = False, note
                    logger.warning("scan %s: %s", summary.scan_id, note)
                    break
                try:
                    summary.rules.append(
                        _scan_rule(
                            conn,
                            settings,
                            rule,
                            summary,
                            lease,
                            # A shadow rule's cap is its own, as if it were the only rule: it
                            # never takes a live rule's share.
                            budget if rule.mode == "live" else NudgeBudget.for_scan(settings, shard),
                            full=full,
                            on_decision=on_decision,
                            shard=shard,
                        )
                    )
                except LeaseLost as exc:
                    summary.ran, summary.note = False, str(exc)
                    logger.warning("scan %s: %s", summary.scan_id, exc)
                    break
                finally:
                    if lease is not None:
                        lease.release(conn, key)
        finally:
            conn.autocommit = False
    return summary


def _scan_rule(
    conn: psycopg.Connection,
    settings: Settings,
    rule: NudgeRule,
    summary: ScanSummary,
    lease: Lease | None,
    budget: NudgeBudget,
    *,
    full: bool,
    on_decision: Callable[[Decision], None] | None,
    shard: Shard | None = None,
) -> RuleSummary:
    """One rule, in batch transactions. Candidates are recomputed per batch after the last row
    seen (keyset: user id, and last active for a full scan of a rule counting every type), so
    nothing is kept between transactions."""
    as_of = summary.as_of
    threshold = timedelta(hours=rule.threshold_hours)
    params = batch_params(settings, rule, as_of, summary.scan_id, full=full, shard=shard)
    with conn.transaction():
        begin_batch(conn)
        state = conn.execute(query("scan_state_read"), params).fetchone()
    mode = _mode(state, rule, as_of, full)
    if mode == "incremental" and state is not None:  # (_mode says full where there is no state)
        params["window_start"] = state[2] - threshold
    # A full scan of a rule counting every type reads the due range of the per-user summary;
    # one narrowing the types walks every user against the per-type summary.
    candidates = "scan_candidates_full_typed" if mode == "full" and rule.event_types else f"scan_candidates_{mode}"
    params["dry_run"] = summary.dry_run
    result = RuleSummary(rule=rule.name, threshold_hours=rule.threshold_hours, mode=mode)
    more = True
    while more:
        with conn.transaction():
            begin_batch(conn)
            if lease is not None:
                lease.renew(conn, params["state_key"])
            params["budget"], params["budget_open"] = budget.remaining, budget.remaining != 0
            more, written, decisions = run_batch(
                conn, candidates, rule.mode, params, result, listing=on_decision is not None
            )
            budget.take(written)
        if on_decision:
            for d in decisions:
                if d.decision != "not_due":
                    on_decision(d)
    if not summary.dry_run:
        with conn.transaction():
            begin_batch(conn)
            if lease is not None:
                lease.renew(conn, params["state_key"])
            conn.execute(query("scan_state_write"), {**params, "full": mode == "full"})
    return result


def begin_batch(conn: psycopg.Connection) -> None:
    """Start of each scan transaction: the service role, and no JIT, whose compile time
    (~100 ms) dwarfs these short index-driven queries."""
    act_as_service_role(conn)
    conn.execute("set local jit = off")


def _mode(state: tuple[Any, ...] | None, rule: NudgeRule, as_of: datetime, full: bool) -> str:
    """Incremental only when the previous scan of this same rule is strictly earlier and a full
    scan is not overdue: one a scan interval later than the beat's reconcile should have run
    (a beat restarted without its schedule file would otherwise never reconcile)."""
    if full or state is None:
        return "full"
    threshold_hours, event_types, scanned_through, full_scan_at, mode = state
    same_rule = threshold_hours == rule.threshold_hours and event_types == rule.event_types and mode == rule.mode
    settings = get_settings()
    overdue = as_of - full_scan_at >= timedelta(
        hours=settings.reconcile_interval_hours, seconds=settings.scan_interval_seconds
    )
    return "incremental" if same_rule and scanned_through < as_of and not overdue else "full"
