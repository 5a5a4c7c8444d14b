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

import functools
import logging
import math
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any

import psycopg
from psycopg import sql

from events_schema.queries import QueryFolder
from events_schema.settings import NudgeRule, Settings, get_settings
from events_schema.summaries.summaries import fold as fold_summaries
from worker.database import act_as_service_role, connection
from worker.scan.leases import Lease, LeaseLost
from worker.scan.rules import select_rules
from worker.scan.shards import Shard, state_key

query = QueryFolder.beside(__file__)

logger = logging.getLogger(__name__)

SKIP_REASONS = ("already_nudged", "cooldown", "quiet_hours", "opted_out", "rate_limited")
HELD_REASONS = ("cooldown", "quiet_hours", "rate_limited")
# Decisions that write an event, and the event each writes.
WRITTEN = {"nudge": "nudge_sent", "withhold": "nudge_withheld", "shadow": "nudge_shadow"}
# Which events are a rule's decisions (its episodes and its cool-down) in scan_decide.sql.
DECIDED = {
    "live": sql.SQL("n.event_type in ('nudge_sent', 'nudge_withheld')"),
    "shadow": sql.SQL("n.event_type = 'nudge_shadow' and n.value ->> 'rule' = %(rule)s"),
}


@dataclass(frozen=True)
class Decision:
    """One candidate's outcome, as the ops CLI shows it."""

    rule: str
    user_id: uuid.UUID
    last_active_at: datetime
    timezone: str
    local_time: clock_time
    decision: str
    hold_until: datetime | None  # held: when the hold (quiet hours, cool-down, rate limit) ends


@dataclass
class RuleSummary:
    rule: str
    threshold_hours: float
    mode: str
    examined: int = 0
    due: int = 0
    nudged: int = 0
    # Due users of the holdout's control arm, recorded as `nudge_withheld` instead of nudged.
    withheld: int = 0
    # A shadow rule's would-be nudges, recorded as `nudge_shadow` (never sent).
    shadow: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))


@dataclass
class ScanSummary:
    scan_id: str
    as_of: datetime
    dry_run: bool
    ran: bool = True
    note: str = ""
    rules: list[RuleSummary] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        skipped = Counter[str]()
        for r in self.rules:
            skipped.update(r.skipped)
        return {
            "examined": sum(r.examined for r in self.rules),
            "due": sum(r.due for r in self.rules),
            "nudged": sum(r.nudged for r in self.rules),
            "withheld": sum(r.withheld for r in self.rules),
            "shadow": sum(r.shadow for r in self.rules),
            "skipped": {reason: skipped[reason] for reason in SKIP_REASONS},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "ran": self.ran,
            "note": self.note,
            **self.totals(),
            "rules": [asdict(r) for r in self.rules],
        }

    def log_line(self) -> str:
        if not self.ran:
            return f"scan {self.scan_id} as_of={self.as_of.isoformat()} did not run: {self.note}"
        t = self.totals()
        skipped = " ".join(f"{k}={v}" for k, v in t["skipped"].items())
        dry = " (dry run)" if self.dry_run else ""
        return (
            f"scan {self.scan_id} as_of={self.as_of.isoformat()}{dry}: examined={t['examined']} "
            f"due={t['due']} nudged={t['nudged']} withheld={t['withheld']} shadow={t['shadow']} skipped: {skipped}"
        )


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


@dataclass
class NudgeBudget:
    """What is left of a scan's nudges (NUDGE_MAX_PER_SCAN), shared by its rules in order;
    None: no limit. A morning's quiet-hours releases spread over the next beats instead of one
    burst at the push provider; each deferred user is held for the very next scan."""

    remaining: int | None

    @classmethod
    def for_scan(cls, settings: Settings, shard: Shard | None) -> NudgeBudget:
        cap = settings.nudge_max_per_scan
        if not cap:
            return cls(None)
        return cls(math.ceil(cap / shard.count) if shard else cap)

    def split(self, decisions: list[Decision], as_of: datetime) -> list[Decision]:
        """The batch's decisions with the nudges past the budget turned into `rate_limited`
        holds that end at `as_of`; takes what it lets through from the budget. A withheld nudge
        costs the budget as a nudge does, so the cap treats both arms alike."""
        if self.remaining is None:
            return decisions
        out = []
        for d in decisions:
            if d.decision in WRITTEN:
                if self.remaining == 0:
                    d = replace(d, decision="rate_limited", hold_until=as_of)
                else:
                    self.remaining -= 1
            out.append(d)
        return out

    def give_back(self, unused: int) -> None:
        """Decisions another writer had already written (already_nudged) cost nothing."""
        if self.remaining is not None:
            self.remaining += unused


def batch_params(
    settings: Settings, rule: NudgeRule, as_of: datetime, scan_id: str, *, full: bool, shard: Shard | None = None
) -> dict[str, Any]:
    """The parameters of a rule's batch statement (batch_query) at the first batch; each batch
    then moves `after`/`after_at` on, and an incremental scan adds `window_start`. Public for
    the plan tests and bench/, which EXPLAIN the statement as the scan sends it."""
    threshold = timedelta(hours=rule.threshold_hours)
    return {
        "rule": rule.name,
        "as_of": as_of,
        "cutoff": as_of - threshold,
        "threshold_hours": rule.threshold_hours,
        "event_types": rule.event_types,
        "cooldown": timedelta(hours=settings.nudge_cooldown_hours),
        "quiet_enabled": settings.quiet_hours_enabled,
        "quiet_start": settings.quiet_hours_start,
        "quiet_end": settings.quiet_hours_end,
        "holdout_buckets": rule.holdout_buckets,
        "holdout_percent": rule.holdout_percent,
        "holdout_salt": rule.holdout_salt,
        "mode": rule.mode,
        "shadow": rule.mode == "shadow",
        "scan_id": scan_id,
        "full": full,
        "limit": settings.scan_batch_size,
        "after": None,
        "after_at": None,
        # The lease's and the scan state's row: the rule's, or its shard's.
        "state_key": state_key(rule.name, shard),
        "shard": shard.index if shard else 0,
        "shards": shard.count if shard else 1,
    }


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
    batch = batch_query(
        "scan_candidates_full_typed" if mode == "full" and rule.event_types else f"scan_candidates_{mode}",
        rule.mode,
    )
    result = RuleSummary(rule=rule.name, threshold_hours=rule.threshold_hours, mode=mode)
    while True:
        with conn.transaction():
            begin_batch(conn)
            if lease is not None:
                lease.renew(conn, params["state_key"])
            params["budget_open"] = budget.remaining != 0
            rows = conn.execute(batch, params).fetchall()
            if not rows:
                break
            params["after"], _, params["after_at"] = rows[-1][:3]
            decisions = budget.split([Decision(rule.name, row[0], *row[3:]) for row in rows if row[1]], as_of)
            result.examined += len(decisions)
            _apply(conn, decisions, params, result, budget, summary.dry_run)
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


@functools.cache
def batch_query(candidates: str, mode: str = "live") -> sql.Composed:
    """scan_decide.sql around one of the candidate queries (a file name of sql/ without .sql):
    a batch is one statement. A rule's mode picks which events are its decisions (DECIDED),
    written into the text rather than passed as a parameter, so each mode's lookups keep
    their partial index in a generic plan. Public for bench/ and the plan tests, which EXPLAIN it."""
    return sql.SQL(query("scan_decide")).format(
        candidates=sql.SQL(query(candidates).rstrip() + "\n"), decided=DECIDED[mode]
    )


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


def _apply(
    conn: psycopg.Connection,
    decisions: list[Decision],
    params: dict[str, Any],
    result: RuleSummary,
    budget: NudgeBudget,
    dry_run: bool,
) -> None:
    """Count one batch's decisions and, unless dry, write nudges (sent or withheld, or a shadow
    rule's records) and the pending set."""
    to_nudge = [d for d in decisions if d.decision in WRITTEN]
    held = [d for d in decisions if d.decision in HELD_REASONS]
    settled = [d for d in decisions if d.decision not in HELD_REASONS]
    result.due += sum(d.decision != "not_due" for d in decisions)
    for d in decisions:
        if d.decision in SKIP_REASONS:
            result.skipped[d.decision] += 1
    if dry_run:
        result.nudged += sum(d.decision == "nudge" for d in to_nudge)
        result.withheld += sum(d.decision == "withhold" for d in to_nudge)
        result.shadow += sum(d.decision == "shadow" for d in to_nudge)
        return
    if to_nudge:
        written = conn.execute(
            query("scan_write_shadow" if params["shadow"] else "scan_write_nudges"),
            {
                **params,
                "user_ids": [d.user_id for d in to_nudge],
                "last_active_ats": [d.last_active_at for d in to_nudge],
                "event_types_written": [WRITTEN[d.decision] for d in to_nudge],
            },
        ).fetchall()
        result.nudged += sum(event_type == "nudge_sent" for (event_type,) in written)
        result.withheld += sum(event_type == "nudge_withheld" for (event_type,) in written)
        result.shadow += sum(event_type == "nudge_shadow" for (event_type,) in written)
        # Another writer got there first: the episode was already nudged.
        result.skipped["already_nudged"] += len(to_nudge) - len(written)
        budget.give_back(len(to_nudge) - len(written))
    if held:
        conn.execute(
            query("scan_hold"),
            {
                **params,
                "user_ids": [d.user_id for d in held],
                "last_active_ats": [d.last_active_at for d in held],
                "reasons": [d.decision for d in held],
                "hold_untils": [d.hold_until for d in held],
            },
        )
    if settled:
        conn.execute(query("scan_release"), {**params, "user_ids": [d.user_id for d in settled]})
