"""The scan's measures on one dataset: the baseline, the full scan (decide only, then writing),
the nudges against COPY of the same rows, and a simulated day of incremental beats."""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.data import BASELINE, NOW
from events_schema.db import connect

ROOT = Path(__file__).resolve().parent.parent
CUTOFF = NOW - timedelta(hours=48)  # the default rule, inactive_48h


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time in seconds over `repeat` runs (the first also warms the cache)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def baseline(url: str) -> dict[str, Any]:
    with connect(url, autocommit=True) as conn:
        seconds = timed(lambda: conn.execute(BASELINE, {"as_of": NOW, "cutoff": CUTOFF}).fetchone())
        due = conn.execute(BASELINE, {"as_of": NOW, "cutoff": CUTOFF}).fetchone()[0]
    return {"baseline_s": seconds, "baseline_due": due}


def scan_subprocess(url: str, *args: str) -> dict[str, Any]:
    """A scan in its own process (bench/scan_peak.py): its time and peak memory."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.scan_peak", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the scan failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def full_scans(url: str) -> dict[str, Any]:
    """Decide only (median of 3, in this process), then the full scan writing every due nudge in a
    subprocess: the largest scan, whose max RSS is the worker's peak."""
    from worker.scan.scanner import run_scan

    dry = timed(lambda: run_scan(NOW, dry_run=True, full=True))
    written = scan_subprocess(url, "--as-of", NOW.isoformat(), "--full")
    return {
        "full_dry_s": dry,
        "full_write_s": written["seconds"],
        "nudged": written["nudged"],
        "due": written["due"],
        "peak_rss_mb": written["max_rss_mb"],
        "nudges_per_s": written["nudged"] / written["seconds"] if written["seconds"] else 0.0,
    }


def copy_nudges(url: str) -> dict[str, Any]:
    """COPY the rows the scan wrote into an identical, empty table (columns, checks, indexes with
    the unique episode index, FK; no triggers): what writing them costs at the least. Then the
    same rows (new ids) into engagement_events itself, in a transaction rolled back, with its
    triggers off: what writing them into a table of this size costs, whoever writes."""
    columns = 'id, user_id, "timestamp", event_type, value, is_deleted'
    buffer = io.BytesIO()
    with connect(url, autocommit=True) as conn:
        conn.execute("drop table if exists bench_nudge_copy")
        conn.execute("create table bench_nudge_copy (like public.engagement_events including all)")
        conn.execute(
            "alter table bench_nudge_copy add foreign key (user_id) references auth.users (id) on delete cascade"
        )
        with conn.cursor().copy(
            f"copy (select {columns} from engagement_events where event_type = 'nudge_sent') to stdout"
        ) as out:
            for block in out:
                buffer.write(block)
        conn.execute("checkpoint")
    with connect(url) as conn:
        start = time.perf_counter()
        with conn.cursor().copy(f"copy bench_nudge_copy ({columns}) from stdin") as into:
            into.write(buffer.getvalue())
        conn.commit()
        seconds = time.perf_counter() - start
        rows = conn.execute("select count(*) from bench_nudge_copy").fetchone()[0]
        conn.execute("drop table bench_nudge_copy")
        conn.commit()
    in_table = _copy_into_the_events_table(url)
    return {
        "copy_nudges_s": seconds,
        "copy_nudges_per_s": rows / seconds if seconds else 0.0,
        "copy_nudges_in_table_per_s": rows / in_table if in_table else 0.0,
    }


def _copy_into_the_events_table(url: str) -> float:
    """Seconds to COPY the nudges back into engagement_events after deleting them, triggers off
    (session_replication_role = replica, which also skips the foreign key's check), rolled back."""
    columns = 'user_id, "timestamp", event_type, value, is_deleted'
    buffer = io.BytesIO()
    with connect(url) as conn:
        with conn.cursor().copy(
            f"copy (select {columns} from engagement_events where event_type = 'nudge_sent') to stdout"
        ) as out:
            for block in out:
                buffer.write(block)
        conn.execute("set local session_replication_role = replica")
        conn.execute("delete from engagement_events where event_type = 'nudge_sent'")
        start = time.perf_counter()
        with conn.cursor().copy(f"copy engagement_events ({columns}) from stdin") as into:
            into.write(buffer.getvalue())
        seconds = time.perf_counter() - start
        conn.rollback()
    return seconds


def day_of_beats(beats: int, cap: int = 0, prefix: str = "day") -> dict[str, Any]:
    """`beats` incremental scans, 15 minutes of as_of apart, after the full scan at NOW: the
    quiet-hours holds of each time zone end together (08:00 local), the morning waves. With
    `cap`, under NUDGE_MAX_PER_SCAN=cap, also how long the deferred nudges waited."""
    from events_schema.settings import get_settings
    from worker.scan.scanner import run_scan

    os.environ["NUDGE_MAX_PER_SCAN"] = str(cap)
    get_settings.cache_clear()
    runs: list[dict[str, Any]] = []
    try:
        for i in range(1, beats + 1):
            at = NOW + timedelta(minutes=15 * i)
            start = time.perf_counter()
            summary = run_scan(at)
            runs.append({"at_min": 15 * i, "s": time.perf_counter() - start, **summary.totals()})
    finally:
        os.environ.pop("NUDGE_MAX_PER_SCAN")
        get_settings.cache_clear()
    times = sorted(r["s"] for r in runs)
    worst = max(runs, key=lambda r: r["s"])
    result = {
        f"{prefix}_median_s": statistics.median(times),
        f"{prefix}_p95_s": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        f"{prefix}_worst_s": worst["s"],
        f"{prefix}_worst_at_min": worst["at_min"],
        f"{prefix}_worst_nudged": worst["nudged"],
        f"{prefix}_nudged": sum(r["nudged"] for r in runs),
        f"{prefix}_beats": [
            {"at_min": r["at_min"], "s": r["s"], "nudged": r["nudged"], "deferred": r["skipped"]["rate_limited"]}
            for r in runs
        ],
    }
    if cap:
        # The longest run of consecutive beats that left nudges deferred: no deferred nudge
        # waited longer than that many beats.
        longest = current = 0
        for r in runs:
            current = current + 1 if r["skipped"]["rate_limited"] else 0
            longest = max(longest, current)
        result[f"{prefix}_longest_deferral_min"] = 15 * longest
    return result


def capped_day(url: str, beats: int, cap: int) -> dict[str, Any]:
    """The same day again from the same start (the engine reset, the uncapped full scan at NOW
    in a subprocess), under the rate limit."""
    from bench.data import reset_engine

    reset_engine(url)
    scan_subprocess(url, "--as-of", NOW.isoformat(), "--full")
    return {"cap": cap, **day_of_beats(beats, cap, prefix="capped")}
