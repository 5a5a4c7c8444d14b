"""`seed --nudge-effect E`: the engine's decisions replayed over the seeded history, with users who
react to being nudged, so the holdout lift (analytics_holdout_lift.sql) has a known answer.

This is a model of the engine (docs/engine.md, "Definitions"), not the engine: events_schema never
imports worker/. Per user, in time order, at the scan grid (every SCAN_INTERVAL_SECONDS): a rule's
episode is decided at the first scan at or after it is due, outside the user's quiet hours and the
cool-down after their previous decision (any rule); opted-out users never. A user in the rule's
holdout (public.engagement_holdout_bucket, recomputed here by its documented formula) gets
`nudge_withheld`, the others `nudge_sent`. With probability E a nudged user opens the app within
12 h of the nudge because of it, an app_open the user would not otherwise have logged; the rest of
their history is the seed's as before. So the share back within 24 h is raised by
E * (1 - the withheld share): the lift the report should find (`expected_lift`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events_schema.settings import NudgeRule, Settings

# (id, epoch seconds, event_type, value as JSON text, is_deleted), as seed.Event
Event = tuple[str, int, str, str, bool]
REACTION_SECONDS = 12 * 3600


def holdout_bucket(salt: str, rule: str, user_id: str) -> int:
    """public.engagement_holdout_bucket in Python: the formula docs/engine.md gives analysts."""
    return int(hashlib.sha256(f"{salt}/{rule}/{user_id}".encode()).hexdigest()[:15], 16) % 10000


def episode_time(epoch: int) -> str:
    """public.nudge_episode_time: the episode key's spelling of last-active."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class NudgeTally:
    sent: int = 0
    withheld: int = 0
    reactions: int = 0  # app_opens a nudge caused
    by_rule: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineModel:
    rules: list[NudgeRule]
    interval: int
    cooldown: int
    quiet: tuple[int, int] | None  # quiet start and end, seconds after local midnight
    effect: float

    @classmethod
    def from_settings(cls, settings: Settings, effect: float) -> EngineModel:
        quiet = None
        if settings.quiet_hours_enabled:
            start, end = settings.quiet_hours_start, settings.quiet_hours_end
            quiet = (start.hour * 3600 + start.minute * 60, end.hour * 3600 + end.minute * 60)
        return cls(
            # Live rules only: a shadow rule sends nothing (its records are the engine's to write,
            # docs/engine.md "Shadow mode"), and its decisions never change a live rule's.
            [rule for rule in settings.nudge_rules if rule.mode == "live"],
            max(1, int(settings.scan_interval_seconds)),
            int(settings.nudge_cooldown_hours * 3600),
            quiet,
            effect,
        )

    def _quiet_until(self, t: int, zone: ZoneInfo) -> int | None:
        """The end of the quiet hours `t` falls in (epoch seconds), or None outside them."""
        if self.quiet is None:
            return None
        local = datetime.fromtimestamp(t, zone)
        start, end = self.quiet
        now = local.hour * 3600 + local.minute * 60 + local.second
        inside = (now >= start or now < end) if start > end else start <= now < end
        if not inside:
            return None
        day = local.date() + timedelta(days=1 if now >= end else 0)
        ends = datetime(day.year, day.month, day.day, end // 3600, end // 60 % 60, tzinfo=zone)
        return int(ends.timestamp())

    def decide(
        self,
        user_id: str,
        created: int,
        meta: dict[str, str],
        organic: list[Event],
        start: int,
        now: int,
        app_open_value: str,
        rng: random.Random,
        tally: NudgeTally,
    ) -> list[Event]:
        """The decision events (and reactions) for one user over [start, now)."""
        if meta.get("nudges_opt_out") == "true":
            return []
        try:
            zone = ZoneInfo(meta.get("timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        live = [e for e in organic if not e[4]]
        acts = {
            r.name: sorted(ts for _, ts, kind, _, _ in live if r.event_types is None or kind in r.event_types)
            for r in self.rules
        }
        out: list[Event] = []
        decided: set[tuple[str, int]] = set()
        last_decision: int | None = None
        t = -(-max(start, created) // self.interval) * self.interval
        while t < now:
            wake = now
            for rule in self.rules:
                times = acts[rule.name]
                i = bisect.bisect_right(times, t)
                last = times[i - 1] if i else created
                if i < len(times):
                    wake = min(wake, times[i])
                due = last + int(rule.threshold_hours * 3600)
                if due > t:
                    wake = min(wake, due)
                    continue
                if (rule.name, last) in decided:
                    continue
                if last_decision is not None and t < last_decision + self.cooldown:
                    wake = min(wake, last_decision + self.cooldown)
                    continue
                if (quiet_end := self._quiet_until(t, zone)) is not None:
                    wake = min(wake, quiet_end)
                    continue
                held_out = holdout_bucket(rule.holdout_salt, rule.name, user_id) < rule.holdout_buckets
                value: dict[str, object] = {
                    "rule": rule.name,
                    "threshold_hours": rule.threshold_hours,
                    "last_active_at": episode_time(last),
                    "scan_id": "seed",
                }
                if rule.holdout_buckets:
                    value |= {"holdout_percent": rule.holdout_percent, "holdout_salt": rule.holdout_salt}
                out.append((_id(rng), t, "nudge_withheld" if held_out else "nudge_sent", json.dumps(value), False))
                decided.add((rule.name, last))
                last_decision = t
                sent, withheld = tally.by_rule.get(rule.name, (0, 0))
                tally.by_rule[rule.name] = (sent + (not held_out), withheld + held_out)
                tally.withheld += held_out
                tally.sent += not held_out
                if not held_out and rng.random() < self.effect:
                    reaction = t + 60 + int(rng.random() * REACTION_SECONDS)
                    if reaction < now:
                        out.append((_id(rng), reaction, "app_open", app_open_value, False))
                        tally.reactions += 1
                        for r in self.rules:
                            if r.event_types is None or "app_open" in r.event_types:
                                bisect.insort(acts[r.name], reaction)
                        wake = min(wake, reaction)
            t = max(t + self.interval, -(-wake // self.interval) * self.interval)
        return out


def _id(rng: random.Random) -> str:
    bits = rng.getrandbits
    return f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-{0x8000 | bits(14):04x}-{bits(48):012x}"
