"""`python -m bench`: every figure of issue 14 measured on one dataset per size, in one run.

Run by hand, never in CI (a test runs it at a tiny size so it cannot rot). Per size it builds a
database of --users users with --events-per-user events each (or reuses one, --reuse NAME), then
measures on that same data: the GROUP BY baseline and the full scan deciding only; the full scan
writing every due nudge against plain COPY of those rows; a simulated day of beats; import against
plain COPY (bench/import_throughput.py, on a database of its own); inserts against a bare table;
the Realtime broadcast trigger's cost to writers (bench/broadcast.py); a beat's worth of writes
and the fold of them (bench/fold.py); the full scan's and the importer's peak memory. It prints one table (ratios are within the run) and writes --json
and --png. `python -m bench compare A.json B.json` prints B / A for every figure;
`python -m bench render RUN.json [--readme] [--png FILE.png]` prints a run's table again and
rewrites the copies in README.md and docs/scaling.md, and the chart, from the JSON alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import broadcast, data, fold, inserts, report, scans, simulate

# The steps of a size, in the order they run; --skip names them.
STEPS = ("baseline", "full", "copy", "beats", "capped", "inserts", "broadcast", "fold", "replay", "import")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--users", type=int, default=100_000, help="users of the dataset (default 100000)")
    p.add_argument("--sizes", help="several sizes in one run, e.g. 10000,100000,1000000 (overrides --users)")
    p.add_argument("--events-per-user", type=int, default=30)
    p.add_argument(
        "--reuse",
        metavar="NAME",
        help="database to reuse, built and kept under this name if missing (with several sizes: NAME_<users>)",
    )
    p.add_argument("--keep", action="store_true", help="keep a database built for this run")
    p.add_argument("--beats", type=int, default=96, help="incremental scans of the simulated day (15 min apart)")
    p.add_argument(
        "--max-nudges-per-scan",
        type=int,
        metavar="N",
        help="run the day again under NUDGE_MAX_PER_SCAN=N (0: skip; default: twice the "
        "uncapped day's mean nudges per beat, so the cap spreads waves without falling behind)",
    )
    p.add_argument(
        "--import-events", type=int, help="events the import measure imports (default 10 per user, at most 1,000,000)"
    )
    p.add_argument("--single-rows", type=int, default=2000, help="single-row inserts per side")
    p.add_argument("--insert-batches", type=int, default=20, help="1,000-row batches per side and case")
    p.add_argument(
        "--skip",
        default="",
        metavar="STEP,...",
        help="leave these steps out (their rows show '-'): " + ", ".join(STEPS),
    )
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--png", type=Path, help="draw the figures here")
    return p


def measure_size(args: argparse.Namespace, users: int, several: bool) -> dict[str, Any]:
    from events_schema.settings import get_settings

    name = f"{args.reuse}_{users}" if args.reuse and several else args.reuse
    result: dict[str, Any] = {}
    with data.dataset(users, args.events_per_user, name, args.keep) as (url, reused):
        if reused:
            data.reset_engine(url)
            result.update(data.shape(url))
        else:
            result.update(data.fill(url, users, args.events_per_user))
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        from worker.database import dispose_engines

        dispose_engines()
        for key, step, measure in (
            ("baseline", "baseline", lambda: scans.baseline(url)),
            ("full", "full scans", lambda: scans.full_scans(url)),
            ("copy", "COPY of the nudges", lambda: scans.copy_nudges(url)),
            ("beats", f"{args.beats} beats", lambda: scans.day_of_beats(args.beats)),
            (
                "capped",
                f"{args.beats} beats capped",
                lambda: (
                    scans.capped_day(url, args.beats, _cap(args.max_nudges_per_scan, result, args.beats))
                    if args.max_nudges_per_scan != 0
                    else {}
                ),
            ),
            ("inserts", "inserts", lambda: inserts.measure_inserts(url, args.single_rows, args.insert_batches)),
            ("broadcast", "broadcast", lambda: broadcast.measure_broadcast(url, args.single_rows, args.insert_batches)),
            (
                "fold",
                "a beat's writes and their fold",
                lambda: fold.measure_fold(url, result["users"], args.events_per_user),
            ),
            # Read only: the replay of the 30 days before NOW (bench/simulate.py; the capped one there).
            ("replay", "replay of 30 days", lambda: simulate.measure(url, capped=False)),
        ):
            if key in args.skip:
                continue
            start = time.perf_counter()
            result.update(measure())
            print(f"  {users:,} users: {step} measured in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        dispose_engines()
    from bench.import_throughput import measure_import
    from bench.scratch import scratch_database

    if "import" in args.skip:
        return result
    events = args.import_events or min(10 * users, 1_000_000)
    with scratch_database("bench_import") as url:
        result.update(measure_import(url, max(1, min(users, 10_000)), events))
    return result


def _cap(given: int | None, measured: dict[str, Any], beats: int) -> int:
    """The cap for the capped day: as given, or twice the uncapped day's mean nudges per beat."""
    return given if given is not None else max(1, -(-2 * measured["day_nudged"] // beats))


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.users]
    with psycopg.connect(_admin_conninfo(), connect_timeout=5) as conn:
        version = conn.execute("select version()").fetchone()[0]
        shared_buffers = conn.execute("show shared_buffers").fetchone()[0]
    result: dict[str, Any] = {
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "code": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "postgres": version,
            "shared_buffers": shared_buffers,
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": [],
    }
    for done, users in enumerate(sizes, 1):
        result["sizes"].append(
            {
                "users_requested": users,
                "events_per_user": args.events_per_user,
                **measure_size(args, users, len(sizes) > 1),
            }
        )
        # Smallest first in the table and the chart, whatever order they were measured in (the
        # largest first puts the figures that matter most in the partial JSON soonest).
        result["sizes"].sort(key=lambda size: size["users"])
        result["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        if args.json and done < len(sizes):
            # The sizes measured so far, so a long run that is stopped still leaves its figures.
            args.json.write_text(json.dumps({**result, "partial": True}, indent=1, default=str))
    print(report.table(result))
    print(broadcast.summary(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    if args.png:
        report.draw(result, args.png)
    return 0


def _commit() -> str | None:
    """The commit the measured code is at (with '+' if the worktree has changes), for compare."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    except OSError:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def _admin_conninfo() -> str:
    from sqlalchemy.engine import make_url

    from events_schema.db import conninfo
    from events_schema.settings import get_settings

    return conninfo(
        make_url(get_settings().database_url).set(database="postgres").render_as_string(hide_password=False)
    )


def render(argv: list[str]) -> int:
    """The table (and chart) of a finished run, from its JSON alone: README and docs cannot drift."""
    p = argparse.ArgumentParser(
        prog="python -m bench render", description="print a run's table from its JSON; rewrite the docs' copies"
    )
    p.add_argument("run", type=Path, help="the --json file of a run (docs/bench/scaling.json)")
    p.add_argument(
        "--readme",
        action="store_true",
        help="rewrite the generated tables of README.md (short) and docs/scaling.md (full)",
    )
    p.add_argument("--png", type=Path, metavar="FILE.png", help="draw the chart here")
    args = p.parse_args(argv)
    run = json.loads(args.run.read_text(encoding="utf-8"))
    print(report.table(run))
    if args.readme:
        root = Path(__file__).resolve().parent.parent
        for page, short in ((root / "README.md", True), (root / "docs" / "scaling.md", False)):
            changed = report.rewrite(page, report.table(run, readme=short))
            print(f"{'rewrote' if changed else 'unchanged:'} {page.relative_to(root)}", file=sys.stderr)
    if args.png:
        report.draw(run, args.png)
        print(f"wrote {args.png}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["render"]:
            return render(argv[1:])
        if argv[:1] == ["compare"]:
            p = argparse.ArgumentParser(
                prog="python -m bench compare", description="B / A for every figure of two runs"
            )
            p.add_argument("a", type=Path)
            p.add_argument("b", type=Path)
            ab = p.parse_args(argv[1:])
            print(report.compare(ab.a, ab.b))
            return 0
        args = _parser().parse_args(argv)
        args.skip = [step for step in args.skip.split(",") if step]
        if unknown := [step for step in args.skip if step not in STEPS]:
            raise ValueError(f"--skip: no step {', '.join(unknown)} (steps: {', '.join(STEPS)})")
        if any(n <= 0 for n in ([int(s) for s in args.sizes.split(",")] if args.sizes else [args.users])):
            raise ValueError("sizes must be positive integers")
        return run(args)
    except (ValueError, OSError, json.JSONDecodeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (psycopg.Error, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"database: {first}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
