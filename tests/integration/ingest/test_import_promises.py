"""What `python -m worker import` promises an operator, from the outside: exit 0 only when every
row passes (1 as soon as one is refused, replay included), and a row jsonb cannot store (an
unpaired surrogate) is one quarantined row, not a failed batch."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.integration.ingest.import_helpers import add_users, event, import_cli, quarantined, stored_ids, write_ndjson

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def test_exit_0_when_every_row_passes_and_1_when_one_is_refused(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    good = [event(user) for _ in range(3)]
    clean = import_cli([str(write_ndjson(tmp_path / "clean.ndjson", good))], db_url)
    assert clean.returncode == 0, clean.stderr
    assert clean.stderr == "" and "3 inserted, 0 duplicates, 0 rejected" in clean.stdout
    assert "quarantine" not in clean.stdout

    again = import_cli([str(tmp_path / "clean.ndjson"), "--json"], db_url)  # all duplicates: still all passed
    assert again.returncode == 0 and json.loads(again.stdout)["duplicates"] == 3

    one_bad = import_cli([str(write_ndjson(tmp_path / "bad.ndjson", [event(user), {"user_id": str(user)}]))], db_url)
    assert one_bad.returncode == 1 and "1 inserted, 0 duplicates, 1 rejected" in one_bad.stdout


def test_replay_exits_0_once_every_quarantined_row_passes(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = write_ndjson(tmp_path / "day.ndjson", [{"user_id": str(user), "event_type": "App Open"}])
    assert import_cli([str(path), "--batch-id", "day"], db_url).returncode == 1
    assert import_cli(["--replay-rejected", "--batch-id", "day"], db_url).returncode == 1  # still bad
    admin.execute("update engagement_import_quarantine set raw = replace(raw, 'App Open', 'app_open')")
    fixed = import_cli(["--replay-rejected", "--batch-id", "day", "--json"], db_url)
    assert fixed.returncode == 0, fixed.stdout
    assert json.loads(fixed.stdout)["inserted"] == 1 and quarantined(admin) == []


def test_an_unpaired_surrogate_quarantines_its_row_and_the_rest_of_the_file_imports(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    before, after = event(user), event(user)
    path = tmp_path / "surrogate.ndjson"
    # json.dumps would escape a lone surrogate the same way a sender's encoder does: \ud83d.
    path.write_text(
        json.dumps(before)
        + "\n"
        + f'{{"user_id": "{user}", "event_type": "app_open", "value": {{"mood": "\\ud83d"}}}}\n'
        + json.dumps(after)
        + "\n",
        encoding="ascii",
    )
    result = import_cli([str(path), "--json"], db_url)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["inserted"], summary["rejected"]) == (2, 1)
    assert summary["errors"] == [{"line": 2, "error": "value: $.mood contains an unpaired surrogate \\ud83d"}]
    assert stored_ids(admin) == {before["id"], after["id"]}
    [(_, position, raw, reason)] = quarantined(admin)
    assert (position, reason) == (2, summary["errors"][0]["error"]) and "\\ud83d" in raw
