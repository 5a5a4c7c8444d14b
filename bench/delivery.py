"""Push delivery benchmark (issue 23): the dispatcher against a loopback FCM that answers after 50 ms.

    python -m bench.delivery [--nudges 20000] [--wave 64000] [--rate 500] [--seconds 20] [--delay 0.05]

Run by hand, never in CI. On a scratch database (DATABASE_URL's server), with one device token
per user and FCM played by bench/fcm_stub.py in a process of its own:
- baseline: a bare aiohttp client posting the same FCM requests to the same stub, with the same
  concurrency, no database: the HTTP ceiling of this machine;
- throughput: --nudges nudge_sent committed, then one dispatcher drains them (feed read, tokens,
  sends, outcomes, cursor): nudges/s, and its ratio to the baseline;
- the 08:00 wave: --wave nudges committed in one transaction (one beat of the 1M-user day), then
  `python -m worker deliver --once` in a process of its own: seconds from commit to every
  outcome recorded (process start included), that process's peak memory, and its CPU time per
  nudge (nudges per CPU-second: what one core can send, whatever else the machine runs);
- latency: `python -m worker deliver` (the long-running consumer) while a writer commits --rate
  nudges a second for --seconds: commit-to-provider p50/p95/p99/max (the writer's commit
  acknowledged -> the stub has the request), and the consumer's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.scratch import scratch_database
from events_schema.db import connect
from events_schema.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "bench-project"


def start_stub(delay: float) -> tuple[subprocess.Popen[str], str]:
    stub = subprocess.Popen(
        [sys.executable, "-m", "bench.fcm_stub", "--delay", str(delay)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert stub.stdout is not None
    port = int(stub.stdout.readline())
    return stub, f"http://127.0.0.1:{port}"


def key_file(folder: Path, base: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = folder / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "bench",
                "private_key": pem.decode(),
                "client_email": f"bench@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{base}/token",
            }
        )
    )
    return path


def stats(base: str, forget: bool = False) -> dict[str, list[float]]:
    request = urllib.request.Request(f"{base}/stats", method="DELETE" if forget else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()).get("arrivals", {}))


async def baseline(base: str, count: int, concurrency: int) -> float:
    """Requests/s of a bare client: the same bodies, the same concurrency, nothing else."""
    url = f"{base}/v1/projects/{PROJECT}/messages:send"
    slots = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        body = {
            "message": {"token": f"t{i}", "notification": {"title": "t", "body": "b"}, "data": {"nudge_id": f"b{i}"}}
        }
        async with slots, session.post(url, json=body, headers={"Authorization": "Bearer x"}) as response:
            await response.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, i) for i in range(count)))
        return count / (time.perf_counter() - started)


def add_users(url: str, count: int) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, created_at) select gen_random_uuid(), now() - interval '7 days'"
            " from generate_series(1, %s)",
            (count,),
        )
        conn.execute(
            "insert into device_tokens (user_id, token, platform) select id, 'tok-' || id, 'android' from auth.users"
        )
        conn.execute("analyze")


def add_nudges(url: str, count: int, phase: str, offset: int = 0) -> tuple[list[str], float]:
    """`count` nudges in one transaction (users from `offset` on); their ids, and the commit's time."""
    with connect(url) as conn:
        ids = [
            str(row[0])
            for row in conn.execute(
                "insert into engagement_events (user_id, event_type, value)"
                " select id, 'nudge_sent', jsonb_build_object('rule', 'inactive_48h', 'threshold_hours', 48,"
                " 'last_active_at', %s::text, 'scan_id', 'bench')"
                " from (select id from auth.users order by id offset %s limit %s) u returning id",
                (phase, offset, count),
            )
        ]
        conn.commit()
        return ids, time.time()


def outcomes(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "select count(*) from engagement_events where event_type in ('nudge_delivered', 'nudge_failed')"
        ).fetchone()
        return int(row[0]) if row else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.split("\n")[0])
    parser.add_argument("--nudges", type=int, default=20_000)
    parser.add_argument("--wave", type=int, default=64_000)
    parser.add_argument("--rate", type=float, default=500, help="nudges a second in the latency run")
    parser.add_argument("--seconds", type=float, default=20, help="length of the latency run")
    parser.add_argument("--delay", type=float, default=0.05, help="the stub's answer time")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    stub, base = start_stub(args.delay)
    figures: dict[str, Any] = {"delay_s": args.delay}
    folder = Path(tempfile.mkdtemp())
    try:
        with scratch_database("bench_delivery") as url:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": url,
                "DELIVERY_PROVIDER": "fcm",
                "FCM_CREDENTIALS_FILE": str(key_file(folder, base)),
                "FCM_ENDPOINT": f"{base}/v1/projects/{{project_id}}/messages:send",
            }
            os.environ.update(env)
            get_settings.cache_clear()
            settings = get_settings()
            concurrency = settings.delivery_concurrency
            figures["concurrency"], figures["batch_size"] = concurrency, settings.delivery_batch_size
            add_users(url, max(args.nudges, args.wave))

            figures["load_average"] = os.getloadavg()[0]
            figures["baseline_per_s"] = asyncio.run(baseline(base, args.nudges, concurrency))
            stats(base, forget=True)

            from worker.delivery.dispatcher import Dispatcher

            dispatcher = Dispatcher(settings)
            dispatcher.run()  # the cursor starts here
            add_nudges(url, args.nudges, "throughput")
            started = time.perf_counter()
            summary = dispatcher.run()
            seconds = time.perf_counter() - started
            assert summary.delivered == args.nudges, summary.log_line()
            figures["throughput_per_s"] = args.nudges / seconds
            figures["throughput_vs_baseline"] = figures["throughput_per_s"] / figures["baseline_per_s"]
            stats(base, forget=True)

            _, committed = add_nudges(url, args.wave, "wave")
            before = outcomes(url)
            wave = subprocess.Popen(
                [sys.executable, "-m", "worker", "deliver", "--once"], env=env, stdout=subprocess.DEVNULL
            )
            _, status, usage = os.wait4(wave.pid, 0)
            done = time.time()
            assert os.waitstatus_to_exitcode(status) == 0
            wave.returncode = 0  # already reaped
            assert outcomes(url) - before == args.wave
            figures["wave_nudges"], figures["wave_seconds"] = args.wave, done - committed
            figures["wave_peak_mb"] = usage.ru_maxrss / 1024
            # What the dispatcher itself costs, whatever else the machine runs: nudges per CPU-second.
            figures["wave_per_cpu_s"] = args.wave / (usage.ru_utime + usage.ru_stime)
            stats(base, forget=True)

            figures.update(latency(url, env, base, args.rate, args.seconds))
    finally:
        stub.send_signal(signal.SIGINT)
        stub.wait(timeout=30)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def latency(url: str, env: dict[str, str], base: str, rate: float, seconds: float) -> dict[str, Any]:
    """Commit-to-provider latency with the long-running consumer, and its peak memory."""
    with tempfile.TemporaryFile() as err:
        consumer = subprocess.Popen(
            [sys.executable, "-m", "worker", "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        time.sleep(2)  # started, its first pass done
        committed: dict[str, float] = {}
        tick, per_tick = 0.1, max(1, round(rate / 10))
        start, offset = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            ids, at = add_nudges(url, per_tick, f"latency-{offset}", offset=offset % 60_000)
            committed.update(dict.fromkeys(ids, at))
            offset += per_tick
            time.sleep(max(0.0, start + (offset / per_tick) * tick - time.monotonic()))
        deadline = time.monotonic() + 120
        while len(arrived := stats(base)) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.5)
        consumer.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(consumer.pid, 0)
        consumer.returncode = 0
    waits = [arrived[n][0] - at for n, at in committed.items() if n in arrived]
    return {
        "latency_rate_per_s": len(committed) / seconds,
        "latency_nudges": len(committed),
        "latency_missing": len(committed) - len(waits),
        "latency_repeated": sum(len(v) > 1 for v in arrived.values()),
        "latency_p50_s": statistics.median(waits),
        "latency_p95_s": percentile(waits, 95),
        "latency_p99_s": percentile(waits, 99),
        "latency_max_s": max(waits),
        "consumer_peak_mb": usage.ru_maxrss / 1024,
    }


def report(f: dict[str, Any]) -> None:
    rows = [
        ("stub answer time", f"{f['delay_s'] * 1000:.0f} ms; concurrency {f['concurrency']}, batch {f['batch_size']}"),
        ("machine load average at the start (2 cores)", f"{f['load_average']:.1f}"),
        ("baseline: bare aiohttp client, no database (/s)", f"{f['baseline_per_s']:,.0f}"),
        ("dispatcher throughput (nudges/s)", f"{f['throughput_per_s']:,.0f}"),
        ("  dispatcher / baseline", f"x{f['throughput_vs_baseline']:.2f}"),
        (f"08:00 wave: {f['wave_nudges']:,} nudges, commit to last outcome (s)", f"{f['wave_seconds']:.1f}"),
        ("  its `deliver --once` peak memory (MB)", f"{f['wave_peak_mb']:.0f}"),
        ("  its CPU: nudges per CPU-second of the dispatcher", f"{f['wave_per_cpu_s']:,.0f}"),
        (
            f"commit-to-provider at {f['latency_rate_per_s']:,.0f}/s: p50 / p95 / p99 / max (ms)",
            " / ".join(
                f"{f[k] * 1000:.0f}" for k in ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_max_s")
            ),
        ),
        ("  missing / sent twice", f"{f['latency_missing']} / {f['latency_repeated']}"),
        ("  consumer's peak memory (MB)", f"{f['consumer_peak_mb']:.0f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    raise SystemExit(main())
