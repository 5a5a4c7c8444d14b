"""The report as one PNG: retention heatmap, weekly-active line, nudged vs. held comparison,
holdout lift, shadow against live.

Drawn with matplotlib's Agg backend (no display needed), selected before pyplot is imported.
A range that ends mid-week has a partial last week: its cells and its point are marked, so a
dip there is not read as a drop. Where a group has no data, the chart says why instead of `n/a`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from events_schema.analytics.report import Range, Result, Row

WEEK = timedelta(weeks=1)


def partial_week(period: Range) -> datetime | None:
    """The start of the range's last week when the range ends inside it, else None."""
    last = period.end - timedelta(microseconds=1)
    start = datetime.combine(last.date() - timedelta(days=last.weekday()), datetime.min.time(), period.end.tzinfo)
    return None if period.end == start + WEEK else start


def _heatmap(ax: Axes, rows: list[Row], partial: datetime | None) -> None:
    cohorts = sorted({r["cohort_week"] for r in rows})
    offsets = sorted({r["week_offset"] for r in rows})
    grid = np.full((len(cohorts), len(offsets)), np.nan)
    for r in rows:
        if r["retention"] is not None:
            grid[cohorts.index(r["cohort_week"]), offsets.index(r["week_offset"])] = 100 * r["retention"]
    ax.set_title("Weekly retention by sign-up cohort")
    if not cohorts:
        ax.text(0.5, 0.5, "no sign-ups in the range", ha="center", va="center", transform=ax.transAxes)
        return
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if np.isnan(value):
            continue
        cut = partial is not None and cohorts[i] + offsets[j] * WEEK == partial
        colour = "white" if value < 60 else "black"
        ax.text(j, i, f"{value:.0f}{'*' if cut else ''}", ha="center", va="center", fontsize=8, color=colour)
        if cut:
            ax.add_patch(
                Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="red", linestyle="--", lw=1.5)
            )
    sizes = {r["cohort_week"]: r["cohort_size"] for r in rows}
    ax.set_yticks(range(len(cohorts)), [f"{c:%Y-%m-%d} (n={sizes[c]:,})" for c in cohorts], fontsize=8)
    ax.set_xticks(range(len(offsets)), [str(k) for k in offsets], fontsize=8)
    note = (
        f"\n* dashed red: the week of {partial:%Y-%m-%d} is partial (data through the range's end); "
        "blank: not reached yet"
        if partial is not None
        else "\nblank: not reached yet"
    )
    ax.set_xlabel(f"weeks since the sign-up week (0 = the sign-up week itself){note}", fontsize=9)
    ax.set_ylabel("sign-up cohort (ISO week of, users)")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.04)
    bar.set_label("% of the cohort active in that week")


def _weekly_active(ax: Axes, rows: list[Row], partial: datetime | None) -> None:
    ax.set_title("Weekly active users")
    weeks = [r["week_start"] for r in rows]
    counts = [r["active_users"] for r in rows]
    whole = len(rows) - 1 if partial is not None and weeks and weeks[-1] == partial else len(rows)
    ax.plot(weeks[:whole], counts[:whole], marker="o", color="tab:blue", label="whole weeks")
    if whole < len(rows):
        ax.plot(weeks[whole - 1 :], counts[whole - 1 :], linestyle="--", color="tab:blue")
        last = rows[-1]
        ax.plot(
            [weeks[-1]],
            [counts[-1]],
            marker="o",
            markerfacecolor="white",
            color="tab:blue",
            linestyle="none",
            label=f"partial week (through {last['week_end']:%a %H:%M} UTC)",
        )
        ax.legend(fontsize=8, loc="lower left")
    ax.set_ylim(bottom=0)
    ax.set_xticks(weeks, [f"{w:%Y-%m-%d}" for w in weeks])
    ax.set_xlabel("ISO week of")
    ax.set_ylabel("distinct users with activity")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(alpha=0.3)


Totals = dict[tuple[str, str], dict[str, int]]


def nudge_totals(rows: list[Row]) -> Totals:
    """Per (rule, group): members and, per window, those observed and those back, over the range."""
    totals: Totals = {}
    for r in rows:
        t = totals.setdefault((r["rule"], r["group"]), {})
        for key in ("members", "back_24h", "observed_24h", "back_72h", "observed_72h"):
            t[key] = t.get(key, 0) + r[key]
    return totals


def bar_label(totals: Totals, rule: str, group: str, hours: int) -> tuple[float, str]:
    """A bar's height (% back) and its label: the share with its counts, or why there is none."""
    t = totals.get((rule, group), {})
    seen, back = t.get(f"observed_{hours}h", 0), t.get(f"back_{hours}h", 0)
    if seen:
        return 100 * back / seen, f"{100 * back / seen:.0f}%\n{back:,} of {seen:,}"
    if t.get("members"):
        return 0.0, f"no {hours} h window\nended yet"
    return 0.0, "none sent" if group == "nudged" else "none held"


def _nudges(ax: Axes, rows: list[Row]) -> None:
    """Per rule and window, nudged beside held: the share back over the whole range, with counts."""
    ax.set_title("Back within 24 h / 72 h of the nudge (nudged) or of becoming due (held)")
    totals = nudge_totals(rows)
    rules = sorted({rule for rule, _ in totals})
    if not rules:
        ax.text(0.5, 0.5, "no nudges or held users in the range", ha="center", va="center", transform=ax.transAxes)
        return
    slots = [(rule, hours) for rule in rules for hours in (24, 72)]
    x = np.arange(len(slots))
    for shift, group, colour in ((-0.2, "nudged", "tab:blue"), (0.2, "held", "tab:orange")):
        shares, labels = zip(*(bar_label(totals, rule, group, hours) for rule, hours in slots), strict=True)
        members = sum(t.get("members", 0) for (_, g), t in totals.items() if g == group)
        bars = ax.bar(x + shift, shares, width=0.4, color=colour, label=f"{group} ({members:,} in the range)")
        ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
    ax.set_xticks(x, [f"{rule}\nwithin {hours} h" for rule, hours in slots], fontsize=8)
    ax.set_ylabel("% back (of those whose window ended)")
    ax.set_ylim(0, 118)
    ax.legend(fontsize=8, loc="upper left")
    if not any(g == "nudged" for _, g in totals):
        ax.text(
            0.99,
            0.97,
            "no nudge_sent in the range: the engine has not nudged anyone here yet",
            ha="right",
            va="top",
            fontsize=8,
            transform=ax.transAxes,
        )


def _lift(ax: Axes, rows: list[Row]) -> None:
    """Per rule, experiment and window, the lift over the whole range with its 95 % interval."""
    ax.set_title("Holdout lift over the range: nudged minus withheld share back (pp, 95% CI)")
    pooled = [r for r in rows if r["week_start"] is None]
    if not pooled:
        ax.text(0.5, 0.5, "no rule with a holdout in the range", ha="center", va="center", transform=ax.transAxes)
        return
    x = np.arange(len(pooled))
    for i, r in enumerate(pooled):
        if r["lift"] is None:
            ax.text(i, 0, r["note"], ha="center", va="bottom", fontsize=8, rotation=90)
            continue
        low, high = 100 * (r["lift"] - r["lift_low"]), 100 * (r["lift_high"] - r["lift"])
        ax.errorbar(i, 100 * r["lift"], yerr=[[low], [high]], fmt="o", capsize=6, color="tab:blue")
        ax.annotate(f"{100 * r['lift']:+.1f}", (i, 100 * r["lift"]), xytext=(8, 0), textcoords="offset points")
    ax.axhline(0, color="grey", linewidth=1)
    labels = [
        f"{r['rule']} {r['holdout_percent']:g}% {r['holdout_salt']}\nwithin {r['window_hours']} h" for r in pooled
    ]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.5, len(pooled) - 0.5)
    ax.set_ylabel("lift, percentage points")
    ax.grid(alpha=0.3, axis="y")


def pair_label(row: Row) -> str:
    return f"{row['shadow_rule']} vs {row['live_rule'] or '(no live rule)'}"


def _shadow(ax: Axes, rows: list[Row]) -> None:
    """Per week and pair of rules, the users reached, stacked: by the live rule only, by both, by
    the shadow rule only; the whole range's totals (each user once) in the legend."""
    ax.set_title("Shadow against live: users reached per week (shadow records are never sent)")
    weekly = [r for r in rows if r["week_start"] is not None]
    if not weekly:
        ax.text(
            0.5, 0.5, "no shadow rule recorded anyone in the range", ha="center", va="center", transform=ax.transAxes
        )
        return
    pairs = sorted({pair_label(r) for r in weekly})
    x = np.arange(len(weekly))
    bottom = np.zeros(len(weekly))
    totals = {pair_label(r): r for r in rows if r["week_start"] is None}
    parts = (("live_only_users", "live rule only", "tab:orange"), ("both_users", "both", "tab:purple"))
    for key, label, colour in (*parts, ("shadow_only_users", "shadow rule only", "tab:blue")):
        heights = np.array([r[key] for r in weekly], dtype=float)
        over_range = ", ".join(f"{t[key]:,}" for t in totals.values())
        ax.bar(x, heights, bottom=bottom, color=colour, width=0.6, label=f"{label} (range: {over_range})")
        bottom += heights
    for i, r in enumerate(weekly):
        ax.annotate(
            f"{r['shadow_nudges']:,} vs {r['live_nudges']:,}",
            (i, bottom[i]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    many = len(pairs) > 1
    ax.set_xticks(
        x, [f"{r['week_start']:%Y-%m-%d}" + (f"\n{pair_label(r)}" if many else "") for r in weekly], fontsize=8
    )
    ax.set_xlabel("ISO week of" + ("" if many else f" ({pairs[0]}); above each bar: nudges, shadow vs live"))
    ax.set_ylabel("distinct users")
    # Headroom above the tallest bar for its label and the legend, in one row over the bars.
    ax.set_ylim(0, max(bottom) * 1.45 + 1)
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax.grid(alpha=0.3, axis="y")


def draw(results: dict[str, Result], period: Range, path: Path) -> Path:
    """Write the five panels to `path` (PNG, in a folder that exists) and return it."""
    partial = partial_week(period)
    figure, (top, middle, bottom, lift, shadow) = plt.subplots(
        5, 1, figsize=(10, 22), gridspec_kw={"height_ratios": [3, 2, 2, 2, 2]}
    )
    figure.suptitle(f"Engagement, {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d %H:%M} UTC (ISO weeks)")
    _heatmap(top, results["retention"].rows, partial)
    _weekly_active(middle, results["weekly_active"].rows, partial)
    _nudges(bottom, results["nudge_effect"].rows)
    _lift(lift, results["holdout_lift"].rows)
    _shadow(shadow, results["shadow_vs_live"].rows)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
    return path
