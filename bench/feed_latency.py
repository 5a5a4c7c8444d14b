"""Live feed benchmark: commit-to-consumer latency, and what the feed costs writers.

Run by hand (not part of the tests):

    python bench/feed_latency.py [--seconds 30] [--rates 100 1000] [--writers 4] [--paired-seconds 60]

Latency: writer processes insert single-event transactions at a sustained rate (paced, each its
own connection, as the service role); one consumer process subscribes to the feed (worker/feed/subscription.py)
and stamps each event on arrival. Reported: commit-to-consumer (writer's commit acknowledged ->
consumer has the event; can be slightly negative, the consumer may be told first) and
send-to-consumer (insert sent -> consumer has it), p50/p95/p99/max, plus lost and repeated events.

Writer cost, two ways, over three databases that grow alike: one without the feed (the
migrations, then the feed's columns, index and triggers removed), one with it, one with it and a
consumer reading. Workloads: one event per bare statement (the cheapest write, so the feed's
largest share), one event per PostgREST-style request with RLS (the app), 1000 events per
statement (an import).
- Write-path cost: each writer alternates one write with the feed and one without, in random
  order, timing each. Both halves of a pair meet the same moment's load, so the ratio holds still
  on a machine whose speed drifts (a 2-core VM's does, by 10-30% between 5-second rounds).
- Throughput: unpaced writers in alternating 5-second rounds per configuration; this is where a
  consumer's own CPU shows, as it competes with the writers for the machine. Reported: median
  throughput, the median of its ratio to "no feed" in the same round, and, when the server is
  local, the writers' server backends' CPU per event.

Creates its own databases on the server of DATABASE_URL (default: postgres@127.0.0.1:5432) and
drops them at the end; touches nothing else. Other activity on the machine shows in the figures:
run it on a quiet one.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import scratch_database

from events_schema.db import connect
from events_schema.postgrest import claims_for, request
from worker.feed import Feed

# The schema as it would be without the feed (20261126100400 undone): no column, index, triggers.
WITHOUT_FEED = """
drop trigger engagement_feed_stamp_updates on engagement_events;
drop trigger engagement_feed_wake_after_inserts on engagement_events;
drop trigger engagement_feed_wake_after_updates on engagement_events;
alter table engagement_events drop column feed_xid, drop column feed_seq;
"""
USERS = "insert into auth.users (id, email) select gen_random_uuid(), 'bench' || g || '@example.com' from generate_series(1, 1000) g returning id"
INSERT = "insert into engagement_events (id, user_id, event_type, value) values (%s, %s, 'app_open', %s)"
BULK_INSERT = """
insert into engagement_events (user_id, event_type, "timestamp", value)
select u, 'steps_import', now() - (g || ' minutes')::interval, jsonb_build_object('steps', g, 'source', 'bench')
from unnest(%s::uuid[]) with ordinality as t(u, g)
"""


def _writer_connection(url: str) -> Any:
    """Writes as the service role: one statement per event, the cheapest path, so the feed's
    share of the cost is the largest it can be."""
    conn = connect(url, autocommit=True)
    conn.execute("set role service_role")
    return conn


def paced_writer(
    url: str, users: list[str], rate: float, offset: float, seconds: float, barrier: Any, out: Any
) -> None:
    """Inserts at `rate` per second once every process is ready; reports (id, sent, acked)."""
    rng = random.Random()
    records = []
    with _writer_connection(url) as conn:
        barrier.wait()
        start = time.monotonic() + offset
        k = 0
        while True:
            due = start + k / rate
            if due >= start + seconds:
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            event_id = uuid.uuid4()
            sent = time.monotonic()
            conn.execute(INSERT, (event_id, rng.choice(users), Jsonb({"k": k})))
            records.append((str(event_id), sent, time.monotonic()))
            k += 1
    out.put(records)


CONSUMER_APP = "feed_bench_consumer"


def consumer(url: str, ready: Any, stop: Any, out: Any) -> None:
    """Subscribes from now and stamps every event on arrival, until told to stop and drained.
    Reports (arrivals, its own CPU seconds until told to stop)."""
    received = []
    with Feed(f"{url}?application_name={CONSUMER_APP}").subscribe() as subscription:
        ready.set()
        started = time.process_time()
        while not stop.is_set():
            batch = subscription.next_batch(timeout=0.1)
            now = time.monotonic()
            received += [(str(event.id), now) for event in batch]
        cpu = time.process_time() - started
        while batch := subscription.next_batch(timeout=1.0):
            received += [(str(event.id), time.monotonic()) for event in batch]
    out.put((received, cpu))


def _consumer_backend_cpu(url: str) -> float | None:
    """CPU seconds of the consumer's server backend so far (None where /proc cannot tell)."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute("select pid from pg_stat_activity where application_name = %s", (CONSUMER_APP,)).fetchone()
    return None if row is None else _cpu_seconds(row[0])


def _cpu_seconds(pid: int) -> float | None:
    """CPU time of a local process (a server backend), or None where /proc cannot tell."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write(conn: Any, workload: str, users: list[str], rng: random.Random, k: int) -> int:
    """One write of the workload; returns how many events it wrote."""
    if workload == "bulk":
        conn.execute(BULK_INSERT, ([rng.choice(users) for _ in range(1000)],))
        return 1000
    user = rng.choice(users)
    if workload == "api":
        with request(conn, "authenticated", claims_for("authenticated", user)):
            conn.execute(INSERT, (uuid.uuid4(), user, Jsonb({"k": k})))
    else:
        conn.execute(INSERT, (uuid.uuid4(), user, Jsonb({"k": k})))
    return 1


def unpaced_writer(databases: dict[str, tuple[str, list[str]]], commands: Any, barrier: Any, out: Any) -> None:
    """Runs (seconds, workload, database) commands: as many inserts as it can, starting with the
    others. `databases` maps a name to (url, user ids); one connection to each, kept throughout.

    Workloads: "single" (one event per autocommit statement, service role), "api" (one event per
    PostgREST-style request: the user's role and claims, RLS checks the insert), "bulk" (1000
    events per statement, as an import). Reports (events, its server backend's CPU seconds or
    None, its own CPU seconds) per command.
    """
    rng = random.Random()
    with ExitStack() as stack:
        conns = {name: stack.enter_context(_writer_connection(url)) for name, (url, _) in databases.items()}
        for seconds, workload, name in iter(commands.get, None):
            conn, users = conns[name], databases[name][1]
            backend = conn.info.backend_pid
            if workload != "bulk":
                barrier.wait()
            server, client = _cpu_seconds(backend), time.process_time()
            count = 0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                count += _write(conn, workload, users, rng, count)
            after = _cpu_seconds(backend)
            out.put((count, None if server is None or after is None else after - server, time.process_time() - client))


def interleaved_writer(
    databases: dict[str, tuple[str, list[str]]], workload: str, seconds: float, barrier: Any, out: Any
) -> None:
    """Alternates one write to the database with the feed and one to the database without, in a
    random order per pair, timing each: both halves of a pair meet the same moment's load, so
    drifts of the machine's speed cancel. Reports ({name: [seconds per write]}, events per write)."""
    rng = random.Random()
    names = ["with", "without"]
    times: dict[str, list[float]] = {name: [] for name in names}
    per_write = 0
    with ExitStack() as stack:
        conns = {name: stack.enter_context(_writer_connection(databases[name][0])) for name in names}
        barrier.wait()
        end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < end:
            rng.shuffle(names)
            for name in names:
                started = time.perf_counter()
                per_write = _write(conns[name], workload, databases[name][1], rng, k)
                times[name].append(time.perf_counter() - started)
            k += 1
    out.put((times, per_write))


def measure_write_cost(ctx: Any, databases: dict[str, tuple[str, list[str]]], seconds: float, writers: int) -> None:
    """The feed's cost on the write path: paired writes with and without it, per workload."""
    for workload, mode in (
        ("single-event statements", "single"),
        ("single-event API requests (RLS)", "api"),
        ("1000-event statements", "bulk"),
    ):
        count = 1 if mode == "bulk" else writers
        out, barrier = ctx.Queue(), ctx.Barrier(count)
        procs = [
            ctx.Process(target=interleaved_writer, args=(databases, mode, seconds, barrier, out)) for _ in range(count)
        ]
        for proc in procs:
            proc.start()
        reports = [out.get() for _ in procs]
        for proc in procs:
            proc.join()
        per_write = reports[0][1]
        with_feed = [t for times, _ in reports for t in times["with"]]
        without = [t for times, _ in reports for t in times["without"]]
        # Blocks of consecutive pairs (per writer) show how steady the ratio is.
        size = 200 if per_write == 1 else 20
        blocks = sorted(
            sum(times["with"][i : i + size]) / sum(times["without"][i : i + size])
            for times, _ in reports
            for i in range(0, len(times["with"]) - size + 1, size)
        )
        spread = (
            f"blocks of {size} pairs: {blocks[0]:.3f}-{blocks[-1]:.3f}, median {statistics.median(blocks):.3f}"
            if blocks
            else "too few pairs for blocks"
        )
        mean_with = statistics.fmean(with_feed) / per_write * 1e6
        mean_without = statistics.fmean(without) / per_write * 1e6
        print(
            f"  {workload} ({count} writer{'s' if count > 1 else ''}, {len(with_feed)} pairs): "
            f"{mean_without:.1f} us per event and writer without the feed, {mean_with:.1f} with; "
            f"time ratio {mean_with / mean_without:.3f} (throughput x{mean_without / mean_with:.3f}); {spread}"
        )


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


def measure_latency(ctx: Any, url: str, users: list[str], rate: float, seconds: float, writers: int) -> None:
    out, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    reader = ctx.Process(target=consumer, args=(url, ready, stop, out))
    reader.start()
    ready.wait(60)
    window, backend_before = time.monotonic(), _consumer_backend_cpu(url)
    barrier = ctx.Barrier(writers)
    procs = [
        ctx.Process(target=paced_writer, args=(url, users, rate / writers, i / rate, seconds, barrier, out))
        for i in range(writers)
    ]
    for proc in procs:
        proc.start()
    written: dict[str, tuple[float, float]] = {}
    for _ in procs:
        written.update({event_id: (sent, acked) for event_id, sent, acked in out.get()})
    for proc in procs:
        proc.join()
    time.sleep(0.5)
    stop.set()
    window, backend_after = time.monotonic() - window, _consumer_backend_cpu(url)
    received, client_cpu = out.get()
    reader.join()
    arrivals = dict(received)
    lost = len(set(written) - set(arrivals))
    repeated = len(received) - len(arrivals)
    commit = [arrivals[i] - acked for i, (_, acked) in written.items() if i in arrivals]
    send = [arrivals[i] - sent for i, (sent, _) in written.items() if i in arrivals]
    c, s = _percentiles(commit), _percentiles(send)
    print(
        f"  {rate:>6.0f} ev/s target, {len(written) / seconds:>6.0f} achieved, {len(written)} events, "
        f"lost {lost}, repeated {repeated}"
    )
    print("          commit->consumer ms: " + "  ".join(f"{k} {v:7.2f}" for k, v in c.items()))
    print("          send->consumer   ms: " + "  ".join(f"{k} {v:7.2f}" for k, v in s.items()))
    server = (
        ""
        if backend_before is None or backend_after is None
        else f", its server backend {100 * (backend_after - backend_before) / window:.1f}%"
    )
    print(f"          consumer CPU, share of one core: client {100 * client_cpu / window:.1f}%{server}")


def measure_throughput(
    ctx: Any, databases: dict[str, tuple[str, list[str]]], seconds: float, writers: int, rounds: int
) -> None:
    """Alternating rounds per workload; long-lived writer processes, a consumer only when asked."""
    configs = {"no feed": "without", "feed": "with", "feed + consumer": "consumed"}
    order = list(configs)
    workloads = (
        ("single-event statements", "single"),
        ("single-event API requests (RLS)", "api"),
        ("1000-event statements", "bulk"),
    )
    rates: dict[tuple[str, str], list[float]] = {}
    server_cpu: dict[tuple[str, str], list[float]] = {}
    out, barrier = ctx.Queue(), ctx.Barrier(writers)
    commands = [ctx.Queue() for _ in range(writers)]
    pool = [ctx.Process(target=unpaced_writer, args=(databases, commands[i], barrier, out)) for i in range(writers)]
    for proc in pool:
        proc.start()
    for round_no in range(rounds):
        for workload, mode in workloads:
            for config in order[round_no % 3 :] + order[: round_no % 3]:  # rotate the order
                name = configs[config]
                url = databases[name][0]
                with connect(url, autocommit=True) as owner:
                    owner.execute("checkpoint")
                ready, stop, arrivals = ctx.Event(), ctx.Event(), ctx.Queue()
                reader = None
                if config == "feed + consumer":
                    reader = ctx.Process(target=consumer, args=(url, ready, stop, arrivals))
                    reader.start()
                    ready.wait(60)
                active = commands[:1] if mode == "bulk" else commands
                for queue in active:
                    queue.put((seconds, mode, name))
                reports = [out.get() for _ in active]
                if reader is not None:
                    stop.set()
                    arrivals.get()
                    reader.join()
                events = sum(count for count, _, _ in reports)
                rates.setdefault((workload, config), []).append(events / seconds)
                if all(cpu is not None for _, cpu, _ in reports):
                    server_cpu.setdefault((workload, config), []).append(
                        sum(cpu for _, cpu, _ in reports) / events * 1e6
                    )
    for queue in commands:
        queue.put(None)
    for proc in pool:
        proc.join()
    for workload, mode in workloads:
        print(f"  {workload} ({1 if mode == 'bulk' else writers} writer{'' if mode == 'bulk' else 's'}):")
        base = rates[(workload, "no feed")]
        for config in order:
            runs = rates[(workload, config)]
            paired = sorted(r / b for r, b in zip(runs, base, strict=False))  # same round: drifting load cancels
            cpu = server_cpu.get((workload, config))
            print(
                f"    {config:<16} median {statistics.median(runs):>7.0f} ev/s  same-round ratio median "
                f"{statistics.median(paired):5.3f} (range {paired[0]:.2f}-{paired[-1]:.2f})"
                + (f"  server CPU {statistics.median(cpu):5.1f} us/event" if cpu else "")
            )


def _users(url: str) -> list[str]:
    with connect(url, autocommit=True) as conn:
        return [str(row[0]) for row in conn.execute(USERS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="per latency run (default 30)")
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 1000], help="events/s (default 100 1000)")
    parser.add_argument("--writers", type=int, default=4, help="writer processes (default 4)")
    parser.add_argument("--throughput-seconds", type=float, default=5, help="per throughput round (default 5)")
    parser.add_argument("--rounds", type=int, default=6, help="throughput rounds (default 6)")
    parser.add_argument(
        "--paired-seconds",
        type=float,
        default=60,
        help="per workload of paired writes with and without the feed (default 60)",
    )
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    # One database per configuration, so that each table grows by the same writes: a table that
    # grew twice as fast would be slower for its size alone (indexes outgrowing shared buffers).
    with (
        scratch_database("feed_bench") as url,
        scratch_database("feed_bench_off") as url_off,
        scratch_database("feed_bench_consumed") as url_consumed,
    ):
        with connect(url_off, autocommit=True) as conn:
            conn.execute(WITHOUT_FEED)
            version = conn.execute("show server_version").fetchone()[0]
        databases = {
            name: (u, _users(u)) for name, u in (("with", url), ("without", url_off), ("consumed", url_consumed))
        }
        print(
            f"PostgreSQL {version}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
            f"{args.writers} writer processes"
        )
        print(f"commit-to-consumer latency, {args.seconds:.0f} s per rate:")
        for rate in args.rates:
            measure_latency(ctx, url, databases["with"][1], rate, args.seconds, args.writers)
        print(f"write-path cost, paired writes with and without the feed, {args.paired_seconds:.0f} s per workload:")
        measure_write_cost(ctx, databases, args.paired_seconds, args.writers)
        print(f"insert throughput, {args.rounds} alternating rounds of {args.throughput_seconds:.0f} s:")
        measure_throughput(ctx, databases, args.throughput_seconds, args.writers, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
