"""Validating one imported event, with a precise reason for every refusal.

The table's constraints and policies would refuse most bad rows too, but a refused statement
fails its whole chunk and says nothing about which row: checking each row here first lets the
importer insert the good rows, and quarantine each bad one with a reason a person can act on.
Whether the user exists is the one rule checked in SQL (worker/ingest/sql/import_insert_events.sql),
in the same round trip as the insert.

Two paths, one set of rules. The pydantic model (IncomingEvent) is the reference: it decides
every row the fast path does not accept and words every refusal. The fast path checks a row's
shape with msgspec (in C, several times cheaper than the model) and serialises `value` with it;
it accepts only rows the reference accepts, with the same result, and sends everything else
(any doubt included) to the reference. The rules themselves (reserved types, timestamps, the
value's size) are the same functions on both paths.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

import msgspec
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, ValidationInfo, field_validator

FIELDS = ("id", "user_id", "event_type", "timestamp", "value")
REQUIRED_FIELDS = ("user_id", "event_type")
# The table's own rule: constraint engagement_events_event_type_format.
EVENT_TYPE_PATTERN = "^[a-z][a-z0-9_]{0,62}$"
# The timestamps accepted (RFC 3339 with "T" or a space; seconds and fraction optional), before
# datetime.fromisoformat checks the ranges. Python alone would take more (week dates, compact
# forms, any separator); the database's import_events() takes exactly this (its own copy, held
# to it by tests/integration/ingest/import_cases.py).
TIMESTAMP_FORMAT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
# Fixed forever: derived event ids must not change between releases, or re-runs would duplicate.
EVENT_ID_NAMESPACE = uuid.UUID("5b0a4f53-2f64-4d4e-9a51-3c1e0c0d8f6e")


# UUID version 5's fixed bits, as uuid.UUID(bytes=..., version=5) sets them (RFC 4122 variant).
_VARIANT_CLEAR, _VARIANT_SET = ~(0xC000 << 48), 0x8000 << 48
_VERSION_CLEAR, _VERSION_5 = ~(0xF000 << 64), 5 << 76


@lru_cache(maxsize=64)
def _batch_hash(batch_id: str) -> Any:
    """SHA-1 over the namespace and "batch_id:", copied for each position of the batch."""
    return hashlib.sha1(EVENT_ID_NAMESPACE.bytes + f"{batch_id}:".encode(), usedforsecurity=False)


def derive_event_id(batch_id: str, position: int) -> uuid.UUID:
    """The id of a row sent without one: the same batch id and position give the same id.

    Exactly uuid.uuid5(EVENT_ID_NAMESPACE, f"{batch_id}:{position}") (held by a test), computed
    from the batch's hashed prefix: a third of the cost per row.
    """
    digest = _batch_hash(batch_id).copy()
    digest.update(str(position).encode())
    number = int.from_bytes(digest.digest()[:16], "big")
    return uuid.UUID(int=(number & _VARIANT_CLEAR | _VARIANT_SET) & _VERSION_CLEAR | _VERSION_5)


def show(value: Any, limit: int = 80) -> str:
    """A value as it appears in JSON, shortened and ASCII-only, for a message about it."""
    text = json.dumps(value, ensure_ascii=True, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, as the sender would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def ahead_text(seconds: int) -> str:
    """How far ahead a timestamp is, as people say it: seconds under an hour (near the allowed skew,
    where they matter), then hours under 48, days under two years, then years of 365.25 days, each
    rounded. The same integer arithmetic as the database's engagement_import_ahead()."""
    if seconds < 3600:
        return f"{seconds} s"
    if seconds < 172800:
        return f"{(seconds + 1800) // 3600} h"
    if seconds < 63072000:
        return f"{(seconds + 43200) // 86400} days"
    return f"{(seconds + 15778800) // 31557600} years"


@dataclass(frozen=True)
class Rules:
    """What a row is checked against: the reserved types (read from the database) and the limits."""

    reserved_event_types: frozenset[str]
    max_value_bytes: int
    max_clock_skew: timedelta


class ValidEvent(NamedTuple):
    """A row ready to insert: UTC timestamp, id decided, value serialised once."""

    position: int
    id: uuid.UUID
    user_id: uuid.UUID
    timestamp: datetime
    event_type: str
    value_json: str


def _find_unstorable(value: Any, path: str = "$") -> str | None:
    """Where a decoded JSON value holds what jsonb refuses: U+0000 or an unpaired surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path} contains \\u0000, which PostgreSQL's jsonb cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{path} contains an unpaired surrogate \\u{ord(value[exc.start]):04x}"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unstorable(key, f"{path} key {show(key, 40)}") or _find_unstorable(
                item, f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{show(key, 40)}]"
            )
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unstorable(item, f"{path}[{index}]")
            if found:
                return found
    return None


def reserved_refusal(event_type: str, rules: Rules) -> str | None:
    """Why an event type may not be imported (the engine's own), or None."""
    if event_type in rules.reserved_event_types:
        reserved = ", ".join(sorted(rules.reserved_event_types))
        return f"event_type {show(event_type)} is reserved for the nudge engine (reserved: {reserved})"
    return None


def parse_timestamp(raw: str, rules: Rules, now: datetime) -> datetime:
    """A timestamp string as a UTC datetime; ValueError with the reason when it is refused."""
    try:
        if not TIMESTAMP_FORMAT.fullmatch(raw):
            raise ValueError
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"timestamp {show(raw)} is not an ISO-8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(
            f"timestamp {show(raw)} has no UTC offset, so the instant is ambiguous; add one, e.g. Z or +02:00"
        )
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00, past year 9999 in UTC
        raise ValueError(f"timestamp {show(raw)} is out of range") from None
    ahead = utc - now
    if ahead > rules.max_clock_skew:
        raise ValueError(
            f"timestamp {show(raw)} is {ahead_text(round(ahead.total_seconds()))} in the future (now is "
            f"{now.isoformat(timespec='seconds')}); at most {rules.max_clock_skew.total_seconds():.0f} s "
            "of clock skew is allowed"
        )
    return utc


def value_size_refusal(size: int, rules: Rules) -> str | None:
    """Why a value of `size` bytes (as compact JSON, UTF-8) is too large, or None."""
    if size > rules.max_value_bytes:
        return f"value is {size} bytes as JSON, over the limit of {rules.max_value_bytes} bytes"
    return None


def _context(info: ValidationInfo) -> dict[str, Any]:
    """What validate_event passes every validator: {"rules": Rules, "now": datetime}."""
    context: dict[str, Any] = info.context or {}
    return context


class IncomingEvent(BaseModel):
    """One event as a sender writes it. Context: `rules` (Rules) and `now` (aware datetime).

    UUIDs and the event type's pattern are checked by pydantic's core; `value` comes out as the
    compact JSON text the jsonb column receives, serialised once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID | None = None
    user_id: uuid.UUID
    event_type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]
    timestamp: datetime | None = None
    value: str = "{}"

    @field_validator("event_type")
    @classmethod
    def _not_reserved(cls, event_type: str, info: ValidationInfo) -> str:
        refusal = reserved_refusal(event_type, _context(info)["rules"])
        if refusal:
            raise ValueError(refusal)
        return event_type

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, raw: Any, info: ValidationInfo) -> datetime | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ValueError(
                f"timestamp must be an ISO-8601 string with a UTC offset, got {json_type(raw)} {show(raw)}"
            )
        context = _context(info)
        return parse_timestamp(raw, context["rules"], context["now"])

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, raw: Any, info: ValidationInfo) -> str:
        if not isinstance(raw, dict):
            raise ValueError(f"value must be a JSON object, got {json_type(raw)} {show(raw)}")
        try:
            text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ValueError("value contains NaN or Infinity, which JSON does not allow") from None
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # an unpaired surrogate; found and named below
            size = -1
        # json writes U+0000 as \u0000; the text may also hold that escape literally, so look.
        if size < 0 or "\\u0000" in text:
            problem = _find_unstorable(raw)
            if problem:
                raise ValueError(f"value: {problem}")
        refusal = value_size_refusal(size, _context(info)["rules"])
        if refusal:
            raise ValueError(refusal)
        return text


def _reason(exc: ValidationError) -> str:
    """Every problem of the row, in field order, as one line."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"])
        kind = error["type"]
        if kind == "value_error":
            parts.append(str(error["ctx"]["error"]))
        elif kind == "missing":
            parts.append(f"{field} is required")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field {show(field, 40)} (fields are: {', '.join(FIELDS)})")
        elif kind == "string_pattern_mismatch":
            parts.append(
                f"event_type {show(error['input'])} must be lowercase snake_case: a letter, then at most 62 "
                f"letters, digits or underscores ({EVENT_TYPE_PATTERN})"
            )
        elif kind == "uuid_parsing":
            parts.append(f"{field} {show(error['input'])} is not a UUID")
        elif kind in ("uuid_type", "string_type"):
            expected = "a UUID string" if kind == "uuid_type" else "a string"
            parts.append(f"{field} must be {expected}, got {json_type(error['input'])} {show(error['input'])}")
        elif kind == "model_type":
            parts.append(f"expected a JSON object, got {json_type(error['input'])} {show(error['input'])}")
        else:
            parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def validate_event(
    obj: Any,
    *,
    rules: Rules,
    now: datetime,
    batch_id: str,
    position: int,
    default_timestamp: datetime,
) -> ValidEvent | str:
    """The row ready to insert, or the reason it is refused.

    A row without `timestamp` gets `default_timestamp` (when it was received); one without `id`
    gets the id derived from (batch_id, position), so sending the batch again inserts nothing.
    The fast path takes the rows that plainly pass; the reference model decides the rest.
    """
    fast = fast_validate(
        obj, rules=rules, now=now, batch_id=batch_id, position=position, default_timestamp=default_timestamp
    )
    if fast is not None:
        return fast
    return reference_validate(
        obj, rules=rules, now=now, batch_id=batch_id, position=position, default_timestamp=default_timestamp
    )


def reference_validate(
    obj: Any,
    *,
    rules: Rules,
    now: datetime,
    batch_id: str,
    position: int,
    default_timestamp: datetime,
) -> ValidEvent | str:
    """validate_event by the reference model alone: what the fast path must agree with."""
    try:
        event = IncomingEvent.model_validate(obj, context={"rules": rules, "now": now})
    except ValidationError as exc:
        return _reason(exc)
    return ValidEvent(
        position=position,
        id=event.id or derive_event_id(batch_id, position),
        user_id=event.user_id,
        timestamp=event.timestamp or default_timestamp,
        event_type=event.event_type,
        value_json=event.value,
    )


class _Shape(msgspec.Struct, forbid_unknown_fields=True):
    """An event's shape as the fast path takes it: canonical or 32-digit UUIDs (the reference
    also reads braces and URNs), the event type's pattern anchored as pydantic anchors it
    (Python's `$` would also match before a final newline), and `value` an object."""

    user_id: uuid.UUID
    event_type: Annotated[str, msgspec.Meta(pattern=r"\A" + EVENT_TYPE_PATTERN[1:-1] + r"\Z")]
    id: uuid.UUID | None = None
    timestamp: str | None = None
    value: dict[str, Any] = {}


VALUE_ENCODER = msgspec.json.Encoder()
# Output of msgspec's encoder that may differ from the reference's json.dumps, or hide a
# refusal: floats it writes in another form (1e16 for 1e+16, 0.00001 for 1e-05), null (how it
# writes NaN and Infinity, which a task's batch may hold), and \u0000. Strings and integers are
# written byte for byte alike (held by tests/unit/ingest/test_import_fast_path.py).
REFERENCE_ONLY = re.compile(rb"[0-9][eE]|\.0000|null|\\u0000")


def fast_validate(
    obj: Any,
    *,
    rules: Rules,
    now: datetime,
    batch_id: str,
    position: int,
    default_timestamp: datetime,
) -> ValidEvent | None:
    """The row ready to insert when it plainly passes, exactly as the reference would make it;
    None sends the row to the reference (IncomingEvent), which decides it and words any refusal."""
    try:
        shape = msgspec.convert(obj, _Shape)
    except msgspec.ValidationError:
        return None
    if reserved_refusal(shape.event_type, rules):
        return None
    timestamp = default_timestamp
    if shape.timestamp is not None:
        try:
            timestamp = parse_timestamp(shape.timestamp, rules, now)
        except ValueError:
            return None
    try:
        text = VALUE_ENCODER.encode(shape.value)
    except (msgspec.EncodeError, UnicodeEncodeError):  # e.g. an unpaired surrogate
        return None
    if REFERENCE_ONLY.search(text) or value_size_refusal(len(text), rules):
        return None
    return ValidEvent(
        position=position,
        id=shape.id or derive_event_id(batch_id, position),
        user_id=shape.user_id,
        timestamp=timestamp,
        event_type=shape.event_type,
        value_json=text.decode(),
    )


def event_id_of(obj: Any, batch_id: str, position: int) -> uuid.UUID:
    """The id a refused row would get once it passes: its own if readable, else the derived one."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        try:
            return uuid.UUID(obj["id"])
        except ValueError:
            pass
    return derive_event_id(batch_id, position)


def user_id_of(obj: Any) -> uuid.UUID | None:
    """The refused row's user where it can be read, so erasure finds quarantined input too."""
    if isinstance(obj, dict) and isinstance(obj.get("user_id"), str):
        try:
            return uuid.UUID(obj["user_id"])
        except ValueError:
            return None
    return None
