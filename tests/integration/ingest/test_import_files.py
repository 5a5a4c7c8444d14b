"""Files through `python -m worker import`, idempotency of batches and files, and replay of the
quarantine."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.ingest.import_helpers import (
    NOW,
    add_users,
    event,
    import_cli,
    quarantined,
    stored_ids,
    write_ndjson,
)
from tests.waiting import join
from worker.ingest.importer import import_batch
from worker.ingest.rows import derive_event_id
from worker.tasks import import_events

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def test_mixed_file_imports_every_good_line_and_keeps_each_bad_one(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    good = [event(user) for _ in range(4)]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(
        b"".join(
            [
                json.dumps(good[0]).encode() + b"\n",
                b'{"user_id": "' + str(user).encode() + b'", "event_type": "caf\xe9_visit"}\n',  # Latin-1, not UTF-8
                json.dumps(good[1]).encode() + b"\r\n",
                b"\n",
                b'{"user_id": "oops"\n',
                json.dumps(good[2]).encode() + b"\n",
                json.dumps(good[3]).encode() + b"\n",
                b'{"user_id": "' + str(user).encode() + b'", "event_ty',  # cut off mid-write
            ]
        )
    )

    result = import_cli([str(path), "--json"], db_url)

    assert result.returncode == 1, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    summary = json.loads(result.stdout)
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (4, 0, 3)
    assert summary["errors"] == [
        {"line": 2, "error": "not valid UTF-8: byte 0xe9 at byte 71"},
        {"line": 5, "error": "bad JSON: Expecting ',' delimiter at column 19"},
        {
            "line": 8,
            "error": "truncated: the last line has no line break and is incomplete "
            "(bad JSON: Unterminated string starting at column 53)",
        },
    ]
    assert stored_ids(admin) == {g["id"] for g in good}
    kept = quarantined(admin)
    assert [(p, reason) for _, p, _, reason in kept] == [(e["line"], e["error"]) for e in summary["errors"]]
    assert kept[0][2] == f'{{"user_id": "{user}", "event_type": "caf\\xe9_visit"}}'
    assert {batch for batch, _, _, _ in kept} == {summary["batch_id"]}


def test_csv_file_with_an_unknown_column_is_refused_whole(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,event_type,when\n{user},app_open,2026-11-26T10:00:00Z\n")
    result = import_cli([str(path)], db_url)
    assert result.returncode == 2
    assert result.stderr == (
        f'error: {path}: line 1: unknown CSV column "when" (columns are: id, user_id, event_type, timestamp, value)\n'
    )
    assert stored_ids(admin) == set()


def test_file_imported_twice_with_the_same_batch_id_inserts_nothing_the_second_time(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    rows = [
        {"user_id": str(user), "event_type": "app_open", "timestamp": f"2025-06-01T10:{m:02d}:00Z"} for m in range(30)
    ]
    rows[7]["event_type"] = "nudge_sent"
    path = write_ndjson(tmp_path / "events.ndjson", rows)

    first = json.loads(
        import_cli([str(path), "--batch-id", "wearables-2026-11-26", "--batch-size", "8", "--json"], db_url).stdout
    )
    second = json.loads(
        import_cli([str(path), "--batch-id", "wearables-2026-11-26", "--batch-size", "5", "--json"], db_url).stdout
    )

    assert (first["inserted"], first["duplicates"], first["rejected"]) == (29, 0, 1)
    assert (second["inserted"], second["duplicates"], second["rejected"]) == (0, 29, 1)
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 29
    assert stored_ids(admin) == {
        str(derive_event_id("wearables-2026-11-26", line)) for line in range(1, 31) if line != 8
    }
    assert [(b, p) for b, p, _, _ in quarantined(admin)] == [("wearables-2026-11-26", 8)]


def test_the_default_batch_id_is_the_content_so_a_copied_file_dedupes(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = write_ndjson(tmp_path / "a.ndjson", [{"user_id": str(user), "event_type": "app_open"}] * 3)
    copy = tmp_path / "elsewhere.ndjson"
    shutil.copyfile(path, copy)

    first = json.loads(import_cli([str(path), "--json"], db_url).stdout)
    second = json.loads(import_cli([str(copy), "--json"], db_url).stdout)

    assert first["batch_id"] == second["batch_id"]
    assert (first["inserted"], second["inserted"], second["duplicates"]) == (3, 0, 3)


def test_batch_delivered_twice_inserts_nothing_the_second_time(admin: psycopg.Connection) -> None:
    users = add_users(admin, 3)
    batch = [{"user_id": str(u), "event_type": "app_open", "value": {"n": i}} for i, u in enumerate(users * 4)]
    batch.append({"user_id": str(users[0]), "event_type": "BAD"})

    first = import_events(batch, now=NOW.isoformat())
    again = import_events(batch, now=NOW.isoformat())

    assert first["batch_id"] == again["batch_id"]
    assert (first["inserted"], first["duplicates"], first["rejected"]) == (12, 0, 1)
    assert (again["inserted"], again["duplicates"], again["rejected"]) == (0, 12, 1)
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 12
    assert len(quarantined(admin)) == 1


def test_batch_delivered_twice_at_the_same_time_is_written_once(admin: psycopg.Connection, db_url: str) -> None:
    """A redelivery while the first delivery is still running (a worker thought lost)."""
    users = add_users(admin, 50)
    batch = [{"user_id": str(u), "event_type": "app_open", "value": {"n": n}} for n in range(40) for u in users]
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(import_batch(batch, batch_id="twice", now=NOW, url=db_url)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    join(*threads)
    assert sum(r.inserted for r in results) == 2000
    assert sum(r.duplicates for r in results) == 2000
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 2000


def test_replay_moves_a_fixed_row_and_keeps_what_still_fails(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    latecomer = uuid.uuid4()  # their auth user is created after the import
    path = write_ndjson(
        tmp_path / "day.ndjson",
        [
            {"user_id": str(user), "event_type": "App Open"},  # line 1: fixed by hand below
            {"user_id": str(latecomer), "event_type": "app_open"},  # line 2: passes once the user exists
            {"user_id": str(user), "event_type": "app_open", "value": []},  # line 3: stays refused
            {"user_id": str(user), "event_type": "app_open", "timestamp": "2025-06-01T09:00:00Z"},
        ],
    )
    imported = json.loads(import_cli([str(path), "--batch-id", "day", "--json"], db_url).stdout)
    assert (imported["inserted"], imported["rejected"]) == (1, 3)
    [received_at] = admin.execute("select distinct received_at from engagement_import_quarantine").fetchone()

    admin.execute(
        "update engagement_import_quarantine set raw = replace(raw, 'App Open', 'app_open') where position = 1"
    )
    admin.execute("insert into auth.users (id) values (%s)", (latecomer,))
    result = import_cli(["--replay-rejected", "--batch-id", "day", "--json"], db_url)

    assert result.returncode == 1  # line 3 still fails
    replay = json.loads(result.stdout)
    assert (replay["inserted"], replay["duplicates"], replay["rejected"]) == (2, 0, 1)
    assert replay["errors"] == [
        {"batch_id": "day", "position": 3, "error": "value must be a JSON object, got array []"}
    ]
    moved = admin.execute(
        "select user_id, timestamp from engagement_events where id = any(%s)",
        ([derive_event_id("day", 1), derive_event_id("day", 2)],),
    ).fetchall()
    # Sent without a timestamp: they happened when first received, not when replayed.
    assert set(moved) == {(user, received_at), (latecomer, received_at)}
    assert [p for _, p, _, _ in quarantined(admin)] == [3]

    # The original file sent again: the replayed rows exist, so they are neither quarantined
    # again nor inserted twice.
    again = json.loads(import_cli([str(path), "--batch-id", "day", "--json"], db_url).stdout)
    assert (again["inserted"], again["duplicates"], again["rejected"]) == (0, 2, 2)
    assert [p for _, p, _, _ in quarantined(admin)] == [3]
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 3
