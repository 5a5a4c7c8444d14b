"""`python -m worker deliver`: the dispatcher as a long-running consumer, or one pass (`--once`).

The beat's `deliver_nudges` task sends within DELIVERY_INTERVAL_SECONDS of a nudge's commit
with no process of its own; this command, run as a service, reads the feed continuously (a
nudge goes out within about a tenth of a second). Both may run at once: the state row's lock
lets one send at a time. SIGTERM or Ctrl-C stops after the batch in flight.
"""

from __future__ import annotations

import argparse
import json
import signal
from types import FrameType

from events_schema.cli_errors import keeping_status
from events_schema.settings import get_settings
from worker.delivery.providers import DeliveryConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="send what is waiting, then exit")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long (default: never)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    from worker.delivery.dispatcher import Dispatcher

    dispatcher = Dispatcher(get_settings())
    if dispatcher.provider is None:
        raise DeliveryConfigError("DELIVERY_PROVIDER is none: set fcm or webhook (docs/delivery.md)")
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    summary = dispatcher.run(follow=not args.once, max_seconds=args.max_seconds, stop=lambda: stopping)
    with keeping_status(0):
        print(json.dumps(summary.as_dict()) if args.json else summary.log_line())
    return 0
