"""`python -m events_schema migrate|status|seed|audit|report|logins|keys|summaries`: the database contract's command line.

Failures print one line to stderr and exit non-zero (1, or 2 for a bad argument); no tracebacks
for expected errors. `python -m events_schema COMMAND --help` describes a command.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from events_schema.cli_args import CommandParser, whole_number
from events_schema.cli_errors import first_line, keeping_status, run_command
from events_schema.db import DatabaseUnavailable

T = TypeVar("T")


def _migrate(args: argparse.Namespace) -> int:
    from events_schema.migrate import migrate

    applied = _retrying(lambda: migrate(args.database_url), args.wait)
    with keeping_status(0):
        if not applied:
            print("database is up to date")
        for migration in applied:
            print(f"applied {migration.path.name}")
    return 0


def _retrying(attempt: Callable[[], T], wait: float) -> T:
    """`attempt()`, tried again every second while the server is unreachable, for up to `wait`
    seconds: a deployment's migrate may start while PostgreSQL restarts after its first set-up."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return attempt()
        except DatabaseUnavailable as exc:
            if time.monotonic() >= deadline:
                if wait:
                    raise DatabaseUnavailable(f"{first_line(exc)} (still, after waiting {wait:g} s)") from exc
                raise
            time.sleep(1)


def _status(args: argparse.Namespace) -> int:
    from events_schema.migrate import status

    for entry in status(args.database_url):
        state = "applied" if entry.applied else "pending"
        print(f"{state:8} {entry.migration.path.name}  sha256:{entry.migration.checksum}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from events_schema import migrate as migrate_module
    from events_schema.analytics import cli as report_cli
    from events_schema.audit import audit
    from events_schema.credentials import keys, logins
    from events_schema.seed import seed
    from events_schema.summaries import summaries

    parser = CommandParser(prog="python -m events_schema", description=__doc__)
    parser.add_argument("--database-url", help="SQLAlchemy URL; default: DATABASE_URL / settings")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_parser = commands.add_parser("migrate", help="apply pending migrations", description=migrate_module.__doc__)
    migrate_parser.add_argument(
        "--wait",
        type=whole_number(0),
        default=0,
        metavar="SECONDS",
        help="while the server cannot be reached, try again every second for this long (default 0)",
    )
    migrate_parser.set_defaults(run=_migrate)
    commands.add_parser(
        "status",
        help="list applied and pending migrations",
        description="List every migration this code ships, applied or pending, with its checksum. Writes nothing.",
    ).set_defaults(run=_status)
    seed_parser = commands.add_parser("seed", help="generate realistic demo events", description=seed.__doc__)
    seed.add_arguments(seed_parser)
    seed_parser.set_defaults(run=seed.run)
    audit_parser = commands.add_parser(
        "audit", help="check RLS as PostgREST applies it; rolls back", description=audit.__doc__
    )
    audit.add_arguments(audit_parser)
    audit_parser.set_defaults(run=audit.run)
    report_parser = commands.add_parser(
        "report", help="weekly engagement cohorts: table, CSVs, chart", description=report_cli.__doc__
    )
    report_cli.add_arguments(report_parser)
    report_parser.set_defaults(run=report_cli.run)
    for name, module, help_text in (
        ("logins", logins, "set the worker's and PostgREST's login passwords from the settings"),
        ("keys", keys, "mint the anon and service_role API keys (JWTs) for JWT_SECRET"),
        ("summaries", summaries, "check the engine's summaries against the event log, or rebuild them"),
    ):
        sub = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _parse_and_run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _parse_and_run(argv))


if __name__ == "__main__":
    raise SystemExit(main())
