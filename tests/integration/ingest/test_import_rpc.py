"""`POST /rpc/import_events` as PostgREST runs it (events_schema/postgrest.py request() + rpc()):
who may call it, idempotent batches (sent twice, sent at once), quarantine and replay, the
limits, and what a body PostgreSQL cannot take does. The validation rules themselves are the
shared table's (test_import_cases.py)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from events_schema.db import connect
from tests.integration.ingest.import_helpers import add_users, event, import_cli, quarantined, stored_ids
from tests.integration.ingest.rpc_helpers import body_of, call
from tests.waiting import join
from worker.ingest.rows import derive_event_id
from worker.ingest.sources import batch_content_id
from worker.tasks import import_events

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


@pytest.fixture
def user(admin: psycopg.Connection) -> uuid.UUID:
    return add_users(admin)[0]


def api_connection(db_url: str) -> psycopg.Connection:
    """Another connection as PostgREST's `authenticator`, for a second concurrent request."""
    return connect(make_url(db_url).set(username="authenticator", password=None).render_as_string(hide_password=False))


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_role_may_call_it(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID, role: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        call(api, body_of([event(user)]), role=role, user=user if role == "authenticated" else None)
    assert refused.value.sqlstate == "42501"
    assert "permission denied for function import_events" in str(refused.value)
    assert stored_ids(admin) == set()
    # Not through a grant to PUBLIC either (functions are executable by everyone by default).
    [public] = admin.execute(
        "select bool_or(a.grantee = 0) from pg_proc p, aclexplode(p.proacl) a where p.proname = 'import_events'"
    ).fetchone()
    assert public is False


def test_good_rows_land_and_bad_rows_are_quarantined_with_reason_and_position(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    good = [event(user), {"user_id": str(user), "event_type": "goal_complete", "value": {"steps": 10}}]
    bad = [{"user_id": str(user), "event_type": "App Open"}, {"user_id": str(uuid.uuid4()), "event_type": "app_open"}]
    summary = call(api, body_of([good[0], bad[0], good[1], bad[1]], "mixed"))
    assert (summary["inserted"], summary["duplicates"], summary["rejected"], summary["batch_id"]) == (2, 0, 2, "mixed")
    assert [e["index"] for e in summary["errors"]] == [1, 3]
    assert summary["errors_omitted"] == 0
    assert stored_ids(admin) == {good[0]["id"], str(derive_event_id("mixed", 2))}
    kept = quarantined(admin)
    assert [(b, p, r) for b, p, _, r in kept] == [("mixed", e["index"], e["error"]) for e in summary["errors"]]
    assert [json.loads(raw) for _, _, raw, _ in kept] == bad
    # Kept with when it arrived (the request's transaction start) and the ids it will get.
    rows = admin.execute(
        "select received_at, event_id, user_id from engagement_import_quarantine order by position"
    ).fetchall()
    assert [r[1] for r in rows] == [derive_event_id("mixed", 1), derive_event_id("mixed", 3)]
    assert rows[0][2] == user


def test_a_row_without_timestamp_gets_the_requests_time(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    with api.transaction():
        [started] = api.execute("select transaction_timestamp()").fetchone()
        call(api, body_of([{"user_id": str(user), "event_type": "app_open"}], "clock"))
    [(stamp,)] = admin.execute("select timestamp from engagement_events").fetchall()
    assert stamp == started


def test_a_batch_sent_twice_lands_once(api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID) -> None:
    batch = [event(user), {"user_id": str(user), "event_type": "app_open"}, {"user_id": "nope", "event_type": "x"}]
    first = call(api, body_of(batch, "retried"))
    second = call(api, body_of(batch, "retried"))
    assert (first["inserted"], first["duplicates"], first["rejected"]) == (2, 0, 1)
    assert (second["inserted"], second["duplicates"], second["rejected"]) == (0, 2, 1)
    assert second["errors"] == first["errors"]
    assert len(stored_ids(admin)) == 2
    assert len(quarantined(admin)) == 1


def test_two_calls_of_one_batch_at_once_land_it_once(
    db_url: str, api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    """The second call waits on the first's uncommitted rows, then finds them: duplicates."""
    batch = [event(user) for _ in range(50)] + [{"user_id": str(user), "event_type": "bad type"}]
    body = body_of(batch, "concurrent")
    results: dict[str, Any] = {}
    with api_connection(db_url) as second_conn:
        [second_pid] = second_conn.execute("select pg_backend_pid()").fetchone()
        second_conn.commit()
        with api.transaction():
            results["first"] = call(api, body)  # inserted, not yet committed
            second = threading.Thread(target=lambda: results.setdefault("second", call(second_conn, body)))
            second.start()
            deadline = time.monotonic() + 30
            while admin.execute(
                "select wait_event_type from pg_stat_activity where pid = %s", (second_pid,)
            ).fetchone() != ("Lock",):
                assert time.monotonic() < deadline, "the second call never waited on the first"
                time.sleep(0.02)
        join(second)
    assert (results["first"]["inserted"], results["first"]["rejected"]) == (50, 1)
    assert (results["second"]["inserted"], results["second"]["duplicates"], results["second"]["rejected"]) == (0, 50, 1)
    assert len(stored_ids(admin)) == 50
    assert len(quarantined(admin)) == 1


def test_without_a_batch_id_the_content_hash_is_the_tasks(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    """Rows without ids land once whether sent through the RPC or the Celery task."""
    batch = [
        {"user_id": str(user), "event_type": "app_open", "value": v}
        for v in (
            {"km": 3.20},
            {"b": [1, {"z": None, "a": "é😀\n"}], "a": True},
            {"big": 12345678901234567890},
            {"small": 0.000123},
            {"tiny": 1.5e-7},
            {"whole": 100.0},
            {"neg": -2.5},
            {},
        )
    ]
    summary = call(api, body_of(batch))
    assert summary["batch_id"] == batch_content_id(batch, None, None)
    assert summary["inserted"] == len(batch)
    again = import_events(batch)
    assert (again["batch_id"], again["inserted"], again["duplicates"]) == (summary["batch_id"], 0, len(batch))


def test_the_same_rows_through_the_task_first_then_the_rpc_land_once(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    batch = [{"user_id": str(user), "event_type": "app_open"}, {"user_id": str(user), "event_type": "Bad"}]
    first = import_events(batch, batch_id="both-ways")
    second = call(api, body_of(batch, "both-ways"))
    assert (first["inserted"], second["inserted"], second["duplicates"]) == (1, 0, 1)
    assert stored_ids(admin) == {str(derive_event_id("both-ways", 0))}
    assert len(quarantined(admin)) == 1


def test_what_it_quarantined_replays_with_the_cli(
    db_url: str, api: psycopg.Connection, admin: psycopg.Connection
) -> None:
    """A row refused for its unknown user lands once the user exists, with the id the RPC gave it."""
    later = uuid.uuid4()
    summary = call(api, body_of([{"user_id": str(later), "event_type": "app_open"}], "early"))
    assert summary["rejected"] == 1
    admin.execute("insert into auth.users (id) values (%s)", (later,))
    replay = import_cli(["--replay-rejected", "--batch-id", "early", "--json"], db_url)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["inserted"] == 1
    assert stored_ids(admin) == {str(derive_event_id("early", 0))}
    assert quarantined(admin) == []
    resent = call(api, body_of([{"user_id": str(later), "event_type": "app_open"}], "early"))
    assert (resent["inserted"], resent["duplicates"], resent["rejected"]) == (0, 1, 0)


def test_more_events_than_the_limit_fail_at_once_with_a_clear_error(
    api: psycopg.Connection, admin: psycopg.Connection
) -> None:
    # The default limit is 10,000 events: one more is refused before any row is looked at.
    with pytest.raises(psycopg.Error) as refused:
        call(api, body_of([{}] * 10001, "huge"))
    assert refused.value.sqlstate == "PT413"  # PostgREST answers 413 Payload Too Large
    assert str(refused.value).startswith("batch has 10001 events, more than the 10000 one call may import")
    assert refused.value.diag.message_hint == "Send at most 10000 events per call, each call with its own batch_id."
    assert quarantined(admin) == []
    # Exactly at the limit is accepted (each {} refused as a row, not the call).
    summary = call(api, body_of([{}] * 10000, "at-limit"))
    assert (summary["rejected"], len(summary["errors"]), summary["errors_omitted"]) == (10000, 1000, 9000)


def test_the_limits_are_settings(db_url: str, admin: psycopg.Connection, user: uuid.UUID) -> None:
    name = make_url(db_url).database
    admin.execute(f'alter database "{name}" set engagement.import_rpc_max_rows = 2')
    admin.execute(f'alter database "{name}" set engagement.import_rpc_max_bytes = 2000')
    admin.execute(f'alter database "{name}" set engagement.import_max_value_bytes = 20')
    with api_connection(db_url) as api:
        assert call(api, body_of([event(user, value={"note": "x" * 9})], "a"))["inserted"] == 1
        over = call(api, body_of([event(user, value={"note": "x" * 10})], "b"))
        assert over["errors"] == [{"index": 0, "error": "value is 21 bytes as JSON, over the limit of 20 bytes"}]
        with pytest.raises(psycopg.Error, match="batch has 3 events, more than the 2 one call may import"):
            call(api, body_of([event(user)] * 3, "c"))
        with pytest.raises(psycopg.Error, match=r"batch is \d+ bytes, more than the 2000 one call may import") as big:
            call(api, body_of([event(user, value={"note": "x" * 2000})], "d"))
        assert big.value.sqlstate == "PT413"


@pytest.mark.parametrize("batch", [{"user_id": "x"}, "events", None])
def test_a_batch_that_is_not_an_array_is_refused(api: psycopg.Connection, batch: Any) -> None:
    with pytest.raises(errors.InvalidParameterValue, match="batch must be a JSON array of event objects"):
        call(api, body_of(batch, "shape"))


def test_a_body_postgresql_cannot_store_fails_whole(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    """\\u0000 cannot become jsonb, and NaN is not JSON: PostgREST's own cast refuses the request
    (HTTP 400) before the function runs, so nothing of it is written, not even its good rows."""
    good = json.dumps(event(user))
    with pytest.raises(errors.UntranslatableCharacter):
        call(api, '{"batch": [' + good + ', {"user_id": "a\\u0000b", "event_type": "app_open"}], "batch_id": "nul"}')
    with pytest.raises(errors.InvalidTextRepresentation):
        call(api, '{"batch": [' + good + ', {"value": {"x": NaN}}], "batch_id": "nan"}')
    assert stored_ids(admin) == set()
    assert quarantined(admin) == []


def test_a_body_sent_to_the_rpc_and_imported_by_the_cli_lands_once(
    db_url: str, api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID, tmp_path: Any
) -> None:
    """The CLI reads a saved request body (--format body) with the RPC's positions and batch id."""
    batch = [
        {"user_id": str(user), "event_type": "app_open", "value": {"km": 1.5}},
        {"user_id": str(user), "event_type": "goal_complete"},
        {"user_id": str(user), "event_type": "Bad"},
    ]
    for batch_id in ("saved-body", None):
        body = body_of(batch, batch_id)
        first = call(api, body)
        (tmp_path / "body.json").write_text(body)
        again = import_cli([str(tmp_path / "body.json"), "--format", "body", "--json"], db_url)
        assert again.returncode == 1, again.stderr  # one row refused, as by the RPC
        summary = json.loads(again.stdout)
        assert (summary["batch_id"], summary["inserted"], summary["duplicates"]) == (first["batch_id"], 0, 2)
        assert summary["errors"] == first["errors"]  # {"index": 2, ...}
    assert len(stored_ids(admin)) == 4
    assert len(quarantined(admin)) == 2


def test_a_file_that_is_not_a_request_body_is_one_line_of_error(db_url: str, tmp_path: Any) -> None:
    (tmp_path / "body.json").write_text('[{"user_id": "x"}]')
    result = import_cli([str(tmp_path / "body.json"), "--format", "body"], db_url)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'error: {tmp_path / "body.json"}: a request body is a JSON object {{"batch": [...], "batch_id": "..."}}'
    ]


def test_a_refused_row_with_the_id_of_a_row_that_landed_is_not_kept(
    api: psycopg.Connection, admin: psycopg.Connection, user: uuid.UUID
) -> None:
    """As in the Python path: its event exists, so there is nothing to replay."""
    good = event(user)
    batch = [good, {**good, "event_type": "Bad"}]
    rpc_summary = call(api, body_of(batch, "same-id"))
    assert (rpc_summary["inserted"], rpc_summary["rejected"]) == (1, 1)
    assert quarantined(admin) == []
    admin.execute("truncate engagement_events")
    task_summary = import_events(batch, batch_id="same-id")
    assert task_summary == rpc_summary
    assert quarantined(admin) == []
