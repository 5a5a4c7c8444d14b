"""What a replay found, per side (current and proposed), rule and day: the tallies, and how they
read as text, JSON, CSV and a chart. Tallies are built as outcomes stream by (one user at a
time), so memory does not grow with the users."""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from worker.simulate.policy import Policy
from worker.simulate.replay import REASONS, Outcome, Window

DAY_FIELDS = ("sent", "withheld", "users", *REASONS)


class Tally:
    """One side's figures, counted as each user's outcome comes by."""

    def __init__(self, policy: Policy, window: Window, zone: ZoneInfo, local_us: dict[str, list[int]]) -> None:
        self.policy = policy
        self.local_us = local_us
        self.days: dict[tuple[str, date], Counter[str]] = defaultdict(Counter)
        self.hours: dict[str, list[int]] = {}
        self.users_reached = 0
        self.most_sent = 0
        # The report's day of each beat (in --tz), computed once.
        self.day_of_beat = [window.beat(k).astimezone(zone).date() for k in range(window.beats)]

    def add(self, outcome: Outcome) -> bool:
        """Count one user's outcome; whether a nudge was sent to them (not withheld)."""
        reached: set[tuple[str, date]] = set()
        sent = 0
        days, day_of_beat = self.days, self.day_of_beat
        for s in outcome.sent:
            day = day_of_beat[s.beat]
            if s.withheld:
                days[(s.rule, day)]["withheld"] += 1
                continue
            days[(s.rule, day)]["sent"] += 1
            sent += 1
            reached.add((s.rule, day))
            hours = self.hours.get(s.rule)
            if hours is None:
                hours = self.hours[s.rule] = [0] * 24
            hours[self.local_us[s.timezone][s.beat] // 3_600_000_000] += 1
        for key in reached:
            days[key]["users"] += 1
        for rule, beat, reason in outcome.due:
            days[(rule, day_of_beat[beat])][reason] += 1
        if sent:
            self.users_reached += 1
            self.most_sent = max(self.most_sent, sent)
        return sent > 0

    def total(self, name: str, rule: str | None = None) -> int:
        return sum(c[name] for (r, _), c in self.days.items() if rule is None or r == rule)


@dataclass
class Lift:
    """A rule's measured holdout lift (share back within `hours`), from the lift query's whole-range row."""

    rule: str
    hours: int
    lift: float
    low: float
    high: float
    salt: str
    percent: float


@dataclass
class Comparison:
    window: Window
    zone_name: str
    sides: list[Tally]
    only: dict[str, int] = field(default_factory=lambda: {"current": 0, "proposed": 0})
    lifts: dict[str, Lift] = field(default_factory=dict)

    @property
    def weeks(self) -> float:
        return (self.window.end - self.window.start) / timedelta(weeks=1)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.window.start.isoformat(),
            "to": self.window.end.isoformat(),
            "every_seconds": self.window.every.total_seconds(),
            "beats": self.window.beats,
            "days_in": self.zone_name,
            "sides": {},
        }
        for t in self.sides:
            rules = []
            for rule in t.policy.rules:
                days = sorted(d for r, d in t.days if r == rule.name)
                sent = t.total("sent", rule.name)
                rules.append(
                    {
                        "rule": rule.name,
                        "threshold_hours": rule.threshold_hours,
                        "event_types": rule.event_types,
                        "holdout_percent": rule.holdout_percent,
                        "totals": {f: t.total(f, rule.name) for f in DAY_FIELDS},
                        "days": [
                            {"day": d.isoformat(), **{f: t.days[(rule.name, d)][f] for f in DAY_FIELDS}} for d in days
                        ],
                        "local_hour_of_sends": t.hours.get(rule.name, [0] * 24),
                        "expected_returns": self.expected(rule.name, sent),
                    }
                )
            out["sides"][t.policy.label] = {
                "policy": t.policy.describe(),
                "sent": t.total("sent"),
                "withheld": t.total("withheld"),
                "users_reached": t.users_reached,
                "nudges_per_user_per_week": self.per_user_week(t),
                "most_per_user_per_week": t.most_sent / self.weeks if self.weeks else 0.0,
                "rules": rules,
            }
        if len(self.sides) == 2:
            out["users_reached_only_by"] = dict(self.only)
        return out

    def per_user_week(self, t: Tally) -> float:
        return t.total("sent") / t.users_reached / self.weeks if t.users_reached and self.weeks else 0.0

    def expected(self, rule: str, sent: int) -> dict[str, Any] | None:
        """Extra users back, an estimate: the nudges sent times the lift the holdout measured."""
        lift = self.lifts.get(rule)
        if lift is None:
            return None
        return {
            "estimate": True,
            "within_hours": lift.hours,
            "returns": sent * lift.lift,
            "low": sent * lift.low,
            "high": sent * lift.high,
            "lift": lift.lift,
            "lift_low": lift.low,
            "lift_high": lift.high,
            "holdout": f"{lift.rule}'s {lift.percent:g}% holdout" + (f" '{lift.salt}'" if lift.salt else ""),
        }

    # -- text ----------------------------------------------------------------------------------

    def text(self) -> str:
        w = self.window
        minutes = w.every.total_seconds() / 60
        lines = [
            f"Replay of [{w.start.isoformat()}, {w.end.isoformat()}) every {minutes:g} min "
            f"({w.beats} beats), read only; days in {self.zone_name}",
        ]
        for t in self.sides:
            lines.append(f"  {t.policy.label:8} {t.policy.describe()}")
        lines.append("")
        labels = [t.policy.label for t in self.sides]
        rows: list[tuple[str, list[str]]] = [
            ("nudges sent", [f"{t.total('sent'):,}" for t in self.sides]),
            ("withheld (holdout arm)", [f"{t.total('withheld'):,}" for t in self.sides]),
            ("users reached", [f"{t.users_reached:,}" for t in self.sides]),
            ("nudges per user per week", [f"{self.per_user_week(t):.2f}" for t in self.sides]),
            (
                "most to one user per week",
                [f"{t.most_sent / self.weeks:.2f}" if self.weeks else "-" for t in self.sides],
            ),
        ]
        for reason in REASONS:
            rows.append((f"episodes {reason.replace('_', ' ')}", [f"{t.total(reason):,}" for t in self.sides]))
        lines.append(f"{'':28}" + "".join(f"{label:>14}" for label in labels))
        lines += [f"{name:28}" + "".join(f"{v:>14}" for v in values) for name, values in rows]
        if len(self.sides) == 2:
            lines.append(
                f"users reached only by proposed: {self.only['proposed']:,}; only by current: {self.only['current']:,}"
            )
        lines.append(
            "(held and suppressed: due episodes not decided at the first beat they were due, by the first reason)"
        )
        for t in self.sides:
            for rule in t.policy.rules:
                est = self.expected(rule.name, t.total("sent", rule.name))
                if est:
                    lines.append(
                        f"estimate, {t.policy.label} {rule.name}: {est['returns']:+,.0f} users back within "
                        f"{est['within_hours']} h [{est['low']:+,.0f}, {est['high']:+,.0f}] "
                        f"(sent x the lift {100 * est['lift']:+.1f} pp [{100 * est['lift_low']:+.1f}, "
                        f"{100 * est['lift_high']:+.1f}] measured by {est['holdout']})"
                    )
        lines += ["", self._days_table(), "", self._hours_table()]
        return "\n".join(lines)

    def _days_table(self) -> str:
        head = (
            f"{'side':8}  {'rule':16}  {'day':10}  {'sent':>6}  {'withh.':>6}  {'users':>6}  "
            f"{'cooldown':>8}  {'quiet':>6}  {'cap':>5}  {'opt-out':>7}  {'before':>6}"
        )
        out = ["Per rule and day (held: cooldown, quiet, cap; suppressed: opt-out, decided before the window)", head]
        out.append("-" * len(head))
        for t in self.sides:
            for rule in t.policy.rules:
                for (r, d), c in sorted(t.days.items()):
                    if r != rule.name:
                        continue
                    out.append(
                        f"{t.policy.label:8}  {r:16}  {d.isoformat():10}  {c['sent']:>6}  {c['withheld']:>6}  "
                        f"{c['users']:>6}  {c['cooldown']:>8}  {c['quiet_hours']:>6}  {c['rate_limited']:>5}  "
                        f"{c['opted_out']:>7}  {c['already_nudged']:>6}"
                    )
        return "\n".join(out)

    def _hours_table(self) -> str:
        out = [
            "Local hour of sends (user's time zone)",
            f"{'side':8}  {'rule':16}  " + " ".join(f"{h:>4}" for h in range(24)),
        ]
        for t in self.sides:
            for rule in t.policy.rules:
                hours = t.hours.get(rule.name, [0] * 24)
                out.append(f"{t.policy.label:8}  {rule.name:16}  " + " ".join(f"{n:>4}" for n in hours))
        return "\n".join(out)

    # -- files ---------------------------------------------------------------------------------

    def write_csv(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        days, hours = folder / "simulate_days.csv", folder / "simulate_hours.csv"
        with days.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["side", "rule", "day", *DAY_FIELDS])
            for t in self.sides:
                for (rule, day), c in sorted(t.days.items()):
                    out.writerow([t.policy.label, rule, day.isoformat(), *(c[k] for k in DAY_FIELDS)])
        with hours.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["side", "rule", "local_hour", "sent"])
            for t in self.sides:
                for rule, counts in sorted(t.hours.items()):
                    out.writerows([t.policy.label, rule, h, n] for h, n in enumerate(counts))
        return [days, hours]

    def write_png(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8))
        for t in self.sides:
            for rule in t.policy.rules:
                days = sorted(d for r, d in t.days if r == rule.name)
                top.plot(
                    days,
                    [t.days[(rule.name, d)]["sent"] for d in days],
                    marker="o",
                    label=f"{t.policy.label}: {rule.name}",
                )
                hours = t.hours.get(rule.name, [0] * 24)
                bottom.plot(range(24), hours, marker=".", label=f"{t.policy.label}: {rule.name}")
        top.set_title("Nudges sent per day (replay)")
        top.legend(fontsize=8)
        top.tick_params(axis="x", labelrotation=45, labelsize=8)
        bottom.set_title("Local hour of sends")
        bottom.set_xticks(range(24))
        bottom.legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)


def finite(value: float) -> bool:
    return math.isfinite(value)
