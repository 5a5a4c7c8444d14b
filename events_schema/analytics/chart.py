"""The report as one PNG: retention heatmap, weekly-active line, nudged vs. held comparison.

Drawn with matplotlib's Agg backend (no display needed), selected before pyplot is imported.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from events_schema.analytics.report import Range, Result, Row


def _heatmap(ax: Axes, rows: list[Row]) -> None:
    cohorts = sorted({r["cohort_week"] for r in rows})
    offsets = sorted({r["week_offset"] for r in rows})
    grid = np.full((len(cohorts), len(offsets)), np.nan)
    for r in rows:
        if r["retention"] is not None:
            grid[cohorts.index(r["cohort_week"]), offsets.index(r["week_offset"])] = 100 * r["retention"]
    ax.set_title("Weekly retention by sign-up cohort (%)")
    if not cohorts:
        ax.text(0.5, 0.5, "no sign-ups in the range", ha="center", va="center", transform=ax.transAxes)
        return
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(
                j, i, f"{value:.0f}", ha="center", va="center", fontsize=8, color="white" if value < 60 else "black"
            )
    sizes = {r["cohort_week"]: r["cohort_size"] for r in rows}
    ax.set_yticks(range(len(cohorts)), [f"{c:%Y-%m-%d} (n={sizes[c]})" for c in cohorts], fontsize=8)
    ax.set_xticks(range(len(offsets)), [f"wk {k}" for k in offsets], fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.04)


def _weekly_active(ax: Axes, rows: list[Row]) -> None:
    ax.set_title("Weekly active users")
    weeks = [r["week_start"] for r in rows]
    ax.plot(weeks, [r["active_users"] for r in rows], marker="o")
    ax.set_ylim(bottom=0)
    ax.set_xticks(weeks, [f"{w:%Y-%m-%d}" for w in weeks])
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(alpha=0.3)


def _nudges(ax: Axes, rows: list[Row]) -> None:
    """Per rule and window, nudged beside held: the share back over the whole range."""
    ax.set_title("Back within 24 h / 72 h of the nudge (nudged) or of becoming due (held)")
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault((r["rule"], r["group"]), {})
        for key in ("back_24h", "observed_24h", "back_72h", "observed_72h"):
            t[key] = t.get(key, 0) + r[key]
    rules = sorted({rule for rule, _ in totals})
    if not rules:
        ax.text(0.5, 0.5, "no nudges or held users in the range", ha="center", va="center", transform=ax.transAxes)
        return
    slots = [(rule, hours) for rule in rules for hours in (24, 72)]
    x = np.arange(len(slots))
    for shift, group in ((-0.2, "nudged"), (0.2, "held")):
        shares = []
        for rule, hours in slots:
            t = totals.get((rule, group), {})
            seen = t.get(f"observed_{hours}h", 0)
            shares.append(100 * t[f"back_{hours}h"] / seen if seen else np.nan)
        bars = ax.bar(x + shift, np.nan_to_num(shares), width=0.4, label=group)
        ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.0f}%" for v in shares], fontsize=8)
    ax.set_xticks(x, [f"{rule}\nwithin {hours} h" for rule, hours in slots], fontsize=8)
    ax.set_ylabel("% back")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)


def draw(results: dict[str, Result], period: Range, path: Path) -> Path:
    """Write the three panels to `path` (PNG, in a folder that exists) and return it."""
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 13), gridspec_kw={"height_ratios": [3, 2, 2]})
    figure.suptitle(f"Engagement, {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d %H:%M} UTC (ISO weeks)")
    _heatmap(top, results["retention"].rows)
    _weekly_active(middle, results["weekly_active"].rows)
    _nudges(bottom, results["nudge_effect"].rows)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
    return path
