"""What a replay decides by: the rules and the settings that shape a decision (cool-down, quiet
hours, the per-scan cap), for the configured side and the proposed side.

A proposed side is read from `--rules` JSON: a list of rules (NUDGE_RULES' format), or an object
`{"rules": [...], "cooldown_hours": H, "quiet_hours": "22:00-08:00" | null, "max_per_scan": N}`
where each key left out keeps the configured value. Every rule is checked strictly (an unknown
field is an error, not ignored as the settings ignore it): a typo must not replay a rule other
than the one meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import time, timedelta
from typing import Any

from pydantic import ValidationError

from events_schema.errors import UsageError
from events_schema.settings import NudgeRule, Settings

POLICY_KEYS = frozenset({"rules", "cooldown_hours", "quiet_hours", "max_per_scan"})


@dataclass(frozen=True)
class Policy:
    """Everything a decision depends on besides the log."""

    label: str
    rules: tuple[NudgeRule, ...]
    cooldown: timedelta
    quiet_hours: tuple[time, time] | None  # None: quiet hours off
    max_per_scan: int  # 0: no cap

    @classmethod
    def configured(cls, settings: Settings) -> Policy:
        """The live rules as configured. Shadow rules are left out: each decides in a world of its
        own records (docs/engine.md, "Shadow mode") and never changes a live rule's users."""
        return cls(
            label="current",
            rules=tuple(r for r in settings.nudge_rules if r.mode == "live"),
            cooldown=timedelta(hours=settings.nudge_cooldown_hours),
            quiet_hours=(settings.quiet_hours_start, settings.quiet_hours_end)
            if settings.quiet_hours_enabled
            else None,
            max_per_scan=settings.nudge_max_per_scan,
        )

    def describe(self) -> str:
        quiet = f"{self.quiet_hours[0]:%H:%M}-{self.quiet_hours[1]:%H:%M}" if self.quiet_hours else "off"
        cap = str(self.max_per_scan) if self.max_per_scan else "none"
        rules = ", ".join(
            f"{r.name} {r.threshold_hours:g} h"
            + (f" [{', '.join(r.event_types)}]" if r.event_types else "")
            + (f" holdout {r.holdout_percent:g}%" if r.holdout_percent else "")
            for r in self.rules
        )
        return f"{rules}; cool-down {self.cooldown.total_seconds() / 3600:g} h; quiet hours {quiet}; cap {cap}"


def proposed(text: str, current: Policy) -> Policy:
    """The proposed side from `--rules` JSON; any problem is one UsageError line naming the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--rules: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise UsageError("--rules: expected a list of rules or an object with a 'rules' list")
    unknown = sorted(set(data) - POLICY_KEYS)
    if unknown:
        raise UsageError(f"--rules: unknown field {unknown[0]!r} (known: {', '.join(sorted(POLICY_KEYS))})")
    policy = replace(current, label="proposed")
    if "rules" in data:
        policy = replace(policy, rules=_rules(data["rules"]))
    if "cooldown_hours" in data:
        hours = data["cooldown_hours"]
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            raise UsageError(f"--rules: cooldown_hours must be a number of hours, 0 or more, got {hours!r}")
        policy = replace(policy, cooldown=timedelta(hours=hours))
    if "quiet_hours" in data:
        policy = replace(policy, quiet_hours=quiet_hours(data["quiet_hours"]))
    if "max_per_scan" in data:
        cap = data["max_per_scan"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise UsageError(f"--rules: max_per_scan must be a whole number, 0 or more, got {cap!r}")
        policy = replace(policy, max_per_scan=cap)
    return policy


def _rules(items: Any) -> tuple[NudgeRule, ...]:
    if not isinstance(items, list) or not items:
        raise UsageError("--rules: 'rules' must be a non-empty list of rules")
    rules = []
    for i, item in enumerate(items):
        try:
            # A shadow rule ("mode": "shadow") replays as a live one: what would it send?
            rules.append(NudgeRule.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "rule"
            name = item.get("name") if isinstance(item, dict) else None
            label = f"rule {i}" + (f" ({name})" if isinstance(name, str) else "")
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            raise UsageError(f"--rules: {label}: {where}: {message}") from None
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise UsageError(f"--rules: rule names must be unique, got {names}")
    return tuple(rules)


def quiet_hours(value: Any) -> tuple[time, time] | None:
    """`"HH:MM-HH:MM"` (start-end, local time), or null/"off" for none."""
    if value is None or value == "off":
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in str(value).split("-"))
    except ValueError:
        raise UsageError(f"--rules: quiet_hours must be 'HH:MM-HH:MM' or null, got {value!r}") from None
    return start, end
