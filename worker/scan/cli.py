"""`python -m worker scan`: the same scan as the `scan_inactive` task, run in-process, with a
readable table of who is due and why (or the JSON summary). With --via-queue the scan is sent
to the workers instead (as `celery -A worker call scan_inactive` would, but a broker that is down
is one line at once), and --wait prints its outcome in one line."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from events_schema.cli_args import instant, positive_seconds, whole_number
from events_schema.cli_errors import keeping_status
from events_schema.errors import UsageError
from worker.clock import utc_now
from worker.scan.scanner import Decision, ScanSummary, run_scan

# --via-queue --wait: a scan's hard time limit is TASK_TIME_LIMIT_SECONDS (660 s by default).
DEFAULT_WAIT_SECONDS = 900.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=instant, metavar="ISO", help="ISO 8601 instant with offset (default: now)")
    parser.add_argument(
        "--rule",
        action="append",
        dest="rules",
        metavar="NAME",
        help="scan only this rule (repeatable; default: all configured rules)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and report who is due and why, write nothing (a full scan unless --incremental)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--full", action="store_true", default=None, help="examine everyone who may be due, not only recent crossings"
    )
    mode.add_argument(
        "--incremental",
        action="store_false",
        dest="full",
        help="only users who crossed a threshold since the rule's last scan (what the beat runs)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON summary only")
    parser.add_argument("--limit", type=whole_number(0), default=50, help="rows of the table to print (default 50)")
    queued = parser.add_argument_group("through the queue (the workers scan; ops' `celery call`, in one line)")
    queued.add_argument(
        "--via-queue", action="store_true", help="send scan_inactive to the workers instead of scanning here"
    )
    queued.add_argument("--wait", action="store_true", help="wait for the scan's outcome and print it in one line")
    queued.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"--wait: how long to wait for the outcome (default {DEFAULT_WAIT_SECONDS:g})",
    )


def run(args: argparse.Namespace) -> int:
    if args.via_queue:
        return _via_queue(args)
    if args.wait:
        raise UsageError("--wait waits for a scan sent with --via-queue (see python -m worker scan --help)")
    as_of = args.as_of.astimezone(UTC) if args.as_of else utc_now()
    shown: list[Decision] = []
    hidden = 0

    def collect(decision: Decision) -> None:
        nonlocal hidden
        if args.json:
            return
        if len(shown) < args.limit:
            shown.append(decision)
        else:
            hidden += 1

    try:
        summary = run_scan(as_of, rule_names=args.rules, dry_run=args.dry_run, full=args.full, on_decision=collect)
    except ValidationError:  # invalid settings (a ValueError too): described as a setting, in one line
        raise
    except ValueError as exc:  # an unknown --rule
        raise UsageError(str(exc)) from exc
    status = 0 if summary.ran else 1
    with keeping_status(status):
        if args.json:
            print(json.dumps(summary.as_dict(), indent=2))
        else:
            _print_table(shown, hidden, summary, as_of)
    return status


def _print_table(shown: list[Decision], hidden: int, summary: ScanSummary, as_of: datetime) -> None:
    if shown:
        header = f"{'user_id':36}  {'rule':16}  {'last_active_at (UTC)':20}  {'idle h':>7}  {'local time':22}  decision"
        print(header)
        print("-" * len(header))
        for d in shown:
            idle = (as_of - d.last_active_at).total_seconds() / 3600
            local = f"{d.local_time.strftime('%H:%M')} {d.timezone}"
            print(
                f"{d.user_id!s:36}  {d.rule:16}  {d.last_active_at:%Y-%m-%d %H:%M:%S}  {idle:7.1f}  {local:22}  {d.decision}"
            )
        if hidden:
            print(f"... and {hidden} more (--limit)")
        print()
    print(summary.log_line())
    for r in summary.rules:
        print(
            f"  {r.rule} ({r.mode}, {r.threshold_hours:g} h): examined={r.examined} due={r.due} "
            f"nudged={r.nudged} withheld={r.withheld} shadow={r.shadow} "
            + " ".join(f"{k}={v}" for k, v in r.skipped.items())
        )


def _via_queue(args: argparse.Namespace) -> int:
    from worker.app import app
    from worker.scan.queued import outcome_line, send_scan, wait_for_outcome

    kwargs = {
        "as_of": args.as_of.astimezone(UTC).isoformat() if args.as_of else None,
        "rules": args.rules,
        "dry_run": args.dry_run,
        "full": args.full,
    }
    result = send_scan(app, kwargs)
    if not args.wait:
        queued: dict[str, Any] = {"queued": True, "task_id": result.id, "queue": app.conf.task_default_queue}
        with keeping_status(0):
            print(json.dumps(queued) if args.json else f"queued scan_inactive as task {result.id} on {queued['queue']}")
        return 0
    outcome = wait_for_outcome(app, result, args.timeout)
    status = 0 if outcome.get("ran") else 1
    with keeping_status(status):
        print(json.dumps(outcome) if args.json else outcome_line(outcome))
    return status
