"""The benchmark's outputs: one table per run, the JSON, the PNG, and two runs compared."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the table: a measure (depth 0) or what belongs to the measure above (depth 1)."""

    label: str
    spec: str  # a key, "a/b" (a ratio of two keys), "a,b,..." (several values, one unit), "" (a heading)
    unit: str  # s, ratio, MB, min, or a count or rate (nudges, rows/s, ...)
    depth: int = 0
    readme: bool = False  # also in README's shorter table (with its parent)


ROWS: list[Row] = [
    Row("baseline: GROUP BY user_id over the whole log", "baseline_s", "s", readme=True),
    Row("full scan, deciding only", "full_dry_s", "s", readme=True),
    Row("baseline / full scan", "baseline_s/full_dry_s", "ratio", 1, readme=True),
    Row("full scan writing every due nudge", "full_write_s", "s", readme=True),
    Row("nudges written", "nudged", "nudges", 1),
    Row("nudges written per second", "nudges_per_s", "nudges/s", 1, readme=True),
    Row("plain COPY of the same rows into an empty table", "copy_nudges_per_s", "rows/s", 1, readme=True),
    Row("nudges/s / plain COPY", "nudges_per_s/copy_nudges_per_s", "ratio", 1, readme=True),
    Row("COPY of them into engagement_events itself (triggers off)", "copy_nudges_in_table_per_s", "rows/s", 1),
    Row("nudges/s / COPY into engagement_events", "nudges_per_s/copy_nudges_in_table_per_s", "ratio", 1),
    Row("a day of beats: incremental scans 15 min apart", "", "", readme=True),
    Row("median beat", "day_median_s", "s", 1, readme=True),
    Row("baseline / median beat", "baseline_s/day_median_s", "ratio", 1, readme=True),
    Row("p95 beat", "day_p95_s", "s", 1),
    Row("worst beat", "day_worst_s", "s", 1, readme=True),
    Row("baseline / worst beat", "baseline_s/day_worst_s", "ratio", 1, readme=True),
    Row("worst beat: minutes into the day", "day_worst_at_min", "min", 1),
    Row("worst beat: nudges it wrote", "day_worst_nudged", "nudges", 1),
    Row("same day under NUDGE_MAX_PER_SCAN: the cap", "cap", "nudges/scan", readme=True),
    Row("median / p95 / worst beat", "capped_median_s,capped_p95_s,capped_worst_s", "s", 1, readme=True),
    Row("baseline / worst capped beat", "baseline_s/capped_worst_s", "ratio", 1, readme=True),
    Row("nudges in the day, uncapped / capped", "day_nudged,capped_nudged", "nudges", 1),
    Row("longest run of beats leaving nudges deferred", "capped_longest_deferral_min", "min", 1),
    Row("replay of 30 days at 15-min beats (python -m worker simulate)", "replay_seconds", "s"),
    Row("peak memory", "replay_peak_mb", "MB", 1),
    Row("the comparison (configured beside a proposed rule)", "replay_compare_seconds", "s", 1),
    Row("its peak memory", "replay_compare_peak_mb", "MB", 1),
    Row("import (python -m worker import)", "import_per_s", "events/s", readme=True),
    Row("plain COPY into an identical table", "copy_per_s", "events/s", 1),
    Row("import / COPY", "import_per_s/copy_per_s", "ratio", 1, readme=True),
    Row("insert single rows: schema / bare table", "insert_single_per_s,insert_single_bare_per_s", "rows/s"),
    Row("schema / bare", "insert_single_per_s/insert_single_bare_per_s", "ratio", 1),
    Row(
        "insert 1,000-row batches: schema / bare table",
        "insert_batch_per_s,insert_batch_bare_per_s",
        "rows/s",
        readme=True,
    ),
    Row("schema / bare", "insert_batch_per_s/insert_batch_bare_per_s", "ratio", 1, readme=True),
    Row("schema / an empty twin (PRD indexes, no triggers)", "insert_batch_per_s/insert_batch_twin_per_s", "ratio", 1),
    Row(
        "insert, every row a new user: schema / bare table",
        "insert_new_users_per_s,insert_new_users_bare_per_s",
        "rows/s",
    ),
    Row("schema / bare", "insert_new_users_per_s/insert_new_users_bare_per_s", "ratio", 1),
    Row(
        "engine's cost: engagement_events with / without its triggers, 1,000-row batches",
        "insert_batch_same_table_per_s/insert_batch_no_triggers_per_s",
        "ratio",
        readme=True,
    ),
    Row(
        "the same, single rows (one transaction each)",
        "insert_single_same_table_per_s/insert_single_no_triggers_per_s",
        "ratio",
        1,
        readme=True,
    ),
    Row(
        "the same, every row a new user",
        "insert_new_users_same_table_per_s/insert_new_users_no_triggers_per_s",
        "ratio",
        1,
        readme=True,
    ),
    Row("a beat's writes: a month's events / 2,880, in 1,000-row batches", "fold_events", "events", readme=True),
    Row("writing them", "fold_writes_s", "s", 1, readme=True),
    Row("the next scan's fold of them (where the summaries are folded)", "fold_s", "s", 1, readme=True),
    Row("writes + fold: what they cost the engine in all", "fold_total_s", "s", 1, readme=True),
    Row("worker's peak memory during a full scan (max RSS)", "peak_rss_mb", "MB", readme=True),
    Row("the importer's peak memory (max RSS)", "import_peak_rss_mb", "MB", 1, readme=True),
]


def value(m: dict[str, Any], spec: str, unit: str) -> str:
    """One cell: every figure of a unit with the same precision; '-' where the run lacks one."""
    if not spec:
        return ""
    if "/" in spec:
        top, bottom = (m.get(k) for k in spec.split("/"))
        return f"{top / bottom:.2f}x" if top is not None and bottom else "-"
    parts = [m.get(k) for k in spec.split(",")]
    return " / ".join("-" if p is None else _fmt(p, unit) for p in parts)


def _fmt(v: float, unit: str) -> str:
    """Seconds to the millisecond; everything else (counts, rates, MB, minutes) whole."""
    return f"{v:,.3f}" if unit == "s" else f"{v:,.0f}"


def rows(readme: bool) -> list[Row]:
    return [row for row in ROWS if row.readme or not readme]


def table(run: dict[str, Any], readme: bool = False) -> str:
    """The run as a fixed-width table: measures, with what belongs to each indented under it."""
    sizes = run["sizes"]
    head = ["measure", "unit", *(f"{s['users']:,} users / {s['events']:,} events" for s in sizes)]
    lines = [
        ["  " * row.depth + row.label, row.unit, *(value(s, row.spec, row.unit) for s in sizes)] for row in rows(readme)
    ]
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return " | ".join(padded).rstrip()

    out = [line(head), "-+-".join("-" * w for w in widths), *(line(r) for r in lines)]
    out.append(machine(run["machine"]))
    return "\n".join(out)


def machine(m: dict[str, Any]) -> str:
    """One line: the CPUs, memory and load the run had, and the server (runs older than a field omit it)."""
    memory = f", {m['memory_gb']:.0f} GB RAM" if m.get("memory_gb") else ""
    buffers = f", shared_buffers {m['shared_buffers']}" if m.get("shared_buffers") else ""
    return (
        f"machine: {m['cpus']} CPUs{memory}, load average {m['load_before']} before, {m['load_after']} after; "
        f"{' '.join(m['postgres'].split()[:2])}{buffers}"
    )


# The generated part of a page: a code block between these two lines, rewritten by `render`.
BEGIN = "<!-- bench table: python -m bench render docs/bench/scaling.json --readme; do not edit -->"
END = "<!-- end of bench table -->"


def rewrite(page: Path, block: str) -> bool:
    """Replace the generated block of `page` with `block`; whether the page changed."""
    text = page.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{page}: needs exactly one pair of bench table markers")
    before, rest = text.split(BEGIN)
    _, after = rest.split(END)
    updated = f"{before}{BEGIN}\n```\n{block}\n```\n{END}{after}"
    if updated != text:
        page.write_text(updated, encoding="utf-8")
    return updated != text


def generated(page: Path) -> str:
    """The table currently in `page`'s generated block."""
    inside = page.read_text(encoding="utf-8").split(BEGIN)[1].split(END)[0]
    return inside.strip().removeprefix("```").removesuffix("```").strip("\n")


def compare(a_path: Path, b_path: Path) -> str:
    """Before (A) and after (B) in one table per size both runs have: every row of the run's table
    with both values and after / before, then every other number of the JSON the same way, then
    both machines. A figure one run lacks shows '-'."""
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    by_users = {s["users"]: s for s in a["sizes"]}
    out = []
    for after in b["sizes"]:
        before = by_users.get(after["users"])
        if before is None:
            continue
        lines = [
            [
                "  " * row.depth + row.label,
                row.unit,
                value(before, row.spec, row.unit),
                value(after, row.spec, row.unit),
                _change(before, after, row.spec),
            ]
            for row in ROWS
        ]
        shown = {k for row in ROWS for k in row.spec.replace("/", ",").split(",") if k}
        others = sorted(
            k
            for k in {*before, *after}
            if k not in shown and any(_number(s.get(k)) for s in (before, after)) and k != "users_requested"
        )
        lines += [["other figures of the JSON", "", "", "", ""]]
        lines += [
            [
                f"  {k}",
                "",
                *("-" if not _number(s.get(k)) else f"{s[k]:,.3f}" for s in (before, after)),
                _change(before, after, k),
            ]
            for k in others
        ]
        head = [f"{after['users']:,} users / {after['events']:,} events", "unit", "before (A)", "after (B)", "B / A"]
        widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

        def line(cells: list[str], widths: list[int] = widths) -> str:
            padded = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
            return " | ".join(padded).rstrip()

        out += [line(head), "-+-".join("-" * w for w in widths), *(line(r) for r in lines), ""]
    if not out:
        return "no size in common"
    out += [
        f"{label}: {run.get('code') or 'code ?'}, schema {run['sizes'][-1].get('schema', '?')}, {machine(run['machine'])}"
        for label, run in (("before (A)", a), ("after (B) ", b))
    ]
    return "\n".join(out)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _figure(m: dict[str, Any], key: str) -> float | None:
    """A key's value, or a ratio of two keys ("a/b"); None where the run lacks it."""
    if "/" in key:
        top, bottom = (m.get(k) for k in key.split("/"))
        return top / bottom if _number(top) and _number(bottom) and bottom else None
    v = m.get(key)
    return v if _number(v) else None


def _change(before: dict[str, Any], after: dict[str, Any], spec: str) -> str:
    """after / before for each part of a row's spec ("x1.23 / x0.98"); '-' where either lacks it."""
    if not spec:
        return ""
    parts = []
    for key in spec.split(",") if "/" not in spec else [spec]:
        old, new = _figure(before, key), _figure(after, key)
        parts.append(f"x{new / old:.2f}" if old and new is not None else "-")
    return " / ".join(parts)


# Every series has a colour of its own across both panels. On the right, a rate of ours (solid)
# and the plain-COPY or bare-table rate it is measured against (dashed) share their colour.
SCAN_SERIES = (
    ("baseline_s", "GROUP BY baseline", "black", "--"),
    ("full_dry_s", "full scan, deciding only", "tab:blue", "-"),
    ("full_write_s", "full scan, writing", "tab:orange", "-"),
    ("day_median_s", "beat, median", "tab:green", "-"),
    ("day_worst_s", "beat, worst of the day", "tab:red", "-"),
    ("capped_worst_s", "beat, worst, under NUDGE_MAX_PER_SCAN", "tab:purple", "-"),
)
RATE_SERIES = (  # ours first, then what each is measured against: the legend pairs them row by row
    ("nudges_per_s", "nudges written", "tab:brown", "-"),
    ("import_per_s", "import, events", "tab:pink", "-"),
    ("insert_new_users_per_s", "insert, every row a new user", "tab:cyan", "-"),
    ("copy_nudges_per_s", "COPY of the same nudges", "tab:brown", "--"),
    ("copy_per_s", "COPY of the same events", "tab:pink", "--"),
    ("insert_new_users_bare_per_s", "the same into a bare table", "tab:cyan", "--"),
)


def draw(run: dict[str, Any], path: Path) -> None:
    """Scan times and write rates against the number of users; legends under the plots, never on a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = run["sizes"]
    users = [s["users"] for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6.2))
    for ax, series, ylabel, title in (
        (left, SCAN_SERIES, "seconds (log)", "scan times: lower is better"),
        (right, RATE_SERIES, "rows per second (log)", "write rates: higher is better"),
    ):
        for key, label, colour, style in series:
            ax.plot(users, [s.get(key) for s in sizes], marker="o", color=colour, linestyle=style, label=label)
        ax.set(xscale="log", yscale="log", xlabel="users (log)", ylabel=ylabel, title=title)
        ax.set_xticks(users, [f"{u:,}" for u in users])
        ax.grid(alpha=0.3, which="major")
        # Beside the plot, not on it: no line is ever hidden behind the legend.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.suptitle(f"python -m bench, {run['machine']['cpus']} CPUs, {run['machine']['postgres'].split(' on ')[0]}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
