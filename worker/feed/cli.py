"""`python -m worker tail`: print events as they commit, until interrupted (Ctrl-C exits 0).

Reads the live feed (worker/feed/subscription.py). With --user it reads as that user would through the API,
so RLS decides what is shown; without, as the service role (every row, soft deletes included).
On exit the cursor past the last line the reader took goes to stderr, so a later `--since` carries
on without loss or repeats; each JSON line carries its own cursor for readers that leave early.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from types import FrameType
from uuid import UUID

from events_schema.db import connect, one_row
from events_schema.errors import UsageError
from worker.database import act_as_service_role
from worker.feed import BEGINNING, Cursor, Feed, FeedEvent
from worker.feed.lines import LineWriter
from worker.feed.subscription import query
from worker.metrics.registry import record_feed_delivery

# How often an idle tail looks whether its reader went away.
READER_CHECK_SECONDS = 1.0
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
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line, each with its cursor (default: text lines)"
    )
    parser.add_argument(
        "--any-type",
        action="store_true",
        help="accept --type values no event has had yet (a type about to be introduced)",
    )


def unknown_types(url: str, event_types: list[str]) -> list[str]:
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
    feed = Feed()
    if args.event_types and not args.any_type:
        unknown = unknown_types(feed.url, args.event_types)
        if unknown:
            raise UsageError(
                f"no event has had type {', '.join(map(repr, unknown))} yet; check the spelling, "
                "or pass --any-type to wait for it"
            )
    subscription = out = None
    unwritten = False  # events handed out whose lines are not all written
    try:
        subscription = feed.subscribe(user_id=args.user, event_types=args.event_types, since=since)
        out = LineWriter(sys.stdout.fileno(), Cursor.decode(subscription.cursor))
        with subscription:
            if sys.stderr.isatty():
                # Nothing prints until an event commits: say that this is waiting, not stuck.
                print("waiting for events (Ctrl-C to stop)...", file=sys.stderr, flush=True)
            while not out.reader_gone():  # `| head -1` ends it even while no event comes
                batch = subscription.next_batch(timeout=READER_CHECK_SECONDS)
                unwritten = bool(batch)
                for event in batch:
                    line = json.dumps(event.as_json(), separators=(",", ":")) if args.json else _text_line(event)
                    out.write(line, event.position)
                    record_feed_delivery(event.timestamp)
                unwritten = False
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass  # the reader went away (`| head`): stop quietly
    if subscription is not None:
        # Past what the reader took: lines it left in the pipe are not (docs/feed.md).
        caught_up = out is None or (not unwritten and out.caught_up)
        cursor = subscription.cursor if caught_up or out is None else out.taken
        print(f"cursor: {cursor}", file=sys.stderr)
    return 0
