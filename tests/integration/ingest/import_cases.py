"""The one table of what an imported event may be: every rule, both sides of every boundary, and
hostile inputs, each with the exact outcome (accepted, or the reason it is refused).

Two implementations check events: the Python importer (worker/ingest/rows.py, for files and
the Celery task) and the database's `public.import_events()` (for PostgREST callers, which
cannot run Python). test_import_cases.py runs this whole table through both, as one batch, and
requires each to give every row exactly the outcome written here, so they cannot drift apart.

Not in the table, because they cannot reach the database function as a row at all: NaN and
Infinity, unpaired surrogates and \\u0000 (PostgreSQL refuses the whole request body;
test_import_rpc.py shows how), and lines a file reader refuses (bad UTF-8, bad CSV), which the
RPC never sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

FIELDS = "(fields are: id, user_id, event_type, timestamp, value)"
RESERVED = "(reserved: nudge_delivered, nudge_failed, nudge_sent, nudge_shadow, nudge_withheld)"
PATTERN = (
    "must be lowercase snake_case: a letter, then at most 62 letters, digits or underscores (^[a-z][a-z0-9_]{0,62}$)"
)
NOT_ISO = "is not an ISO-8601 date and time"
NO_OFFSET = "has no UTC offset, so the instant is ambiguous; add one, e.g. Z or +02:00"
MAX_VALUE_BYTES = 65536  # IMPORT_MAX_VALUE_BYTES's default; {"note":"..."} is 11 bytes + the text
SKEW = 300  # MAX_CLOCK_SKEW_SECONDS's default
SOME_ID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"


@dataclass(frozen=True)
class Context:
    """What a row is built from: a user that exists, one that does not, and the importer's clock."""

    user: uuid.UUID
    stranger: uuid.UUID
    now: datetime

    def at(self, seconds: float) -> str:
        """now + seconds as ISO-8601 with Z, to the microsecond."""
        return (self.now + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Case:
    name: str
    row: Callable[[Context], Any]
    # None: accepted. Otherwise the exact reason.
    refused: Callable[[Context], str | None] = lambda ctx: None


def ok(ctx: Context, **fields: Any) -> dict[str, Any]:
    """A valid row with these fields replaced (a field set to ... is left out)."""
    row = {"user_id": str(ctx.user), "event_type": "app_open", **fields}
    return {k: v for k, v in row.items() if v is not ...}


def skew_message(raw: str, ahead: int | str, ctx: Context) -> str:
    """The refusal of a timestamp `ahead` seconds (or e.g. "72 years") in the future."""
    ahead = f"{ahead} s" if isinstance(ahead, int) else ahead
    return (
        f'timestamp "{raw}" is {ahead} in the future (now is {ctx.now.strftime("%Y-%m-%dT%H:%M:%S")}+00:00); '
        f"at most {SKEW} s of clock skew is allowed"
    )


CASES: list[Case] = [
    # Accepted
    Case("minimal row", lambda c: ok(c)),
    Case(
        "every field",
        lambda c: ok(c, id=SOME_ID.replace("a0ee", "e0ee"), timestamp="2026-01-02T03:04:05Z", value={"steps": 10}),
    ),
    Case("explicit nulls for the optional id and timestamp", lambda c: ok(c, id=None, timestamp=None)),
    Case("uuid in capitals", lambda c: ok(c, id=SOME_ID.upper())),
    Case("uuid as 32 hex digits", lambda c: ok(c, id=SOME_ID.replace("-", "").replace("a0ee", "b0ee"))),
    Case("uuid in braces", lambda c: ok(c, id="{" + SOME_ID.replace("a0ee", "c0ee") + "}")),
    Case("uuid as a URN", lambda c: ok(c, id="urn:uuid:" + SOME_ID.replace("a0ee", "d0ee"))),
    Case("user_id in capitals", lambda c: ok(c, user_id=str(c.user).upper())),
    Case("timestamp with a space and no seconds", lambda c: ok(c, timestamp="2026-01-02 03:04+02:00")),
    Case("timestamp with one fraction digit", lambda c: ok(c, timestamp="2026-01-02T03:04:05.1Z")),
    Case("timestamp with six fraction digits", lambda c: ok(c, timestamp="2026-01-02T03:04:05.123456-00:00")),
    Case(
        "timestamp with offset minutes of 60 (fromisoformat takes it as +06:00)",
        lambda c: ok(c, timestamp="2026-01-02T03:04:05+05:60"),
    ),
    Case("timestamp with the largest offset", lambda c: ok(c, timestamp="2026-01-02T03:04:05-23:59")),
    Case("timestamp on 29 February of a leap year", lambda c: ok(c, timestamp="2024-02-29T00:00:00Z")),
    Case("timestamp exactly at the clock-skew limit", lambda c: ok(c, timestamp=c.at(SKEW))),
    Case("timestamp in year 1", lambda c: ok(c, timestamp="0001-01-01T00:00:00Z")),
    Case("event_type of one letter", lambda c: ok(c, event_type="a")),
    Case("event_type of 63 characters", lambda c: ok(c, event_type="a" + "b_9" * 20 + "cd")),
    Case("value exactly at the size limit", lambda c: ok(c, value={"note": "x" * (MAX_VALUE_BYTES - 11)})),
    Case(
        "value at the limit counting UTF-8 bytes (é is 2)",
        lambda c: ok(c, value={"note": "é" * ((MAX_VALUE_BYTES - 11) // 2) + "x" * ((MAX_VALUE_BYTES - 11) % 2)}),
    ),
    Case(
        "value at the limit counting escapes (a newline is 2 bytes)",
        lambda c: ok(c, value={"note": "\n" * ((MAX_VALUE_BYTES - 11) // 2) + "x" * ((MAX_VALUE_BYTES - 11) % 2)}),
    ),
    Case(
        "value nested, with numbers, booleans, null and emoji",
        lambda c: ok(c, value={"a": [1, 2.5, True, None, {"b": "😀"}], "c": {}}),
    ),
    Case("empty value object", lambda c: ok(c, value={})),
    # Not an object
    Case("an array", lambda c: [1, 2], lambda c: "expected a JSON object, got array [1, 2]"),
    Case("a string", lambda c: "app_open", lambda c: 'expected a JSON object, got string "app_open"'),
    Case("null", lambda c: None, lambda c: "expected a JSON object, got null null"),
    Case("a number", lambda c: 42, lambda c: "expected a JSON object, got number 42"),
    # id
    Case("id a number", lambda c: ok(c, id=7), lambda c: "id must be a UUID string, got number 7"),
    Case("id not a uuid", lambda c: ok(c, id="nope"), lambda c: 'id "nope" is not a UUID'),
    Case("id empty", lambda c: ok(c, id=""), lambda c: 'id "" is not a UUID'),
    Case(
        "id in braces without hyphens",
        lambda c: ok(c, id="{" + SOME_ID.replace("-", "") + "}"),
        lambda c: 'id "{a0eebc999c0b4ef8bb6d6bb9bd380a11}" is not a UUID',
    ),
    Case("id with a trailing space", lambda c: ok(c, id=SOME_ID + " "), lambda c: f'id "{SOME_ID} " is not a UUID'),
    Case(
        "id with an opening brace only", lambda c: ok(c, id="{" + SOME_ID), lambda c: f'id "{{{SOME_ID}" is not a UUID'
    ),
    # user_id
    Case("user_id missing", lambda c: ok(c, user_id=...), lambda c: "user_id is required"),
    Case("user_id null", lambda c: ok(c, user_id=None), lambda c: "user_id must be a UUID string, got null null"),
    Case("user_id a number", lambda c: ok(c, user_id=42), lambda c: "user_id must be a UUID string, got number 42"),
    Case(
        "user_id an object",
        lambda c: ok(c, user_id={"id": 1}),
        lambda c: 'user_id must be a UUID string, got object {"id": 1}',
    ),
    Case("user_id not a uuid", lambda c: ok(c, user_id="user-42"), lambda c: 'user_id "user-42" is not a UUID'),
    Case(
        "user_id of an unknown user",
        lambda c: ok(c, user_id=str(c.stranger)),
        lambda c: f"user_id {c.stranger} is not a user of this project (no such auth user)",
    ),
    Case(
        "user_id very long, shown shortened",
        lambda c: ok(c, user_id="x" * 200),
        lambda c: 'user_id "' + "x" * 78 + "… is not a UUID",
    ),
    Case(
        "user_id with non-ASCII, shown escaped",
        lambda c: ok(c, user_id="über-😀"),
        lambda c: 'user_id "\\u00fcber-\\ud83d\\ude00" is not a UUID',
    ),
    # event_type
    Case("event_type missing", lambda c: ok(c, event_type=...), lambda c: "event_type is required"),
    Case("event_type null", lambda c: ok(c, event_type=None), lambda c: "event_type must be a string, got null null"),
    Case(
        "event_type a boolean",
        lambda c: ok(c, event_type=True),
        lambda c: "event_type must be a string, got boolean true",
    ),
    Case(
        "event_type with capitals and a space",
        lambda c: ok(c, event_type="App Open"),
        lambda c: f'event_type "App Open" {PATTERN}',
    ),
    Case("event_type empty", lambda c: ok(c, event_type=""), lambda c: f'event_type "" {PATTERN}'),
    Case(
        "event_type of 64 characters",
        lambda c: ok(c, event_type="a" * 64),
        lambda c: f'event_type "{"a" * 64}" {PATTERN}',
    ),
    Case(
        "event_type starting with a digit", lambda c: ok(c, event_type="1app"), lambda c: f'event_type "1app" {PATTERN}'
    ),
    Case(
        "event_type with a trailing newline",
        lambda c: ok(c, event_type="app_open\n"),
        lambda c: f'event_type "app_open\\n" {PATTERN}',
    ),
    Case(
        "event_type with a tab and a quote",
        lambda c: ok(c, event_type='a\t"b'),
        lambda c: f'event_type "a\\t\\"b" {PATTERN}',
    ),
    *[
        Case(
            f"event_type {t} (reserved)",
            lambda c, t=t: ok(c, event_type=t),
            lambda c, t=t: f'event_type "{t}" is reserved for the nudge engine {RESERVED}',
        )
        for t in ("nudge_sent", "nudge_delivered", "nudge_failed", "nudge_shadow")
    ],
    # timestamp
    Case(
        "timestamp a number",
        lambda c: ok(c, timestamp=1764151200),
        lambda c: "timestamp must be an ISO-8601 string with a UTC offset, got number 1764151200",
    ),
    Case("timestamp a word", lambda c: ok(c, timestamp="yesterday"), lambda c: f'timestamp "yesterday" {NOT_ISO}'),
    Case(
        "timestamp 'now' (PostgreSQL would take it)",
        lambda c: ok(c, timestamp="now"),
        lambda c: f'timestamp "now" {NOT_ISO}',
    ),
    Case(
        "timestamp 'epoch' (PostgreSQL would take it)",
        lambda c: ok(c, timestamp="epoch"),
        lambda c: f'timestamp "epoch" {NOT_ISO}',
    ),
    Case(
        "timestamp without an offset",
        lambda c: ok(c, timestamp="2026-11-26T10:00:00"),
        lambda c: f'timestamp "2026-11-26T10:00:00" {NO_OFFSET}',
    ),
    Case(
        "timestamp a date alone",
        lambda c: ok(c, timestamp="2026-11-26"),
        lambda c: f'timestamp "2026-11-26" {NO_OFFSET}',
    ),
    Case(
        "timestamp a date with an offset but no time",
        lambda c: ok(c, timestamp="2026-11-26Z"),
        lambda c: f'timestamp "2026-11-26Z" {NOT_ISO}',
    ),
    Case(
        "timestamp on 29 February of a common year",
        lambda c: ok(c, timestamp="2026-02-29T10:00:00Z"),
        lambda c: f'timestamp "2026-02-29T10:00:00Z" {NOT_ISO}',
    ),
    Case(
        "timestamp in month 13",
        lambda c: ok(c, timestamp="2026-13-01T10:00:00Z"),
        lambda c: f'timestamp "2026-13-01T10:00:00Z" {NOT_ISO}',
    ),
    Case(
        "timestamp at hour 24 (PostgreSQL would take it)",
        lambda c: ok(c, timestamp="2026-11-26T24:00:00Z"),
        lambda c: f'timestamp "2026-11-26T24:00:00Z" {NOT_ISO}',
    ),
    Case(
        "timestamp at second 60 (PostgreSQL would take it)",
        lambda c: ok(c, timestamp="2026-11-26T10:00:60Z"),
        lambda c: f'timestamp "2026-11-26T10:00:60Z" {NOT_ISO}',
    ),
    Case(
        "timestamp with an offset of 24 h",
        lambda c: ok(c, timestamp="2026-11-26T10:00:00+24:00"),
        lambda c: f'timestamp "2026-11-26T10:00:00+24:00" {NOT_ISO}',
    ),
    Case(
        "timestamp with offset hours only",
        lambda c: ok(c, timestamp="2026-11-26T10:00:00+02"),
        lambda c: f'timestamp "2026-11-26T10:00:00+02" {NOT_ISO}',
    ),
    Case(
        "timestamp in the compact form",
        lambda c: ok(c, timestamp="20261126T100000Z"),
        lambda c: f'timestamp "20261126T100000Z" {NOT_ISO}',
    ),
    Case(
        "timestamp with another separator",
        lambda c: ok(c, timestamp="2026-11-26x10:00:00Z"),
        lambda c: f'timestamp "2026-11-26x10:00:00Z" {NOT_ISO}',
    ),
    Case(
        "timestamp with seven fraction digits",
        lambda c: ok(c, timestamp="2026-11-26T10:00:00.1234567Z"),
        lambda c: f'timestamp "2026-11-26T10:00:00.1234567Z" {NOT_ISO}',
    ),
    Case(
        "timestamp with a lowercase z",
        lambda c: ok(c, timestamp="2026-11-26T10:00:00z"),
        lambda c: f'timestamp "2026-11-26T10:00:00z" {NOT_ISO}',
    ),
    Case(
        "timestamp in year 0",
        lambda c: ok(c, timestamp="0000-01-01T00:00:00Z"),
        lambda c: f'timestamp "0000-01-01T00:00:00Z" {NOT_ISO}',
    ),
    Case(
        "timestamp past year 9999 once in UTC",
        lambda c: ok(c, timestamp="9999-12-31T23:59:59-01:00"),
        lambda c: 'timestamp "9999-12-31T23:59:59-01:00" is out of range',
    ),
    Case(
        "timestamp one microsecond past the clock-skew limit",
        lambda c: ok(c, timestamp=c.at(SKEW + 0.000001)),
        lambda c: skew_message(c.at(SKEW + 0.000001), SKEW, c),
    ),
    Case(
        "timestamp 300.5 s ahead (rounds half to even)",
        lambda c: ok(c, timestamp=c.at(300.5)),
        lambda c: skew_message(c.at(300.5), 300, c),
    ),
    Case(
        "timestamp 301.5 s ahead (rounds half to even)",
        lambda c: ok(c, timestamp=c.at(301.5)),
        lambda c: skew_message(c.at(301.5), 302, c),
    ),
    Case(
        "timestamp 3599 s ahead (still in seconds)",
        lambda c: ok(c, timestamp=c.at(3599)),
        lambda c: skew_message(c.at(3599), 3599, c),
    ),
    Case(
        "timestamp an hour ahead (in hours)",
        lambda c: ok(c, timestamp=c.at(3600)),
        lambda c: skew_message(c.at(3600), "1 h", c),
    ),
    Case(
        "timestamp 47.5 h ahead (hours round half up)",
        lambda c: ok(c, timestamp=c.at(47.5 * 3600)),
        lambda c: skew_message(c.at(47.5 * 3600), "48 h", c),
    ),
    Case(
        "timestamp 48 h ahead (in days)",
        lambda c: ok(c, timestamp=c.at(48 * 3600)),
        lambda c: skew_message(c.at(48 * 3600), "2 days", c),
    ),
    Case(
        "timestamp a year ahead",
        lambda c: ok(c, timestamp=c.at(365 * 86400)),
        lambda c: skew_message(c.at(365 * 86400), "365 days", c),
    ),
    Case(
        "timestamp 730 days ahead (in years)",
        lambda c: ok(c, timestamp=c.at(730 * 86400)),
        lambda c: skew_message(c.at(730 * 86400), "2 years", c),
    ),
    Case(
        "timestamp 72 years ahead (the issue's 2274565800 s)",
        lambda c: ok(c, timestamp=c.at(2274565800)),
        lambda c: skew_message(c.at(2274565800), "72 years", c),
    ),
    # value
    Case("value an array", lambda c: ok(c, value=[1, 2]), lambda c: "value must be a JSON object, got array [1, 2]"),
    Case("value a string", lambda c: ok(c, value="steps"), lambda c: 'value must be a JSON object, got string "steps"'),
    Case("value null", lambda c: ok(c, value=None), lambda c: "value must be a JSON object, got null null"),
    Case("value a number", lambda c: ok(c, value=2.5), lambda c: "value must be a JSON object, got number 2.5"),
    Case(
        "value one byte over the size limit",
        lambda c: ok(c, value={"note": "x" * (MAX_VALUE_BYTES - 10)}),
        lambda c: f"value is {MAX_VALUE_BYTES + 1} bytes as JSON, over the limit of {MAX_VALUE_BYTES} bytes",
    ),
    Case(
        "value one byte over counting UTF-8 bytes",
        lambda c: ok(c, value={"note": "é" * ((MAX_VALUE_BYTES - 10) // 2) + "x" * ((MAX_VALUE_BYTES - 10) % 2)}),
        lambda c: f"value is {MAX_VALUE_BYTES + 1} bytes as JSON, over the limit of {MAX_VALUE_BYTES} bytes",
    ),
    # Unknown fields and several problems at once
    Case("an unknown field", lambda c: ok(c, properties={"a": 1}), lambda c: f'unknown field "properties" {FIELDS}'),
    Case(
        "every problem of a row, in field order",
        lambda c: {
            "id": 7,
            "user_id": "u",
            "event_type": "nudge_sent",
            "timestamp": "yesterday",
            "value": [],
            "extra": 1,
        },
        lambda c: "; ".join(
            [
                "id must be a UUID string, got number 7",
                'user_id "u" is not a UUID',
                f'event_type "nudge_sent" is reserved for the nudge engine {RESERVED}',
                f'timestamp "yesterday" {NOT_ISO}',
                "value must be a JSON object, got array []",
                f'unknown field "extra" {FIELDS}',
            ]
        ),
    ),
]
