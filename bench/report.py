"""The benchmark's outputs: one table per run, the JSON, the PNG, and two runs compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (label, how to compute it from one size's measures, unit); ratios are in the same run.
ROWS: list[tuple[str, str, str]] = [
    ("baseline GROUP BY user_id", "baseline_s", "s"),
    ("full scan, decide only", "full_dry_s", "s"),
    ("  baseline / full scan decide-only", "baseline_s/full_dry_s", "x"),
    ("full scan writing nudges", "full_write_s", "s"),
    ("  nudges written", "nudged", ""),
    ("  nudges per second", "nudges_per_s", "/s"),
    ("  plain COPY of the same rows, rows per second", "copy_nudges_per_s", "/s"),
    ("  nudges/s / COPY rows/s", "nudges_per_s/copy_nudges_per_s", "x"),
    ("  COPY of them into engagement_events itself (triggers off), rows/s", "copy_nudges_in_table_per_s", "/s"),
    ("  nudges/s / COPY into the table itself", "nudges_per_s/copy_nudges_in_table_per_s", "x"),
    ("day of beats: median incremental scan", "day_median_s", "s"),
    ("  baseline / median", "baseline_s/day_median_s", "x"),
    ("day of beats: p95", "day_p95_s", "s"),
    ("day of beats: worst", "day_worst_s", "s"),
    ("  baseline / worst", "baseline_s/day_worst_s", "x"),
    ("  worst beat at +min, nudges it wrote", "day_worst_at_min,day_worst_nudged", ""),
    ("same day, NUDGE_MAX_PER_SCAN", "cap", ""),
    ("  median / p95 / worst beat", "capped_median_s,capped_p95_s,capped_worst_s", "s"),
    ("  baseline / worst", "baseline_s/capped_worst_s", "x"),
    ("  nudges in the day, uncapped / capped", "day_nudged,capped_nudged", ""),
    ("  longest run of beats leaving nudges deferred (min)", "capped_longest_deferral_min", ""),
    ("import (python -m worker import), events/s", "import_per_s", "/s"),
    ("  plain COPY into an identical table, events/s", "copy_per_s", "/s"),
    ("  import / COPY", "import_per_s/copy_per_s", "x"),
    ("insert single rows: schema / bare, rows/s", "insert_single_per_s,insert_single_bare_per_s", "/s"),
    ("  schema / bare", "insert_single_per_s/insert_single_bare_per_s", "x"),
    ("insert 1,000-row batches: schema / bare, rows/s", "insert_batch_per_s,insert_batch_bare_per_s", "/s"),
    ("  schema / bare", "insert_batch_per_s/insert_batch_bare_per_s", "x"),
    ("insert, every row a new user: schema / bare", "insert_new_users_per_s,insert_new_users_bare_per_s", "/s"),
    ("  schema / bare", "insert_new_users_per_s/insert_new_users_bare_per_s", "x"),
    (
        "  schema / an empty twin (PRD indexes, no triggers), 1,000-row batches",
        "insert_batch_per_s/insert_batch_twin_per_s",
        "x",
    ),
    (
        "engine's cost: engagement_events with / without its triggers, 1,000-row batches",
        "insert_batch_same_table_per_s/insert_batch_no_triggers_per_s",
        "x",
    ),
    ("  the same, every row a new user", "insert_new_users_same_table_per_s/insert_new_users_no_triggers_per_s", "x"),
    ("worker peak memory, full scan (max RSS MB)", "peak_rss_mb", "MB"),
]


def value(m: dict[str, Any], spec: str) -> str:
    if "/" in spec:
        top, bottom = (m.get(k) for k in spec.split("/"))
        return f"x{top / bottom:.2f}" if top is not None and bottom else "-"
    parts = [m.get(k) for k in spec.split(",")]
    return " / ".join("-" if p is None else _fmt(p) for p in parts)


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"


def table(run: dict[str, Any]) -> str:
    sizes = run["sizes"]
    head = ["measure", *(f"{s['users']:,} users / {s['events']:,} events" for s in sizes)]
    lines = [
        [label + (f" ({unit})" if unit and unit != "x" else ""), *(value(s, spec) for s in sizes)]
        for label, spec, unit in ROWS
    ]
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in [head, *lines]]
    out.insert(1, "-+-".join("-" * w for w in widths))
    m = run["machine"]
    out.append(
        f"machine: {m['cpus']} CPUs, load average {m['load_before']} before, {m['load_after']} after; {' '.join(m['postgres'].split()[:2])}"
    )
    return "\n".join(out)


def compare(a_path: Path, b_path: Path) -> str:
    """B / A for every numeric measure of the sizes both runs have."""
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    by_users = {s["users"]: s for s in a["sizes"]}
    out = []
    for s in b["sizes"]:
        base = by_users.get(s["users"])
        if base is None:
            continue
        out.append(f"{s['users']:,} users: B / A")
        for key, v in s.items():
            if (
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and isinstance(base.get(key), (int, float))
                and base[key]
            ):
                out.append(f"  {key:32} {base[key]:>14,.3f} {v:>14,.3f}  x{v / base[key]:.2f}")
    return "\n".join(out) if out else "no size in common"


def draw(run: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = run["sizes"]
    users = [s["users"] for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label in (
        ("baseline_s", "GROUP BY baseline"),
        ("full_dry_s", "full scan, decide only"),
        ("full_write_s", "full scan, writing"),
        ("day_median_s", "beat, median"),
        ("day_worst_s", "beat, worst of the day"),
        ("capped_worst_s", "beat, worst, NUDGE_MAX_PER_SCAN"),
    ):
        left.plot(users, [s.get(key) for s in sizes], marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="users", ylabel="seconds", title="scan times")
    left.legend(fontsize=8)
    for key, label in (
        ("nudges_per_s", "nudges written /s"),
        ("copy_nudges_per_s", "COPY of the nudges /s"),
        ("import_per_s", "import events /s"),
        ("copy_per_s", "COPY events /s"),
        ("insert_new_users_per_s", "insert, new users /s"),
        ("insert_new_users_bare_per_s", "insert, bare table /s"),
    ):
        right.plot(users, [s.get(key) for s in sizes], marker="o", label=label)
    right.set(xscale="log", yscale="log", xlabel="users", ylabel="rows per second", title="write rates")
    right.legend(fontsize=8)
    fig.suptitle(f"python -m bench, {run['machine']['cpus']} CPUs, {run['machine']['postgres'].split(' on ')[0]}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
