"""Reading import files into rows, and the ids derived from batches (no services needed)."""

from __future__ import annotations

import io
import uuid

import pytest

from worker.ingest.rows import derive_event_id
from worker.ingest.sources import (
    KEPT_OF_LONG_LINE,
    ImportFileError,
    Row,
    batch_content_id,
    parse_raw,
    read_rows,
    rows_of_batch,
)

USER = "0b5d3f2e-8a1c-4c6e-9f7a-2d4b6e8f0a1c"


def rows(data: bytes, fmt: str = "ndjson", max_line_bytes: int = 1 << 16) -> list[Row]:
    return list(read_rows(io.BytesIO(data), fmt, max_line_bytes))


def test_derived_ids_never_change_between_releases() -> None:
    """Re-running an old batch must dedupe against what an older release inserted."""
    assert derive_event_id("wearables-2026-11-26", 1) == uuid.UUID("b73aca40-6d66-5eb3-905b-b4164d740ff4")
    assert derive_event_id("wearables-2026-11-26", 2) != derive_event_id("wearables-2026-11-26", 1)


def test_line_endings_bom_and_blank_lines() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\r\n\n   \n{"b": 2}'  # BOM, CRLF, blank lines, no final newline
    assert [(r.position, r.parsed, r.error) for r in rows(data)] == [(1, {"a": 1}, None), (4, {"b": 2}, None)]


def test_an_over_long_line_is_refused_and_the_next_line_still_read() -> None:
    long_line = b'{"value": "' + b"x" * 10_000 + b'"}\n'
    [refused, after] = rows(long_line + b'{"ok": true}\n', max_line_bytes=5000)
    assert refused.position == 1 and refused.error.startswith("longer than 5000 bytes")
    assert len(refused.raw) == KEPT_OF_LONG_LINE
    assert (after.position, after.parsed) == (2, {"ok": True})


def test_nul_bytes_and_invalid_utf8_are_kept_as_escapes() -> None:
    [nul, latin] = rows(b'{"a": "x\x00y"}\n{"a": "caf\xe9"}\n')
    assert nul.raw == '{"a": "x\\x00y"}' and nul.error.startswith("bad JSON: Invalid control character")
    assert latin.raw == '{"a": "caf\\xe9"}' and latin.error == "not valid UTF-8: byte 0xe9 at byte 11"


def test_nan_is_not_json() -> None:
    [row] = rows(b'{"value": {"x": NaN}}\n')
    assert row.error == "bad JSON: NaN is not valid JSON"


def test_csv_columns_in_any_order_with_json_in_quotes() -> None:
    data = f'event_type,value,user_id\napp_open,"{{""a"": [1, 2]}}",{USER}\ngoal_complete,,{USER}\n'.encode()
    assert [r.parsed for r in rows(data, "csv")] == [
        {"event_type": "app_open", "value": {"a": [1, 2]}, "user_id": USER},
        {"event_type": "goal_complete", "user_id": USER},
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("user_id,kind", 'line 1: unknown CSV column "kind" (columns are: id, user_id, event_type, timestamp, value)'),
        ("user_id,value", "line 1: the CSV header has no event_type column"),
        ("user_id,event_type,user_id", "line 1: the CSV header names a column twice"),
    ],
)
def test_a_bad_csv_header_refuses_the_file(header: str, message: str) -> None:
    with pytest.raises(ImportFileError) as refused:
        rows(f"{header}\n".encode(), "csv")
    assert str(refused.value) == message


def test_csv_row_problems_are_row_errors() -> None:
    data = f'user_id,event_type,value\n{USER},app_open,{{oops}}\n{USER},"app_open\n'.encode()
    [bad_json, unterminated] = rows(data, "csv")
    assert bad_json.error == "value is not valid JSON: Expecting property name enclosed in double quotes at column 2"
    assert unterminated.error.startswith("bad CSV: ")


def test_replay_parses_raw_rows_as_they_were_kept() -> None:
    assert parse_raw('{"a": 1}', None) == {"a": 1}
    assert parse_raw(f"{USER},app_open", ("user_id", "event_type")) == {"user_id": USER, "event_type": "app_open"}
    with pytest.raises(ValueError, match=r"^bad JSON: Expecting value at column 1$"):
        parse_raw("", None)


def test_a_batch_keeps_its_positions_and_the_senders_unparsed_rows() -> None:
    batch = rows_of_batch(
        [{"a": 1}, {"b": 2}], positions=[3, 9], unparsed=[{"position": 5, "raw": "{", "error": "bad JSON"}]
    )
    assert [(r.position, r.parsed, r.error) for r in batch] == [
        (3, {"a": 1}, None),
        (5, None, "bad JSON"),
        (9, {"b": 2}, None),
    ]
    with pytest.raises(ValueError, match="2 positions for a batch of 1 rows"):
        rows_of_batch([{}], positions=[1, 2])


def test_a_batch_without_id_is_named_by_its_content() -> None:
    assert batch_content_id([{"a": 1, "b": 2}], None, None) == batch_content_id([{"b": 2, "a": 1}], None, None)
    assert batch_content_id([{"a": 1}], None, None) != batch_content_id([{"a": 2}], None, None)
