"""`python -m worker metrics`: serve the workers' Prometheus metrics from their shared folder.

Run it beside a worker (same host or container, same PROMETHEUS_MULTIPROC_DIR), or set
METRICS_PORT and let the worker's main process serve them itself.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from events_schema.errors import UsageError
from worker.metrics.exporter import serve


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_port, default=9808, help="TCP port (default 9808)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def run(args: argparse.Namespace) -> int:
    try:
        _server, thread = serve(args.port, args.host)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    print(f"serving metrics on http://{args.host}:{args.port}/metrics", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        thread.join()
    return 0
