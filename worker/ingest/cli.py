"""`python -m worker import`: bulk-import an NDJSON or CSV file (or an RPC request body), or replay quarantined rows.

The file is streamed (constant memory) and written in chunks by this process, or with
`--enqueue` sent chunk by chunk to the workers' `import_events` task; either way the summary is
the same and the exit status is 1 when any row was refused (they are in the quarantine).
A re-run with the same batch id inserts nothing twice; the default batch id is the hash of the
file's content, so re-running the same file is safe wherever the file lies.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from events_schema.cli_args import non_empty, positive_seconds, whole_number
from events_schema.cli_errors import keeping_status
from events_schema.errors import CommandError, UsageError
from events_schema.progress import Progress
from events_schema.settings import get_settings
from worker.ingest.importer import ImportSummary, chunks, import_rows, replay_rejected
from worker.ingest.quarantine import has_batch, rejected_rows
from worker.ingest.sources import BODY_FORMAT, FORMATS, ImportFileError, Row, file_content_id, read_body, read_rows

# Longest line read at once: any valid event fits (its value may be written with \u escapes).
LINE_LIMIT_FACTOR = 6
LINE_LIMIT_SLACK = 64 * 1024
# Batches sent with --enqueue and not yet finished: bounds memory and the broker's backlog.
MAX_IN_FLIGHT = 4
SHOWN_ERRORS = 20


class EnqueueError(CommandError):
    """A batch sent to the workers failed or did not finish in time (exit 1)."""


USAGE_HINT = "see python -m worker import --help"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, help="NDJSON (one event object per line) or CSV file")
    parser.add_argument(
        "--format",
        choices=(*FORMATS, BODY_FORMAT),
        help="default: csv for *.csv files, else ndjson; body: a POST /rpc/import_events "
        "request body, imported with the ids the RPC gives its rows",
    )
    parser.add_argument(
        "--batch-size",
        type=whole_number(1),
        metavar="N",
        help="rows per transaction / per task, at least 1 (default IMPORT_CHUNK_SIZE)",
    )
    parser.add_argument(
        "--batch-id",
        type=non_empty,
        help="ids of rows without one derive from it and the line number; "
        "default: the hash of the file's content. Reuse it to re-run safely. "
        "With --replay-rejected or --list-rejected: only this batch's rows",
    )
    parser.add_argument("--enqueue", action="store_true", help="send the batches to the workers (import_events)")
    parser.add_argument(
        "--timeout", type=positive_seconds, default=600, help="--enqueue: seconds to wait for each batch"
    )
    parser.add_argument(
        "--replay-rejected",
        action="store_true",
        help="re-validate quarantined rows (of --batch-id, or all) and move those that pass",
    )
    parser.add_argument(
        "--list-rejected",
        action="store_true",
        help="list the quarantined rows (of --batch-id, or all) with their reasons; writes nothing",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (--list-rejected: one JSON object per row)"
    )


def _rows_note(total: ImportSummary) -> str:
    return f"{total.inserted + total.duplicates + total.rejected:,} rows"


def _enqueue(
    rows: Iterable[Row], batch_id: str, batch_size: int, timeout: float, progress: Progress, done_bytes: Any
) -> ImportSummary:
    """Send chunks to `import_events` and add up their summaries, a few batches in flight."""
    from worker.app import app, reach_broker

    # A broker that is down: one line now, not a traceback after the publisher's retries.
    with app.connection_for_write() as connection:
        reach_broker(connection)
    total = ImportSummary(batch_id)
    in_flight: deque[tuple[int, Any]] = deque()

    def collect() -> None:
        first_line, result = in_flight[0]
        try:
            outcome = result.get(timeout=timeout)
        except Exception as exc:  # whatever the worker raised, re-created here, or the timeout  # noqa: BLE001
            failure: str | None = f"the batch from line {first_line} did not complete: {type(exc).__name__}: {exc}"
        else:
            failure = None
        if failure:
            raise EnqueueError(failure)
        in_flight.popleft()
        total.merge(ImportSummary.from_dict(outcome))
        result.forget()
        progress.update(done_bytes(), _rows_note(total))

    try:
        for chunk in chunks(rows, batch_size):
            parsed = [row for row in chunk if row.error is None]
            unparsed = [
                {
                    "position": row.position,
                    "raw": row.raw,
                    "error": row.error,
                    "csv_columns": list(row.csv_columns) if row.csv_columns else None,
                }
                for row in chunk
                if row.error is not None
            ]
            in_flight.append(
                (
                    chunk[0].position,
                    # By name, as any client sends it: the command does not import the task registry.
                    app.send_task(
                        "import_events",
                        kwargs={
                            "batch": [row.parsed for row in parsed],
                            "batch_id": batch_id,
                            "positions": [row.position for row in parsed],
                            "unparsed": unparsed,
                        },
                    ),
                )
            )
            if len(in_flight) >= MAX_IN_FLIGHT:
                collect()
        while in_flight:
            collect()
    finally:
        # Celery keeps waiting results registered; one left for interpreter exit makes it
        # unsubscribe from a Redis connection that is already gone. Release them now.
        for _, result in in_flight:
            result.backend.remove_pending_result(result)
    return total


def _print_summary(summary: ImportSummary, args: argparse.Namespace, seconds: float, replay: bool) -> None:
    position_key = "position" if replay else "index" if args.format == BODY_FORMAT else "line"
    if args.json:
        print(json.dumps({**summary.as_dict(position_key, with_batch=replay), "seconds": round(seconds, 3)}))
        return
    handled = summary.inserted + summary.duplicates + summary.rejected
    what = "replayed" if replay else f"imported {args.path}"
    print(
        f"{what} (batch {summary.batch_id or 'all'}): {summary.inserted:,} inserted, "
        f"{summary.duplicates:,} duplicates, {summary.rejected:,} rejected "
        f"in {seconds:.1f} s ({handled / max(seconds, 1e-9):,.0f} rows/s)"
    )
    for batch_id, position, reason in summary.errors[:SHOWN_ERRORS]:
        where = f"{batch_id} row {position}" if replay else f"{position_key} {position}"
        print(f"  {where}: {reason}")
    if summary.rejected > SHOWN_ERRORS:
        print(f"  ... and {summary.rejected - SHOWN_ERRORS:,} more")
    if summary.rejected:
        batch = f" --batch-id {summary.batch_id}" if summary.batch_id else ""
        print(
            "Refused rows are kept in public.engagement_import_quarantine with their reason; "
            f"once fixed: python -m worker import --replay-rejected{batch}"
        )


def _list_rejected(args: argparse.Namespace) -> int:
    """The quarantine, one row a line (or one JSON object a line); exit 1 when --batch-id has none."""
    listed = 0
    for row in rejected_rows(args.batch_id):
        listed += 1
        if args.json:
            print(json.dumps(row.as_dict()))
        else:
            print(f"{row.batch_id} row {row.position} (received {row.received_at:%Y-%m-%d %H:%M:%S} UTC): {row.reason}")
    if not listed and args.batch_id is not None:
        raise CommandError(f"no rejected rows for batch {args.batch_id}")
    if not args.json:
        print(f"{listed:,} rows in the quarantine" + (f" for batch {args.batch_id}" if args.batch_id else ""))
    return 0


def _replay(args: argparse.Namespace, batch_size: int, started: float) -> int:
    if args.batch_id is not None and not has_batch(args.batch_id):
        raise CommandError(f"no rejected rows for batch {args.batch_id}")
    try:
        summary = replay_rejected(args.batch_id, chunk_size=batch_size)
    except Exception as exc:
        exc.add_note("chunks already replayed stay replayed; run the replay again to finish")
        raise
    status = 1 if summary.rejected else 0
    with keeping_status(status):
        _print_summary(summary, args, time.monotonic() - started, replay=True)
    return status


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    batch_size = args.batch_size or get_settings().import_chunk_size
    if args.replay_rejected or args.list_rejected:
        if args.path or args.enqueue or (args.replay_rejected and args.list_rejected):
            raise UsageError(
                "--replay-rejected and --list-rejected take no file, run in this process (no --enqueue) "
                f"and go alone; {USAGE_HINT}"
            )
        return _list_rejected(args) if args.list_rejected else _replay(args, batch_size, started)
    if args.path is None:
        raise UsageError(f"give a file to import, --replay-rejected or --list-rejected; {USAGE_HINT}")
    return _import_file(args, batch_size, started)


def _import_file(args: argparse.Namespace, batch_size: int, started: float) -> int:
    fmt = args.format or ("csv" if args.path.suffix.lower() == ".csv" else "ndjson")
    max_line_bytes = LINE_LIMIT_FACTOR * get_settings().import_max_value_bytes + LINE_LIMIT_SLACK
    try:
        stream = args.path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {args.path}: {exc.strerror or exc}") from exc
    with stream:
        try:
            body = read_body(stream.read()) if fmt == BODY_FORMAT else None
            batch_id = args.batch_id or (body[1] if body else file_content_id(args.path))
        except OSError as exc:
            raise UsageError(f"cannot read {args.path}: {exc.strerror or exc}") from exc
        except ImportFileError as exc:
            raise ImportFileError(f"{args.path}: {exc}") from exc
        progress = Progress(args.path.stat().st_size, "importing bytes")
        rows = body[0] if body else read_rows(stream, fmt, max_line_bytes)
        try:
            if args.enqueue:
                summary = _enqueue(rows, batch_id, batch_size, args.timeout, progress, stream.tell)
            else:
                summary = import_rows(
                    rows,
                    batch_id,
                    chunk_size=batch_size,
                    on_chunk=lambda total: progress.update(stream.tell(), _rows_note(total)),
                )
        except ImportFileError as exc:
            raise ImportFileError(f"{args.path}: {exc}") from exc
        except Exception as exc:
            exc.add_note(
                f"chunks already written stay written; re-running with --batch-id {batch_id} inserts each row once"
            )
            raise
        finally:
            progress.close()
    status = 1 if summary.rejected else 0
    with keeping_status(status):
        _print_summary(summary, args, time.monotonic() - started, replay=False)
    return status
