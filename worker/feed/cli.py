"""`python -m worker tail`: print events as they commit, until interrupted (Ctrl-C exits 0).

Reads the live feed (worker/feed/subscription.py). With --user it reads as that user would through the API,
so RLS decides what is shown; without, as the service role (every row, soft deletes included).
On exit the cursor goes to stderr, so a later `--since` carries on without loss or repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from types import FrameType
from uuid import UUID

from events_schema.db import connect, one_row
from worker.database import act_as_service_role
from worker.feed import BEGINNING, Feed, FeedError, FeedEvent
from worker.feed.subscription import query
from worker.metrics.registry import record_feed_delivery

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _event_type(text: str) -> str:
    if not EVENT_TYPE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an event type (lowercase snake_case)")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user", type=UUID, metavar="ID", help="read as this user (their JWT claims): only what RLS lets them see"
    )
    parser.add_argument(
        "--type",
        dest="event_types",
        type=_event_type,
        nargs="+",
        action="extend",
        metavar="T",
        help="only these event types",
    )
    parser.add_argument(
        "--since", metavar="CURSOR", help="carry on after this cursor, or 'beginning' for all events (default: now)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line, each with its cursor")
    parser.add_argument(
        "--any-type",
        action="store_true",
        help="accept --type values no event has had yet (a type about to be introduced)",
    )


def _unknown_types(url: str, event_types: list[str]) -> list[str]:
    """The requested types no stored event has (nor the engine's reserved ones): likely typos."""
    with connect(url) as conn, conn.transaction():
        act_as_service_role(conn)
        known = set(one_row(conn.execute(query("feed_known_event_types")))[0])
    return [t for t in event_types if t not in known]


def _text_line(event: FeedEvent) -> str:
    deleted = "  (deleted)" if event.is_deleted else ""
    value = json.dumps(event.value, separators=(",", ":"), sort_keys=True)
    return f"{event.timestamp.isoformat()}  {event.event_type}  user={event.user_id}  {value}{deleted}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the tail the way Ctrl-C does: cleanly, exit status 0."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    since = BEGINNING if args.since == "beginning" else args.since
    signal.signal(signal.SIGTERM, _interrupt)
    subscription = None
    feed = Feed()
    if args.event_types and not args.any_type:
        unknown = _unknown_types(feed.url, args.event_types)
        if unknown:
            print(
                f"error: no event has had type {', '.join(map(repr, unknown))} yet; check the spelling, "
                "or pass --any-type to wait for it",
                file=sys.stderr,
            )
            return 2
    try:
        subscription = feed.subscribe(user_id=args.user, event_types=args.event_types, since=since)
        with subscription:
            if sys.stderr.isatty():
                # Nothing prints until an event commits: say that this is waiting, not stuck.
                print("waiting for events (Ctrl-C to stop)...", file=sys.stderr, flush=True)
            for event in subscription:
                line = json.dumps(event.as_json(), separators=(",", ":")) if args.json else _text_line(event)
                print(line, flush=True)
                record_feed_delivery(event.timestamp)
    except KeyboardInterrupt:
        pass
    except FeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if subscription is not None:
        print(f"cursor: {subscription.cursor}", file=sys.stderr)
    return 0
