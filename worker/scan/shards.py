"""Sharded scans: a rule's users split into N disjoint shards, each scanned as a scan of its own.

A user's shard is the last two bytes of their uuid modulo N: stable forever (no hash function
whose output could change with a PostgreSQL upgrade), cheap (no hashing) and even for the
random (v4) ids GoTrue and gen_random_uuid() give. SQL computes the same (scan_candidates_*.sql).

Each shard has its own lease and scan state, keyed `<rule>#<index>/<count>`: a shard's
incremental window follows its own previous scan, so a shard that failed or was turned away
never makes another shard skip users; changing the count starts every shard with a full scan
(no state under the new keys).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")


def state_key(rule: str, shard: Shard | None) -> str:
    """The lease's and scan state's row for a rule, or for one shard of it."""
    return rule if shard is None or shard.count == 1 else f"{rule}#{shard.index}/{shard.count}"


def shard_of(user_id: uuid.UUID, count: int) -> int:
    """The shard a user belongs to; the same as the SQL's expression."""
    return int.from_bytes(user_id.bytes[14:16], "big") % count


def reserve(rule_names: list[str] | None, owners: list[str], scan_id: str) -> str | None:
    """Before the shard tasks are sent: take every (rule, shard) lease for the task that will run
    that shard (`owners[i]`, its task id), without waiting. Returns None, or why the scan must not
    start: a shard of the previous scan still holds its lease (running, or queued and not yet
    expired), and then nothing is kept. A shard task takes its own lease back at once."""
    from events_schema.settings import get_settings
    from worker.database import connection
    from worker.scan.scanner import Lease, select_rules

    settings = get_settings()
    ttl = timedelta(seconds=settings.scan_lease_seconds)
    count = len(owners)
    taken: list[tuple[Lease, str]] = []
    with connection() as conn:
        conn.rollback()
        conn.autocommit = True
        try:
            for rule in select_rules(settings, rule_names):
                for index, owner in enumerate(owners):
                    lease, key = Lease(scan_id, owner, ttl), state_key(rule.name, Shard(index, count))
                    if not lease.try_take(conn, key):
                        for held, held_key in taken:
                            held.release(conn, held_key)
                        return f"a shard of the previous scan still holds the lease on {key}; not started"
                    taken.append((lease, key))
        finally:
            conn.autocommit = False
    return None


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' summaries (ScanSummary.as_dict) as one: counts summed, ran only if all ran."""
    totals = {key: sum(s[key] for s in summaries) for key in ("examined", "due", "nudged")}
    skipped = {reason: sum(s["skipped"][reason] for s in summaries) for reason in summaries[0]["skipped"]}
    return {
        "as_of": summaries[0]["as_of"],
        "dry_run": summaries[0]["dry_run"],
        "shards": len(summaries),
        "ran": all(s["ran"] for s in summaries),
        "note": "; ".join(s["note"] for s in summaries if s["note"]),
        **totals,
        "skipped": skipped,
        "scan_ids": [s["scan_id"] for s in summaries],
    }
