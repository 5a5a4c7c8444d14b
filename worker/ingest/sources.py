"""Reading import input into rows: NDJSON or CSV files streamed line by line, or a task's batch.

A file is read one line at a time (and a line at most `max_line_bytes` at a time), so memory
does not grow with the file. A line that cannot be read (invalid UTF-8, bad JSON, a wrong CSV
column count, a truncated last line) becomes a row with an error, never an exception: the rest
of the file still imports, and the line is quarantined with its number.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec

from events_schema.errors import UsageError
from worker.ingest.rows import FIELDS, REQUIRED_FIELDS, show

FORMATS = ("ndjson", "csv")
# A file holding one `POST /rpc/import_events` request body: {"batch": [...], "batch_id": "..."}.
BODY_FORMAT = "body"
# Kept of an over-long line in the quarantine: enough to recognise it.
KEPT_OF_LONG_LINE = 4096


class ImportFileError(UsageError):
    """The file as a whole cannot be imported (e.g. a bad CSV header): exit 2."""


class Row(NamedTuple):
    """One input row: where it was, the raw text to keep, and what parsing made of it."""

    position: int
    raw: str
    parsed: Any = None
    error: str | None = None
    csv_columns: tuple[str, ...] | None = None


def storable_text(data: bytes) -> str:
    """Bytes as text PostgreSQL accepts: invalid UTF-8 and NUL bytes as backslash escapes."""
    return data.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_FAST_DECODER = msgspec.json.Decoder()
# Past this many brackets a text is left to the reference parser, whose depth limit (Python's
# recursion limit, where the call stands) decides "nested too deeply".
FAST_MAX_BRACKETS = 200


def parse_json(text: str) -> Any:
    """Strict JSON: NaN and Infinity, which Python's json accepts, are refused.

    msgspec parses first (about four times faster); it builds the same objects as Python's json
    (integers of any size included) and refuses what json refuses and more (numbers beyond a
    float's range, unpaired surrogates, deep nesting). Whatever it refuses goes to Python's json,
    which decides and words the error, so results and messages are json's.
    Errors name the column only: the line number is the file's, given by the caller.
    """
    if text.count("[") + text.count("{") <= FAST_MAX_BRACKETS:
        try:
            return _FAST_DECODER.decode(text)
        except (msgspec.MsgspecError, RecursionError):
            pass
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        # json says "Unterminated string starting at" for some errors, "Expecting value" for others.
        joiner = " " if exc.msg.endswith(" at") else " at "
        raise ValueError(f"{exc.msg}{joiner}column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_csv_line(text: str, columns: tuple[str, ...]) -> dict[str, Any]:
    """One CSV record (one line) as an event object; empty cells mean "absent".

    The `value` cell holds JSON. Raises ValueError with the reason when the line is unusable.
    """
    try:
        [cells] = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise ValueError(f"bad CSV: {exc}") from None
    except ValueError:
        raise ValueError("bad CSV: the line holds no record") from None
    if len(cells) != len(columns):
        raise ValueError(f"expected {len(columns)} CSV columns ({','.join(columns)}), got {len(cells)}")
    obj: dict[str, Any] = {}
    for name, cell in zip(columns, cells, strict=False):
        if cell == "":
            continue
        if name == "value":
            try:
                obj[name] = parse_json(cell)
            except ValueError as exc:
                raise ValueError(f"value is not valid JSON: {exc}") from None
        else:
            obj[name] = cell
    return obj


def parse_raw(raw: str, csv_columns: tuple[str, ...] | None) -> Any:
    """A kept raw row parsed again (replay): JSON, or one CSV line with its file's columns."""
    if csv_columns is None:
        try:
            return parse_json(raw)
        except ValueError as exc:
            raise ValueError(f"bad JSON: {exc}") from None
    return parse_csv_line(raw, csv_columns)


def csv_header(text: str) -> tuple[str, ...]:
    """The column names of a CSV header line, checked against the event's fields."""
    [names] = list(csv.reader([text], strict=True)) or [[]]
    columns = tuple(name.strip() for name in names)
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise ImportFileError(f"line 1: unknown CSV column {show(unknown[0])} (columns are: {', '.join(FIELDS)})")
    missing = [c for c in REQUIRED_FIELDS if c not in columns]
    if missing:
        raise ImportFileError(f"line 1: the CSV header has no {missing[0]} column")
    if len(set(columns)) != len(columns):
        raise ImportFileError("line 1: the CSV header names a column twice")
    return columns


def _lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes, bool, bool]]:
    """(line number, bytes without the line break, ended by a newline, too long) per line."""
    number = 0
    while True:
        line = stream.readline(max_line_bytes)
        if not line:
            return
        number += 1
        too_long = len(line) == max_line_bytes and not line.endswith(b"\n")
        if too_long:
            # Skip the rest of the line without holding it.
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = stream.readline(max_line_bytes)
            line = line[:KEPT_OF_LONG_LINE]
        ended = line.endswith(b"\n") or too_long
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield number, line.rstrip(b"\r\n"), ended, too_long


def read_rows(stream: BinaryIO, fmt: str, max_line_bytes: int) -> Iterator[Row]:
    """The rows of an NDJSON or CSV file; position is the line number. Blank lines are skipped.

    A CSV file starts with a header naming its columns (any order; `user_id` and `event_type`
    required); each record is one line.
    """
    if fmt not in FORMATS:
        raise ImportFileError(f"unknown format {fmt!r} (formats are: {', '.join(FORMATS)})")
    columns: tuple[str, ...] | None = None
    for number, data, ended, too_long in _lines(stream, max_line_bytes):
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            text, undecodable = None, f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte {exc.start + 1}"
        raw = storable_text(data) if text is None else text.replace("\x00", "\\x00")
        if fmt == "csv" and columns is None:
            columns = csv_header(raw)
            continue
        if too_long:
            yield Row(
                number,
                raw,
                error=f"longer than {max_line_bytes} bytes, more than any valid event; "
                f"only its first {KEPT_OF_LONG_LINE} bytes are kept",
                csv_columns=columns,
            )
        elif text is None:
            yield Row(number, raw, error=undecodable, csv_columns=columns)
        elif text.strip():
            try:
                row = Row(number, raw, parsed=parse_raw(text, columns), csv_columns=columns)
            except ValueError as exc:
                reason = str(exc) if ended else f"truncated: the last line has no line break and is incomplete ({exc})"
                row = Row(number, raw, error=reason, csv_columns=columns)
            yield row
    if fmt == "csv" and columns is None:
        raise ImportFileError("the file is empty: a CSV file starts with a header line")


def rows_of_batch(
    batch: list[Any],
    positions: list[int] | None = None,
    unparsed: list[dict[str, Any]] | None = None,
) -> list[Row]:
    """A task's batch as rows: objects at their positions, plus rows the sender could not parse.

    `positions` default to the index in the batch; a sender that splits a larger input (the CLI
    with --enqueue) passes each row's position there (its line number), so ids and quarantine
    entries are the same as when importing in-process. `unparsed` entries are
    {"position", "raw", "error", optional "csv_columns"}.
    """
    if positions is not None and len(positions) != len(batch):
        raise ValueError(f"{len(positions)} positions for a batch of {len(batch)} rows")
    rows = [
        Row(position, json.dumps(obj, ensure_ascii=True, default=repr), parsed=obj)
        for position, obj in zip(positions if positions is not None else range(len(batch)), batch, strict=False)
    ]
    for entry in unparsed or ():
        columns = entry.get("csv_columns")
        rows.append(
            Row(
                int(entry["position"]),
                str(entry["raw"]),
                error=str(entry["error"]),
                csv_columns=tuple(columns) if columns else None,
            )
        )
    if len({row.position for row in rows}) != len(rows):
        raise ValueError("positions must be unique within a batch (they make the derived ids)")
    return sorted(rows, key=lambda row: row.position)


def read_body(data: bytes) -> tuple[list[Row], str]:
    """The rows of an RPC request body, at their index in the batch, and its batch id.

    A body re-sent through the CLI gets the ids the RPC and the task give it: the body's
    batch_id, or without one the batch's content hash, with each row's index.
    """
    try:
        body = parse_json(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError(f"not a JSON request body: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise ImportFileError('a request body is a JSON object {"batch": [...], "batch_id": "..."}')
    batch_id = body.get("batch_id")
    if batch_id is not None and not isinstance(batch_id, str):
        raise ImportFileError("the body's batch_id must be a string")
    return rows_of_batch(body["batch"]), batch_id or batch_content_id(body["batch"], None, None)


def batch_content_id(*parts: Any) -> str:
    """A batch id derived from the content: the same batch sent again gets the same ids."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=repr)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def file_content_id(path: Path) -> str:
    """A file's default batch id: its content's hash, so the same file re-run dedupes wherever it lies."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:32]
