"""Load test: steady writers, scans every few seconds and a feed consumer, all at once.

Run by hand (not part of the tests):

    python bench/load.py [--seconds 60] [--writers 4] [--rate 200] [--scan-every 3] [--users 5000]

Writer processes insert one event per transaction as the service role, each paced at --rate
events/s and stamping the event with its own clock. A scanner runs the inactivity scan every
--scan-every seconds (the rule's threshold is short, so users the writers stop touching come due
and every scan has work). A feed consumer follows the feed and takes, per event, arrival minus
the writer's stamp (send-to-consumer latency). A sampler reads pg_stat_activity and pg_locks of
the benchmark's database every 100 ms for lock waits.

Phases: a warm-up (the threshold plus two scans: the first scan nudges every user, then the
incremental scans settle), --seconds under load (measured), then --baseline seconds with the
writers stopped while the scans go on. Users touched in the last threshold still come due then,
so the idle scans do work of the same kind: the baseline, same run; scan times under load are
printed as a ratio to it.

Reported: errors per part (goal 0), events written and the rate achieved, scan times (p50, p95,
max) and their ratio to idle, feed latency (p50, p95, p99, max) with events missed or repeated,
lock waits (share of samples with a backend waiting on a lock, the most at once, the wait
events seen). Creates its own database on the server of DATABASE_URL and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import scratch_database

from events_schema.db import connect

THRESHOLD_HOURS = 0.01  # 36 s: users the writers leave alone come due during the run
INSERT = "insert into engagement_events (id, user_id, timestamp, event_type, value) values (%s, %s, %s, 'app_open', %s)"
LOCK_SAMPLE = """
select count(*) filter (where wait_event_type = 'Lock'),
       coalesce(jsonb_object_agg(coalesce(wait_event_type || ':' || wait_event, 'cpu'), n)
                filter (where n is not null), '{}')
from (select wait_event_type, wait_event, count(*) over (partition by wait_event_type, wait_event) as n
      from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()
        and state = 'active') a
"""
UNGRANTED = "select count(*) from pg_locks l join pg_database d on d.oid = l.database where d.datname = current_database() and not granted"


def writer(url: str, users: list[str], rate: float, seconds: float, barrier: Any, out: Any) -> None:
    """Paced single-event transactions; reports (written, errors, ids, seconds taken, most behind)."""
    rng = random.Random()
    conn = connect(url, autocommit=True)
    conn.execute("set role service_role")
    written, errors, ids = 0, 0, []
    barrier.wait()
    start = time.monotonic()
    n, behind = 0, 0.0
    while (due := start + n / rate) < start + seconds:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        behind = max(behind, -pause)
        event_id = uuid.uuid4()
        try:
            conn.execute(INSERT, (event_id, rng.choice(users), datetime.now(UTC), json.dumps({"n": n})))
            written += 1
            ids.append(str(event_id))
        except Exception as exc:  # counted, and the run goes on: the figure is the error count  # noqa: BLE001
            errors += 1
            print(f"writer error: {type(exc).__name__}: {exc}", file=sys.stderr)
            conn = connect(url, autocommit=True)
            conn.execute("set role service_role")
        n += 1
    out.put(("writer", written, errors, ids, time.monotonic() - start, behind, time.time()))


def scanner(url: str, every: float, stop: Any, barrier: Any, out: Any) -> None:
    """run_scan every `every` s until `stop`; reports ("scans", [(wall start, duration, examined,
    nudged)], errors, wall time of the barrier)."""
    from worker.scan.scanner import run_scan

    scans, errors = [], 0
    barrier.wait()
    start, wall_start = time.monotonic(), time.time()
    k = 0
    while not stop.is_set():
        time.sleep(max(0.0, start + k * every - time.monotonic()))
        began, wall = time.monotonic(), time.time()
        try:
            totals = run_scan(datetime.now(UTC), url=url).totals()
            scans.append((wall, time.monotonic() - began, totals["examined"], totals["nudged"]))
        except Exception as exc:  # noqa: BLE001
            errors += 1
            print(f"scan error: {type(exc).__name__}: {exc}", file=sys.stderr)
        k += 1
    out.put(("scans", scans, errors, wall_start))


def consumer(url: str, stop: Any, barrier: Any, out: Any) -> None:
    """Follows the feed from now on until `stop`; reports (latencies, app_open ids seen, errors)."""
    from worker.feed import Feed

    latencies, seen, errors = [], [], 0
    try:
        with Feed(url).subscribe() as subscription:
            subscription.next_batch(timeout=0.1)
            barrier.wait()
            while not stop.is_set():
                for event in subscription.next_batch(timeout=0.5):
                    if event.event_type == "app_open":
                        latencies.append(time.time() - event.timestamp.timestamp())
                        seen.append(str(event.id))
    except Exception as exc:  # noqa: BLE001
        errors += 1
        print(f"feed error: {type(exc).__name__}: {exc}", file=sys.stderr)
    out.put(("feed", latencies, seen, errors))


def sampler(url: str, seconds: float, barrier: Any, out: Any) -> None:
    """Lock waits of the benchmark's database, every 100 ms."""
    conn = connect(url, autocommit=True)
    samples, with_lock_wait, most, ungranted_most = 0, 0, 0, 0
    events: Counter[str] = Counter()
    barrier.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        waiting, seen = conn.execute(LOCK_SAMPLE).fetchone()
        ungranted = conn.execute(UNGRANTED).fetchone()[0]
        samples += 1
        with_lock_wait += waiting > 0
        most = max(most, waiting)
        ungranted_most = max(ungranted_most, ungranted)
        events.update(seen)
        time.sleep(0.1)
    out.put(("locks", samples, with_lock_wait, most, ungranted_most, dict(events)))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200, help="events/s per writer")
    parser.add_argument("--scan-every", type=float, default=3)
    parser.add_argument(
        "--users", type=int, default=50000, help="each touched every users/(writers*rate) s on average: many come due"
    )
    parser.add_argument(
        "--baseline",
        type=float,
        default=24,
        help="seconds of scans after the writers stop (users still come due): the idle baseline",
    )
    args = parser.parse_args()
    # The scan's settings, for this process and the ones it starts.
    os.environ.update(
        {
            "NUDGE_RULES": json.dumps([{"name": "load", "threshold_hours": THRESHOLD_HOURS}]),
            "NUDGE_COOLDOWN_HOURS": "0",
            "QUIET_HOURS_ENABLED": "false",
        }
    )
    ctx = mp.get_context("spawn")
    warmup = THRESHOLD_HOURS * 3600 + 2 * args.scan_every
    writing = warmup + args.seconds
    with scratch_database("bench_load") as url:
        with connect(url, autocommit=True) as conn:
            users = [
                str(r[0])
                for r in conn.execute(
                    "insert into auth.users (id, created_at) select gen_random_uuid(), now() - interval '3 days'"
                    " from generate_series(1, %s) returning id",
                    (args.users,),
                ).fetchall()
            ]
        out = ctx.Queue()
        barrier = ctx.Barrier(args.writers + 3)
        stop = ctx.Event()
        feed = ctx.Process(target=consumer, args=(url, stop, barrier, out))
        feed.start()
        parts = [
            ctx.Process(target=writer, args=(url, users, args.rate, writing, barrier, out)) for _ in range(args.writers)
        ]
        parts.append(ctx.Process(target=scanner, args=(url, args.scan_every, stop, barrier, out)))
        parts.append(ctx.Process(target=sampler, args=(url, writing, barrier, out)))
        for p in parts:
            p.start()
        results = []
        while sum(r[0] == "writer" for r in results) < args.writers:
            results.append(out.get())
        # The consumer catches up with the last writes (or they count as missed); the scans go on
        # with the writers stopped: the idle baseline.
        time.sleep(max(5.0, args.baseline))
        stop.set()
        while len(results) < len(parts) + 1:
            results.append(out.get())
        for p in [*parts, feed]:
            p.join()
    report(args, warmup, results)
    return 0


def report(args: argparse.Namespace, warmup: float, results: list[tuple]) -> None:
    writers = [r for r in results if r[0] == "writer"]
    [(_, scans, scan_errors, began)] = [r for r in results if r[0] == "scans"]
    [feed] = [r for r in results if r[0] == "feed"]
    [locks] = [r for r in results if r[0] == "locks"]
    written = sum(w[1] for w in writers)
    ids = {i for w in writers for i in w[3]}
    seen = Counter(feed[2])
    stopped = max(w[6] for w in writers)
    under = [s for s in scans if began + warmup <= s[0] and s[0] + s[1] <= min(w[6] for w in writers)]
    idle = [s for s in scans if s[0] > stopped]
    errors = {"writers": sum(w[2] for w in writers), "scans": scan_errors, "feed": feed[3]}
    print(
        f"load: {args.writers} writers x {args.rate:g} ev/s for {warmup:g} s warm-up + {args.seconds:g} s, "
        f"scans every {args.scan_every:g} s, {args.users} users, rule threshold {THRESHOLD_HOURS * 3600:g} s"
    )
    print(f"errors: {sum(errors.values())} ({', '.join(f'{k} {v}' for k, v in errors.items())})")
    took = max(w[4] for w in writers)
    print(
        f"events written: {written} in {took:.1f} s ({written / took:,.0f}/s; asked {args.writers * args.rate:,.0f}/s;"
        f" a writer was at most {max(w[5] for w in writers):.2f} s behind its schedule)"
    )
    for label, group in (("under load", under), ("idle after", idle)):
        times = [s[1] for s in group]
        print(
            f"scans {label}: {len(group)} runs, p50 {pct(times, 0.5) * 1000:.0f} ms, "
            f"p95 {pct(times, 0.95) * 1000:.0f} ms, max {max(times, default=float('nan')) * 1000:.0f} ms; "
            f"candidates/scan p50 {pct([s[2] for s in group], 0.5):.0f}, nudges {sum(s[3] for s in group)}"
        )
    base = pct([s[1] for s in idle], 0.5)
    print(f"scan p50 under load / idle: {pct([s[1] for s in under], 0.5) / base:.2f}x")
    lat = feed[1]
    print(
        f"feed latency (send to consumer): p50 {pct(lat, 0.5) * 1000:.1f} ms, p95 {pct(lat, 0.95) * 1000:.1f} ms, "
        f"p99 {pct(lat, 0.99) * 1000:.1f} ms, max {max(lat, default=float('nan')) * 1000:.1f} ms; "
        f"missed {len(ids - set(seen))}, repeated {sum(n - 1 for n in seen.values() if n > 1)}"
    )
    samples, waiting, most, ungranted, events = locks[1:]
    top = ", ".join(f"{k} {v}" for k, v in sorted(events.items(), key=lambda kv: -kv[1])[:6])
    print(
        f"lock waits: {waiting} of {samples} samples had a backend waiting on a lock (most at once {most}; "
        f"ungranted pg_locks at most {ungranted}); active backends by wait event over all samples: {top}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
