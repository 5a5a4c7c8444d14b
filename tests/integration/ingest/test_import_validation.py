"""One test per validation rule of the bulk import: each bad row is refused with a precise
message and kept in the quarantine, and its valid neighbours land.

Batches go through the `import_events` task's own code, run in this process.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.integration.ingest.import_helpers import NOW, add_users, event, quarantined, stored_ids
from worker.ingest.importer import import_rows
from worker.ingest.sources import read_rows
from worker.tasks import import_events

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


@pytest.fixture
def user(admin: psycopg.Connection) -> uuid.UUID:
    return add_users(admin)[0]


def import_between_neighbours(admin: psycopg.Connection, user: uuid.UUID, bad: Any) -> str:
    """Import [good, bad, good]; check the good ones landed and only the bad one was kept
    aside. Returns the bad row's message."""
    before, after = event(user), event(user)
    summary = import_events([before, bad, after], batch_id="neighbours", now=NOW.isoformat())
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (2, 0, 1)
    [error] = summary["errors"]
    assert error["index"] == 1
    assert stored_ids(admin) == {before["id"], after["id"]}
    [(batch_id, position, raw, reason)] = quarantined(admin)
    assert (batch_id, position, reason) == ("neighbours", 1, error["error"])
    assert json.loads(raw) == bad
    return error["error"]


def test_user_id_must_be_a_uuid(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(admin, user, {"user_id": "user-42", "event_type": "app_open"})
    assert message == 'user_id "user-42" is not a UUID'


def test_user_id_of_an_unknown_user_refuses_that_row_only(admin: psycopg.Connection, user: uuid.UUID) -> None:
    stranger = uuid.uuid4()
    message = import_between_neighbours(admin, user, {"user_id": str(stranger), "event_type": "app_open"})
    assert message == f"user_id {stranger} is not a user of this project (no such auth user)"


def test_user_id_is_required(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(admin, user, {"event_type": "app_open"})
    assert message == "user_id is required"


def test_event_type_follows_the_tables_rule(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(admin, user, {"user_id": str(user), "event_type": "App Open"})
    assert message == (
        'event_type "App Open" must be lowercase snake_case: a letter, then at most 62 '
        "letters, digits or underscores (^[a-z][a-z0-9_]{0,62}$)"
    )


def test_event_type_longer_than_63_characters_is_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(admin, user, {"user_id": str(user), "event_type": "a" * 64})
    assert message.startswith('event_type "aaaa') and "(^[a-z][a-z0-9_]{0,62}$)" in message


def test_every_reserved_event_type_is_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    """The reserved set is the database function's, so every type it names is refused here."""
    [reserved] = admin.execute("select public.engagement_reserved_event_types()").fetchone()
    assert "nudge_sent" in reserved
    listed = ", ".join(sorted(reserved))
    good = event(user)
    summary = import_events([good] + [{"user_id": str(user), "event_type": t} for t in reserved], now=NOW.isoformat())
    assert summary["inserted"] == 1 and summary["rejected"] == len(reserved)
    assert [e["error"] for e in summary["errors"]] == [
        f'event_type "{t}" is reserved for the nudge engine (reserved: {listed})' for t in reserved
    ]
    assert stored_ids(admin) == {good["id"]}


def test_timestamp_without_offset_is_ambiguous(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "timestamp": "2026-11-26T10:00:00"}
    )
    assert message == (
        'timestamp "2026-11-26T10:00:00" has no UTC offset, so the instant is ambiguous; add one, e.g. Z or +02:00'
    )


def test_timestamp_must_be_iso_8601(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "timestamp": 1764151200}
    )
    assert message == "timestamp must be an ISO-8601 string with a UTC offset, got number 1764151200"


def test_timestamp_beyond_the_clock_skew_is_refused_and_within_it_accepted(
    admin: psycopg.Connection, user: uuid.UUID
) -> None:
    # The default allowed skew is 300 s; NOW is 12:00:00Z.
    at_limit = event(user, timestamp="2026-11-26T12:05:00Z")
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "timestamp": "2026-11-26T12:05:01Z"}
    )
    assert message == (
        'timestamp "2026-11-26T12:05:01Z" is 301 s in the future (now is '
        "2026-11-26T12:00:00+00:00); at most 300 s of clock skew is allowed"
    )
    assert import_events([at_limit], now=NOW.isoformat())["inserted"] == 1


def test_timestamp_is_normalised_to_utc(admin: psycopg.Connection, user: uuid.UUID) -> None:
    row = event(user, timestamp="2026-11-26T13:30:00+02:00")
    import_events([row], now=NOW.isoformat())
    [(stamp,)] = admin.execute("select timestamp::text from engagement_events").fetchall()
    assert stamp == "2026-11-26 11:30:00+00"


def test_missing_timestamp_is_when_the_batch_arrived(admin: psycopg.Connection, user: uuid.UUID) -> None:
    import_events([{"user_id": str(user), "event_type": "app_open"}], now=NOW.isoformat())
    [(stamp,)] = admin.execute("select timestamp from engagement_events").fetchall()
    assert stamp == NOW


@pytest.mark.parametrize(
    ("value", "shown"), [([1, 2], "array [1, 2]"), ("steps", 'string "steps"'), (None, "null null")]
)
def test_value_must_be_a_json_object(admin: psycopg.Connection, user: uuid.UUID, value: Any, shown: str) -> None:
    message = import_between_neighbours(admin, user, {"user_id": str(user), "event_type": "app_open", "value": value})
    assert message == f"value must be a JSON object, got {shown}"


def test_value_over_the_size_limit_is_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    # {"note":"xxx..."} is 11 bytes plus the string: exactly 65536 bytes passes, one more does not.
    at_limit = event(user, value={"note": "x" * (65536 - 11)})
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "value": {"note": "x" * (65536 - 10)}}
    )
    assert message == "value is 65537 bytes as JSON, over the limit of 65536 bytes"
    assert import_events([at_limit], now=NOW.isoformat())["inserted"] == 1


def test_value_with_u0000_is_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "value": {"device": {"name": "a\u0000b"}}}
    )
    assert message == "value: $.device.name contains \\u0000, which PostgreSQL's jsonb cannot store"


def test_unknown_fields_are_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "app_open", "properties": {"a": 1}}
    )
    assert message == 'unknown field "properties" (fields are: id, user_id, event_type, timestamp, value)'


def test_every_problem_of_a_row_is_named(admin: psycopg.Connection, user: uuid.UUID) -> None:
    message = import_between_neighbours(
        admin, user, {"user_id": str(user), "event_type": "nudge_sent", "timestamp": "yesterday", "value": []}
    )
    assert message.split("; ") == [
        'event_type "nudge_sent" is reserved for the nudge engine (reserved: nudge_delivered, nudge_failed, nudge_sent, nudge_shadow, nudge_withheld)',
        'timestamp "yesterday" is not an ISO-8601 date and time',
        "value must be a JSON object, got array []",
    ]


def _import_text(data: bytes, fmt: str) -> dict[str, Any]:
    summary = import_rows(read_rows(io.BytesIO(data), fmt, 1 << 20), "file", clock=lambda: NOW)
    return summary.as_dict("line")


def test_malformed_json_line_is_refused_with_its_line_number(admin: psycopg.Connection, user: uuid.UUID) -> None:
    good = [event(user), event(user)]
    data = f'{json.dumps(good[0])}\n{{"user_id": "{user}",, }}\n{json.dumps(good[1])}\n'.encode()
    summary = _import_text(data, "ndjson")
    assert summary["inserted"] == 2
    assert summary["errors"] == [
        {"line": 2, "error": "bad JSON: Expecting property name enclosed in double quotes at column 52"}
    ]
    assert stored_ids(admin) == {good[0]["id"], good[1]["id"]}
    assert [(p, raw) for _, p, raw, _ in quarantined(admin)] == [(2, f'{{"user_id": "{user}",, }}')]


def test_csv_line_with_the_wrong_column_count_is_refused(admin: psycopg.Connection, user: uuid.UUID) -> None:
    data = (
        f"user_id,event_type,timestamp,value\n"
        f'{user},app_open,2026-11-26T10:00:00Z,"{{""steps"": 10}}"\n'
        f"{user},app_open,2026-11-26T10:00:00Z\n"
        f"{user},goal_complete,2026-11-26T10:05:00Z,\n"
    ).encode()
    summary = _import_text(data, "csv")
    assert summary["inserted"] == 2
    assert summary["errors"] == [
        {"line": 3, "error": "expected 4 CSV columns (user_id,event_type,timestamp,value), got 3"}
    ]
    rows = admin.execute("select event_type, value from engagement_events order by timestamp").fetchall()
    assert rows == [("app_open", {"steps": 10}), ("goal_complete", {})]
