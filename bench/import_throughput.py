"""Benchmark: `python -m worker import` of an NDJSON file against a plain COPY of the same rows.

Run by hand (never in tests):  .venv/bin/python bench/import_throughput.py --events 1000000
It creates its own database on the server of DATABASE_URL (default: loopback) with --users
users, writes the events as NDJSON and, for the baseline, the same rows (same ids) as COPY text,
then measures, each into an empty table:
  1. plain COPY into an identical table: the same columns, defaults, checks, indexes (GIN and
     partial ones included) and the foreign key to auth.users, but no triggers;
  2. the same with the event table's insert triggers attached (last activity, feed wake-ups);
  3. the CLI into engagement_events itself (validation, ids, ON CONFLICT, the unknown-user check,
     triggers), run as a subprocess so its peak memory (max RSS) is its own.
It prints events/s and ratios, then drops the database (--keep to keep it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proc import run_measured
from bench.scratch import scratch_database
from events_schema.db import connect
from worker.ingest.rows import derive_event_id

BATCH_ID = "bench"
# The kinds of events a wearable/app sync sends, with plausible payloads.
KINDS = [
    ("app_open", lambda r: {}),
    ("app_open", lambda r: {"screen": r.choice(["home", "goals", "coach"])}),
    (
        "steps_import",
        lambda r: {"steps": r.randrange(200, 20000), "source": r.choice(["fitbit", "apple_health", "garmin"])},
    ),
    ("goal_complete", lambda r: {"goal": r.choice(["walk_10k", "sleep_8h", "water_2l"]), "streak": r.randrange(1, 60)}),
    ("coach_message", lambda r: {"message_id": r.randrange(1, 10**9), "read": r.random() < 0.7}),
]
COPY_COLUMNS = 'id, user_id, "timestamp", event_type, value, is_deleted'
# The event table's own insert triggers (whatever the migrations define), to copy onto a twin.
INSERT_TRIGGERS = """
select pg_get_triggerdef(oid) from pg_trigger
where tgrelid = 'public.engagement_events'::regclass and not tgisinternal and tgtype & 4 <> 0
order by tgname
"""
# What those triggers write besides the events, emptied before the CLI's turn (with the
# per-user summary, engagement_users.last_activity_at).
TRIGGER_OUTPUTS = """
select string_agg(format('%I.%I', schemaname, tablename), ', ') from pg_tables
where schemaname = 'public' and tablename in ('engagement_last_activity')
"""


def copy_text(value: str) -> str:
    """A field in COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_inputs(folder: Path, users: list[str], count: int, now: datetime) -> tuple[Path, Path]:
    """The NDJSON file for the CLI and the same rows, with the ids the CLI derives, for COPY."""
    rng = random.Random(42)
    ndjson, tsv = folder / "events.ndjson", folder / "events.tsv"
    with ndjson.open("w") as events, tsv.open("w") as rows:
        for line in range(1, count + 1):
            event_type, payload = rng.choice(KINDS)
            stamp = (now - timedelta(seconds=rng.randrange(30 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")
            user, value = rng.choice(users), json.dumps(payload(rng), separators=(",", ":"))
            events.write(f'{{"user_id":"{user}","event_type":"{event_type}","timestamp":"{stamp}","value":{value}}}\n')
            rows.write(f"{derive_event_id(BATCH_ID, line)}\t{user}\t{stamp}\t{event_type}\t{copy_text(value)}\tf\n")
    return ndjson, tsv


def copy_into(url: str, table: str, tsv: Path) -> float:
    """Seconds to COPY the file into `table` from this client, in one transaction."""
    with connect(url) as conn:
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"copy {table} ({COPY_COLUMNS}) from stdin") as copy,
            tsv.open("rb") as source,
        ):
            for block in iter(lambda: source.read(1 << 20), b""):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - start


def checkpoint(url: str) -> None:
    """Start each measurement with no pending checkpoint work from the previous one."""
    with connect(url, autocommit=True) as conn:
        conn.execute("checkpoint")


def measure_import(url: str, users_count: int, events: int, batch_size: int | None = None) -> dict[str, Any]:
    """On a migrated, empty database: plain COPY, COPY with the insert triggers, and the CLI,
    each into an empty table, with the same rows; events per second and the CLI's peak memory.
    `batch_size`: the CLI's --batch-size (rows per transaction and statement; default
    IMPORT_CHUNK_SIZE)."""
    now = datetime.now(UTC).replace(microsecond=0)
    with connect(url, autocommit=True) as conn:
        users = [
            str(r[0])
            for r in conn.execute(
                "insert into auth.users (id) select gen_random_uuid() from generate_series(1, %s) returning id",
                (users_count,),
            )
        ]
        # The identical empty tables: LIKE ... INCLUDING ALL copies columns, defaults, checks
        # and indexes; the foreign key is added by hand; triggers are never copied.
        for table in ("bench_copy", "bench_copy_triggers"):
            conn.execute(f"create table {table} (like public.engagement_events including all)")
            conn.execute(f"alter table {table} add foreign key (user_id) references auth.users (id) on delete cascade")
        triggers = conn.execute(INSERT_TRIGGERS).fetchall()
        for (definition,) in triggers:
            conn.execute(definition.replace(" ON public.engagement_events ", " ON bench_copy_triggers "))

    with tempfile.TemporaryDirectory(prefix="bench_import_") as folder:
        start = time.perf_counter()
        ndjson, tsv = write_inputs(Path(folder), users, events, now)
        size_mb = ndjson.stat().st_size / 1e6
        written_s = time.perf_counter() - start

        checkpoint(url)
        plain = copy_into(url, "bench_copy", tsv)
        checkpoint(url)
        with_triggers = copy_into(url, "bench_copy_triggers", tsv)
        # The triggers wrote activity rows for the baseline's events: start clean.
        with connect(url, autocommit=True) as conn:
            conn.execute(f"truncate {conn.execute(TRIGGER_OUTPUTS).fetchone()[0]}")
            conn.execute("update public.engagement_users set last_activity_at = null")
        checkpoint(url)

        start = time.perf_counter()
        cli = run_measured(
            [
                *(sys.executable, "-m", "worker", "import", str(ndjson), "--batch-id", BATCH_ID, "--json"),
                *(("--batch-size", str(batch_size)) if batch_size else ()),
            ],
            {**os.environ, "DATABASE_URL": url},
        )
        imported = time.perf_counter() - start
        peak_mb = cli.max_rss_mb
    if cli.returncode != 0:
        raise RuntimeError(f"the import failed ({cli.returncode}):\n{cli.stdout}{cli.stderr}")
    summary = json.loads(cli.stdout)
    with connect(url, autocommit=True) as conn:
        same = conn.execute(
            "select (select count(*) from engagement_events) = (select count(*) from bench_copy)"
            " and not exists (select id from engagement_events except select id from bench_copy)"
        ).fetchone()[0]
    return {
        "import_events": events,
        "import_users": users_count,
        "import_mb": size_mb,
        "import_write_s": written_s,
        "copy_per_s": events / plain,
        "copy_triggers_per_s": events / with_triggers,
        "import_per_s": events / imported,
        "import_peak_rss_mb": peak_mb,
        "import_same_rows": same,
        "import_triggers": len(triggers),
        "import_summary": summary,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--batch-size", type=int, help="the CLI's --batch-size: rows per transaction (default IMPORT_CHUNK_SIZE)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with scratch_database("bench_import", keep=args.keep) as url:
        try:
            m = measure_import(url, args.users, args.events, args.batch_size)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    summary = m["import_summary"]
    print(
        f"{args.events:,} events for {args.users:,} users: {m['import_mb']:,.0f} MB of NDJSON "
        f"(written in {m['import_write_s']:.0f} s)"
    )
    print(f"plain COPY, identical table (columns, checks, indexes, FK; no triggers): {m['copy_per_s']:10,.0f} events/s")
    print(
        f"plain COPY, identical table with its {m['import_triggers']} insert triggers:          "
        f"{m['copy_triggers_per_s']:10,.0f} events/s"
    )
    print(
        f"python -m worker import into engagement_events ({args.batch_size or 'IMPORT_CHUNK_SIZE'} rows a chunk): "
        f"{m['import_per_s']:10,.0f} events/s  "
        f"(inserted {summary['inserted']:,}, duplicates {summary['duplicates']:,}, rejected {summary['rejected']:,})"
    )
    print(
        f"import / plain COPY: {m['import_per_s'] / m['copy_per_s']:.2f}; "
        f"import / COPY with triggers: {m['import_per_s'] / m['copy_triggers_per_s']:.2f}"
    )
    print(
        f"CLI peak memory (max RSS): {m['import_peak_rss_mb']:,.0f} MB; same rows and ids as the COPY: {m['import_same_rows']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
