"""`python -m events_schema summaries [--rebuild]`: are the engine's summaries still the event log's?

The scan decides from two summaries of engagement_events: engagement_last_activity (latest
activity per user and type) and engagement_users.last_activity_at (per user), raised from the
log's unfolded tail by a fold (`--fold`, every scan, the beat's `fold_summaries`) and kept by
triggers through updates and deletes; the rows written since the last fold are read from the log
itself (docs/scaling.md, "The write path"). The log is the truth; drift is the summaries merged
with that tail against it. If a summary drifted (a trigger disabled during a bulk load,
`session_replication_role = replica`, a restore of one table, a race the triggers do not close),
this lists how many rows disagree and exits 1; `--rebuild` rewrites them from the log in one
transaction (it blocks writers of engagement_last_activity meanwhile; readers go on) and prints
how many rows changed. Both read the whole log: run them off-peak.
"""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from events_schema.cli_errors import keeping_status
from events_schema.db import connect, one_row
from events_schema.queries import QueryFolder

query = QueryFolder.beside(__file__)


def drift(url: str | None = None) -> dict[str, int]:
    """{summary: rows that disagree with the log}; empty when none do."""
    with connect(url) as conn:
        return dict(conn.execute(query("summaries_drift")).fetchall())


def rebuild(url: str | None = None) -> int:
    """Rewrite both summaries from the log where they drifted, then fold the tail; the number of
    rows the rebuild changed."""
    with connect(url) as conn:
        changed = int(one_row(conn.execute(query("summaries_rebuild")))[0])
        conn.commit()
        fold(conn)
        conn.commit()
    return changed


def fold(conn: psycopg.Connection[Any]) -> int | None:
    """Raise the summaries from the rows written since the last fold, in the caller's
    transaction: (user, type) rows read from the log, or None when another fold was running
    (nothing lost: the rows stay in the tail, which every reader merges)."""
    row = one_row(conn.execute(query("summaries_fold")))
    return None if row[0] is None else int(row[0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rebuild", action="store_true", help="rewrite the summaries from the event log")
    which.add_argument(
        "--fold", action="store_true", help="raise the summaries from the rows written since the last fold"
    )


def run(args: argparse.Namespace) -> int:
    if args.rebuild:
        changed = rebuild(args.database_url)
        with keeping_status(0):
            print(f"rebuilt the summaries from the event log: {changed} rows changed")
        return 0
    if args.fold:
        with connect(args.database_url) as conn:
            folded = fold(conn)
            conn.commit()
        with keeping_status(0):
            print("another fold is running" if folded is None else f"folded {folded} rows of the log's tail")
        return 0
    found = drift(args.database_url)
    status = 1 if found else 0
    with keeping_status(status):
        if not found:
            print("summaries agree with the event log")
        else:
            rows = ", ".join(f"{name}: {count}" for name, count in found.items())
            print(f"summaries drift from the event log ({rows} rows); run `summaries --rebuild`")
    return status
