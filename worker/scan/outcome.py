"""What a scan reports: each decision as the ops CLI lists it, and the counts per rule and scan."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from datetime import time as clock_time
from typing import Any

SKIP_REASONS = ("already_nudged", "cooldown", "quiet_hours", "opted_out", "rate_limited")
HELD_REASONS = ("cooldown", "quiet_hours", "rate_limited")
# Decisions that write an event, and the event each writes.
WRITTEN = {"nudge": "nudge_sent", "withhold": "nudge_withheld", "shadow": "nudge_shadow"}


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

    def add_batch(self, decided: dict[str, int], written: dict[str, int], *, dry_run: bool) -> int:
        """Count one batch from its decisions by kind (after the nudge budget) and the events it
        wrote by type; returns the writes the batch took from the budget. A dry run counts every
        decision to write as written; a real one counts what the database took, and a write
        another writer had already made (an overlapping scan) as `already_nudged`."""
        examined = sum(decided.values())
        wanted = {event: decided.get(kind, 0) for kind, event in WRITTEN.items()}
        done = wanted if dry_run else {event: written.get(event, 0) for event in wanted}
        self.examined += examined
        self.due += examined - decided.get("not_due", 0)
        for reason in SKIP_REASONS:
            self.skipped[reason] += decided.get(reason, 0)
        self.nudged += done["nudge_sent"]
        self.withheld += done["nudge_withheld"]
        self.shadow += done["nudge_shadow"]
        self.skipped["already_nudged"] += sum(wanted.values()) - sum(done.values())
        return sum(done.values())


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
