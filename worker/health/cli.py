"""`python -m worker health`: database, migrations, broker, workers and scans, one line each.

Exits 0 when everything is healthy and 1 otherwise, so an orchestrator or a cron job can act on
it. Every check is bounded by --timeout and returns as soon as it has its answer; nothing is
written anywhere.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from events_schema.cli_errors import keeping_status
from events_schema.settings import get_settings, stopped_services_note
from worker.health.checks import Check, broker, database_checks, workers


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 60 seconds, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help='print {"healthy": ..., "checks": [...]}')
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=5.0,
        help="seconds each check may wait for its server or the workers (default 5)",
    )


def run(args: argparse.Namespace) -> int:
    from worker.app import app

    settings = get_settings()
    now = datetime.now(UTC)
    checks: list[Check] = database_checks(settings.engine_database_url, settings, now, args.timeout)
    broker_check = broker(app, args.timeout)
    checks.append(broker_check)
    if broker_check.ok:
        checks.append(workers(app, settings.celery_queue, args.timeout))
    else:
        checks.append(Check("workers", False, "not checked: the broker is unreachable"))
    healthy = all(check.ok for check in checks)
    # A server that does not answer may be one scripts/run started and stopped: say so, as every command does.
    unreachable = any(check.data.get("reachable") is False for check in checks)
    note = stopped_services_note() if unreachable else None
    status = 0 if healthy else 1
    with keeping_status(status):
        if args.json:
            report = {
                "healthy": healthy,
                "checked_at": now.isoformat(),
                "checks": [check.as_dict() for check in checks],
            }
            print(json.dumps({**report, "note": note} if note else report))
        else:
            for check in checks:
                print(f"{'ok' if check.ok else 'FAIL':4}  {check.name:20}  {check.detail}")
            failed = [check.name for check in checks if not check.ok]
            print("healthy" if healthy else f"unhealthy: {', '.join(failed)}" + (f"; {note}" if note else ""))
    return status
