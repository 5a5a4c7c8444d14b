"""One batch of a scan: its parameters, its statement (decide, write, hold and release in the
database, sql/scan_batch.sql) and what it returns, counted into the rule's summary.

No decision passes through Python unless a caller asks to see them (`listing`): the statement
returns one row of counts, so a batch costs the database's work alone.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from events_schema.queries import QueryFolder
from events_schema.settings import NudgeRule, Settings
from worker.scan.outcome import Decision, RuleSummary
from worker.scan.shards import Shard, state_key

query = QueryFolder.beside(__file__)

# Candidate queries whose last batch is the first shorter than the batch size (their rows are
# limited to it); the typed walk returns only its candidates of each span, so it stops on none.
_LIMITED = ("scan_candidates_full", "scan_candidates_incremental")


@dataclass
class NudgeBudget:
    """What is left of a scan's nudges (NUDGE_MAX_PER_SCAN), shared by its rules in order;
    None: no limit. A morning's quiet-hours releases spread over the next beats instead of one
    burst at the push provider; each deferred user is held for the very next scan. The batch
    statement applies it (sql/scan_batch.sql); this keeps the count between batches."""

    remaining: int | None

    @classmethod
    def for_scan(cls, settings: Settings, shard: Shard | None) -> NudgeBudget:
        cap = settings.nudge_max_per_scan
        if not cap:
            return cls(None)
        return cls(math.ceil(cap / shard.count) if shard else cap)

    def take(self, written: int) -> None:
        """A batch wrote this many decisions (sent or withheld); those another writer had
        already written (already_nudged) cost nothing."""
        if self.remaining is not None:
            self.remaining -= written


def batch_params(
    settings: Settings, rule: NudgeRule, as_of: datetime, scan_id: str, *, full: bool, shard: Shard | None = None
) -> dict[str, Any]:
    """The parameters of a rule's batch statement (batch_query) at the first batch; each batch
    then moves `after`/`after_at` on and sets what is left of the budget, and an incremental
    scan adds `window_start`. Public for the plan tests and bench/, which EXPLAIN the statement
    as the scan sends it."""
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
        # What is left of the scan's nudge budget (None: no limit), and whether any is.
        "budget": None,
        "budget_open": True,
        # A dry run's batches run batch_query(..., dry_run=True); the count follows this.
        "dry_run": False,
    }


# Which events are a rule's decisions (its episodes and its cool-down) in scan_decide.sql.
DECIDED = {
    "live": sql.SQL("n.event_type in ('nudge_sent', 'nudge_withheld')"),
    "shadow": sql.SQL("n.event_type = 'nudge_shadow' and n.value ->> 'rule' = %(rule)s"),
}


@functools.cache
def batch_query(candidates: str, mode: str = "live", listing: bool = False, dry_run: bool = False) -> sql.Composed:
    """The batch statement around one of the candidate queries (a file name of sql/ without
    .sql): scan_decide.sql decides, scan_batch.sql budgets, writes (unless `dry_run`) and
    counts; with `listing`, every decision comes back. A rule's mode picks which events are its
    decisions (DECIDED) and which it writes, in the text rather than as a parameter, so each
    mode's lookups keep their partial index in a generic plan. Public for bench/ and the plan
    tests, which EXPLAIN it."""
    decide = sql.SQL(query("scan_decide")).format(
        candidates=sql.SQL(query(candidates).rstrip() + "\n"), decided=DECIDED[mode]
    )
    if dry_run:
        writes = query("scan_batch_sent_dry").rstrip()
    else:
        sent = query("scan_batch_sent_shadow" if mode == "shadow" else "scan_batch_sent").rstrip()
        writes = sent + ",\n" + query("scan_batch_holds").rstrip()
    output = query("scan_batch_listing" if listing else "scan_batch_counts").rstrip()
    return sql.SQL(query("scan_batch")).format(decide=decide, writes=sql.SQL(writes), output=sql.SQL(output))


def run_batch(
    conn: psycopg.Connection,
    candidates: str,
    mode: str,
    params: dict[str, Any],
    result: RuleSummary,
    *,
    listing: bool,
) -> tuple[bool, int, list[Decision]]:
    """Run the next batch of a rule and count it into `result`; moves the keyset on. Returns
    whether more batches may follow, the writes it took from the budget, and the batch's
    decisions when `listing` (else none)."""
    if listing:
        rows = conn.execute(batch_query(candidates, mode, True, params["dry_run"]), params).fetchall()
        if not rows:
            return False, 0, []
        params["after"], _, params["after_at"] = rows[-1][:3]
        decisions = [Decision(result.rule, row[0], *row[3:8]) for row in rows if row[1]]
        walked, decided = len(rows), dict(Counter(d.decision for d in decisions))
        written = rows[0][8]
    else:
        counts = conn.execute(batch_query(candidates, mode, False, params["dry_run"]), params).fetchone()
        assert counts is not None  # an aggregate: always one row
        walked, params["after"], params["after_at"], decided, written = counts
        decisions = []
        if not walked:
            return False, 0, []
    taken = result.add_batch(decided, written, dry_run=params["dry_run"])
    return not (candidates in _LIMITED and walked < params["limit"]), taken, decisions
