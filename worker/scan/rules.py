"""Which configured nudge rules a scan runs: shared by the scan and the shard leases it reserves."""

from __future__ import annotations

from collections.abc import Iterable

from events_schema.settings import NudgeRule, Settings


def select_rules(settings: Settings, names: Iterable[str] | None) -> list[NudgeRule]:
    """The configured rules, in configuration order, or the named ones; unknown names are errors."""
    if names is None:
        return list(settings.nudge_rules)
    names = list(names)
    by_name = {r.name: r for r in settings.nudge_rules}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; configured: {sorted(by_name)}")
    return [r for r in settings.nudge_rules if r.name in set(names)]
