"""Sharded scans: a rule's users split into N disjoint shards, each scanned as a scan of its own.

A user's shard is the last two bytes of their uuid modulo N: stable forever (no hash function
whose output could change with a PostgreSQL upgrade), cheap (no hashing) and even for the
random (v4) ids GoTrue and gen_random_uuid() give. SQL computes the same with
`public.engagement_shard(user_id, shards)`, which every candidate query (scan_candidates_*.sql) uses.

Each shard has its own lease (worker/scan/leases.py) and scan state, keyed `<rule>#<index>/<count>`: a shard's
incremental window follows its own previous scan, so a shard that failed or was turned away
never makes another shard skip users; changing the count starts every shard with a full scan
(no state under the new keys).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' summaries (ScanSummary.as_dict) as one: counts summed, ran only if all ran."""
    totals = {key: sum(s[key] for s in summaries) for key in ("examined", "due", "nudged", "withheld", "shadow")}
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
