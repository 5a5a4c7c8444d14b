"""`python -m worker scan|import|tail|services`: the engine's operator commands.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`.
Expected failures print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import psycopg
import sqlalchemy.exc

from events_schema.db import DatabaseUnavailable

COMMANDS = {
    "scan": ("worker.scan_cli", "find inactive users and nudge them (same as the scan_inactive task)"),
    "import": ("worker.import_cli", "bulk-import events from NDJSON or CSV with the service role"),
    "tail": ("worker.tail_cli", "print events as they commit, one JSON object per line"),
    "metrics": ("worker.metrics.cli", "serve the workers' Prometheus metrics (PROMETHEUS_MULTIPROC_DIR)"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen command's module is imported (and can fail)."""
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("services", help="start/stop/show the embedded database and broker (up|down|status)")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["services"]:
        from worker.local_services import main as services_main

        return services_main(argv[1:])
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.run(args)
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError) as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        print(f"error: the database failed: {lines[0] if lines else type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
