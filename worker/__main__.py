"""`python -m worker scan|import|tail|health|services`: the engine's operator commands.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
its expected failures are raised (events_schema/errors.py) and printed as one line by
events_schema/cli_errors.py.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import cast

import kombu.exceptions
import redis.exceptions

from events_schema.cli_args import CommandParser
from events_schema.cli_errors import run_command

# The broker is down or refuses us: one line, as for the database.
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError)

COMMANDS = {
    "scan": ("worker.scan.cli", "find inactive users and nudge them (same as the scan_inactive task)"),
    "import": ("worker.ingest.cli", "bulk-import events from NDJSON or CSV with the service role"),
    "tail": ("worker.feed.cli", "print events as they commit, one line each (text; JSON with --json)"),
    "health": ("worker.health.cli", "check database, migrations, broker, workers and scans; exit 1 if unhealthy"),
    "deliver": ("worker.delivery.cli", "send nudges to the push provider and record each outcome (--once: one pass)"),
    "simulate": ("worker.simulate.cli", "replay the rules over a past window, proposed beside configured (read only)"),
    "metrics": ("worker.metrics.cli", "serve the workers' Prometheus metrics (PROMETHEUS_MULTIPROC_DIR)"),
}


DESCRIPTION = (
    "The nudge engine's operator commands. Each prints one clear line on stderr and exits non-zero "
    "when it fails; `python -m worker COMMAND --help` describes a command."
)


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen command's module is imported (and can fail)."""
    parser = CommandParser(prog="python -m worker", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "services", help="start/stop/show/remove the embedded database and broker (up|down|status|purge)"
    )
    for name, (module_name, help_text) in COMMANDS.items():
        if name != command:
            commands.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _parse_and_run(argv: list[str]) -> int:
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return cast(int, args.run(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["services"]:
        from worker.dev_servers.services import main as services_main

        return services_main(argv[1:])
    return run_command(lambda: _parse_and_run(argv), unreachable=BROKER_ERRORS)


if __name__ == "__main__":
    raise SystemExit(main())
