"""Benchmark: `python -m worker simulate` over 30 days at 15-minute beats (2,880 instants).

Run by hand (never in tests beyond a tiny size):
    .venv/bin/python bench/simulate.py --database bench_scale_100000      # an existing dataset, read only
    .venv/bin/python bench/simulate.py --users 100000 [--keep]             # a scratch one (bench/data.py)
Each replay runs as `python -m worker simulate ... --json` in a process of its own (bench/proc.py:
wall time and that process's peak memory), on the dataset as it is: the replay reads in one READ
ONLY transaction and writes nothing, so a kept dataset (bench_scale_*) is never changed (this
module never migrates, fills or resets one it did not build). Three replays: the configured rule
alone (48 h), the comparison a product owner runs (48 h beside a proposed 36 h), and the
comparison under NUDGE_MAX_PER_SCAN (the cap ties users together: the due users are held in
memory and walked beat by beat). The goals (issue 25): 100k users under 60 s, 1M under 10
minutes, peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url

from bench.data import NOW
from bench.proc import run_measured
from events_schema.settings import get_settings

DAYS = 30
PROPOSED = json.dumps([{"name": "inactive_36h", "threshold_hours": 36}])


def replay(url: str, *, proposed: bool, cap: int = 0, days: int = DAYS) -> dict[str, Any]:
    """One replay of the `days` before NOW in a child process: seconds, peak MB, nudges per side."""
    start = NOW - timedelta(days=days)
    command = [
        sys.executable,
        "-m",
        "worker",
        "simulate",
        "--from",
        start.isoformat(),
        "--to",
        NOW.isoformat(),
        "--json",
    ]
    if proposed:
        command += ["--rules", PROPOSED]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WORKER_DATABASE_URL": url,
        "NUDGE_RULES": json.dumps([{"name": "inactive_48h", "threshold_hours": 48}]),
        "NUDGE_MAX_PER_SCAN": str(cap),
    }
    began = time.perf_counter()
    done = run_measured(command, env)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"simulate failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    out = json.loads(done.stdout)
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(done.max_rss_mb, 1),
        "beats": out["beats"],
        "sent": {side: v["sent"] for side, v in out["sides"].items()},
    }


def measure(url: str, days: int = DAYS, *, capped: bool = True) -> dict[str, Any]:
    """The replays, as figures for `python -m bench`'s result (which leaves the capped one out:
    the slowest, bench/simulate.py measures it)."""
    alone = replay(url, proposed=False, days=days)
    both = replay(url, proposed=True, days=days)
    figures = {
        "replay_beats": alone["beats"],
        "replay_seconds": alone["seconds"],
        "replay_peak_mb": alone["peak_mb"],
        "replay_compare_seconds": both["seconds"],
        "replay_compare_peak_mb": both["peak_mb"],
        "replay_sent": both["sent"],
    }
    if not capped:
        return figures
    cap = max(1, both["sent"]["current"] * 2 // max(both["beats"], 1))
    limited = replay(url, proposed=True, cap=cap, days=days)
    return {
        **figures,
        "replay_capped_seconds": limited["seconds"],
        "replay_capped_peak_mb": limited["peak_mb"],
        "replay_cap": cap,
        "replay_capped_sent": limited["sent"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--database", metavar="NAME", help="an existing dataset on the server, read only")
    source.add_argument("--users", type=int, help="build a scratch dataset of this many users (bench/data.py)")
    parser.add_argument("--events", type=int, default=30, help="events per user of a scratch dataset")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dataset (bench_simulate_<users>)")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--no-capped", action="store_true", help="leave out the replay under NUDGE_MAX_PER_SCAN")
    args = parser.parse_args()
    if args.database:
        url = make_url(get_settings().database_url).set(database=args.database).render_as_string(hide_password=False)
        figures = measure(url, args.days, capped=not args.no_capped)
    else:
        from bench.data import dataset, fill

        with dataset(args.users, args.events, f"bench_simulate_{args.users}" if args.keep else None, args.keep) as (
            url,
            reused,
        ):
            if not reused:
                fill(url, args.users, args.events)
            figures = measure(url, args.days, capped=not args.no_capped)
    print(
        json.dumps({"database": args.database or f"{args.users} users", "load": os.getloadavg(), **figures}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
