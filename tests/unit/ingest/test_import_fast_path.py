"""The importer's fast path (msgspec) against its reference (Python's json, the pydantic model).

The fast path may only take rows the reference accepts, giving exactly what the reference gives;
everything else it must hand over. These tests compare the two on the whole case table of
tests/integration/ingest/import_cases.py and on inputs where the libraries are known to differ.
"""

from __future__ import annotations

import json
import math
import random
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.ingest.import_cases import CASES, Context
from worker.ingest import rows as rows_module
from worker.ingest import sources
from worker.ingest.rows import (
    EVENT_ID_NAMESPACE,
    Rules,
    derive_event_id,
    fast_validate,
    reference_validate,
    validate_event,
)
from worker.ingest.sources import parse_json

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
RULES = Rules(
    reserved_event_types=frozenset({"nudge_sent", "nudge_delivered", "nudge_failed", "nudge_withheld"}),
    max_value_bytes=65536,
    max_clock_skew=timedelta(seconds=300),
)
USER = "0b5d3f2e-8a1c-4c6e-9f7a-2d4b6e8f0a1c"


def both(obj: Any, position: int = 3) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {
        "rules": RULES,
        "now": NOW,
        "batch_id": "b",
        "position": position,
        "default_timestamp": NOW,
    }
    return fast_validate(obj, **kwargs), reference_validate(obj, **kwargs)


def test_derived_ids_are_uuid5_of_batch_and_position() -> None:
    """Byte-identical to uuid.uuid5, so batches imported by older releases dedupe."""
    for batch_id in ("bench", "sha256:0123abcd", "crm-2026-11-26", "é-😀", "a:b", ""):
        for position in (*range(0, 300), 10**9, 2**63):
            expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{batch_id}:{position}")
            got = derive_event_id(batch_id, position)
            assert (got, got.version, got.variant) == (expected, 5, uuid.RFC_4122)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_fast_path_agrees_with_the_reference_on_every_case(case: Any) -> None:
    ctx = Context(user=uuid.UUID(USER), stranger=uuid.uuid4(), now=NOW)
    fast, reference = both(case.row(ctx))
    assert fast is None or fast == reference


def test_the_fast_path_takes_plain_rows() -> None:
    """It is used at all: the rows a sync sends pass without the reference."""
    plain = [
        {"user_id": USER, "event_type": "app_open"},
        {"user_id": USER.upper(), "event_type": "steps_import", "timestamp": "2026-11-26T09:00:00Z"},
        {"user_id": USER, "event_type": "a", "id": USER.replace("-", ""), "timestamp": None},
        {"user_id": USER, "event_type": "goal_complete", "value": {"goal": "walk_10k", "streak": 3, "ok": True}},
        {"user_id": USER, "event_type": "x", "value": {"n": 2**80, "f": 2.5, "s": 'é😀"\\\n\t\x01', "l": [1, [2]]}},
    ]
    for obj in plain:
        fast, reference = both(obj)
        assert fast is not None and fast == reference


@pytest.mark.parametrize(
    "value",
    [
        {"x": float("nan")},  # a task's batch (decoded by kombu's json) may hold NaN
        {"x": float("inf")},
        {"x": [float("-inf")]},
        {"x": 1e16},  # msgspec writes 1e16, json 1e+16
        {"x": 1e-05},  # msgspec writes 0.00001, json 1e-05
        {"x": None},
        {"x": "\x00"},
        {"\x00": 1},
        {"x": "\ud800"},
        {"\udfff": 1},
        {"note": "x" * 65525},  # exactly at the limit: the reference counts it
        {"note": "x" * 65526},
    ],
    ids=repr,
)
def test_values_the_fast_path_leaves_to_the_reference(value: dict[str, Any]) -> None:
    fast, reference = both({"user_id": USER, "event_type": "app_open", "value": value})
    assert fast is None or fast == reference
    if any(isinstance(v, float) and not math.isfinite(v) for v in value.values()):
        assert reference == "value contains NaN or Infinity, which JSON does not allow"


def test_nan_from_a_task_batch_is_refused_with_its_reason() -> None:
    reason = validate_event(
        {"user_id": USER, "event_type": "app_open", "value": {"x": float("nan")}},
        rules=RULES,
        now=NOW,
        batch_id="b",
        position=0,
        default_timestamp=NOW,
    )
    assert reason == "value contains NaN or Infinity, which JSON does not allow"


def _floats() -> list[float]:
    rng = random.Random(7)
    found = [float(f"{m}e{e}") for e in range(-330, 310) for m in (1, 1.5, 9.999)]
    found += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    found += [rng.random() * 10 ** rng.randint(-25, 25) for _ in range(20_000)]
    return [f for f in found if f == f and f not in (float("inf"), float("-inf"))] + [0.0, -0.0, 5e-324]


def _reference_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def test_strings_and_integers_are_written_as_json_writes_them() -> None:
    """msgspec's text is json.dumps's to the byte (so the size rule counts the same bytes):
    every BMP character and more, as keys and values, and integers of any size."""
    text = "".join(chr(i) for i in range(0x10000) if not 0xD800 <= i < 0xE000) + "😀\U0010ffff"
    for value in ({text: text}, {"n": [0, -1, 2**63, -(2**64), 10**40]}, {"b": [True, False, {}, []]}):
        assert rows_module.VALUE_ENCODER.encode(value).decode() == _reference_text(value)


def test_floats_written_otherwise_are_left_to_the_reference() -> None:
    """Where msgspec writes a float unlike json (1e16 for 1e+16, 0.00001 for 1e-05), the guard
    sends the row to the reference; where the guard lets it through, the text is json's."""
    through = 0
    for number in _floats():
        fast = rows_module.VALUE_ENCODER.encode({"f": number})
        if not rows_module.REFERENCE_ONLY.search(fast):
            through += 1
            assert fast.decode() == _reference_text({"f": number})
    assert through > 1000


JSON_TEXTS = [
    '{"a":1}',
    ' \t{"a": [1, 2.5, -0, -0.0, 1E2, 1e-7, true, false, null]}\r ',
    '{"a":123456789012345678901234567890,"b":-18446744073709551617}',
    '{"a":1e400}',
    '{"a":-1e400}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":-Infinity}',
    '{"a":"\\ud800"}',
    '{"a":"\\ud83d\\ude00","\\u0000":"\\u0000"}',
    '{"a":1,"a":2}',
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":"x\x01"}',
    '{"a":1}x',
    "\u00a0{}",
    "{}\x0c",
    '"text"',
    "42",
    "null",
    "",
    "{",
    '{"a":',
    "[" * 150 + "]" * 150,
    "[" * 5000 + "]" * 5000,
    '{"a":' * 150 + "1" + "}" * 150,
]


def _outcome(text: str) -> tuple[str, str]:
    try:
        return ("ok", repr(parse_json(text)))
    except ValueError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("text", JSON_TEXTS, ids=lambda t: repr(t[:40]))
def test_parsing_gives_what_pythons_json_gives(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same objects (types and signs included) and the same messages, with or without msgspec."""
    fast = _outcome(text)
    monkeypatch.setattr(sources, "FAST_MAX_BRACKETS", -1)  # Python's json only
    assert fast == _outcome(text)
