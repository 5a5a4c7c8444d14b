"""200k rows through `python -m worker import`, the way an operator loads a backfill."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.integration.ingest.import_helpers import add_users, import_cli

ROWS = 200_000
BAD_EVERY = 10_000  # line numbers 10000, 20000, ... carry a reserved event type


@pytest.mark.slow
@pytest.mark.timeout(600)  # writing 200k rows, then the CLI's own 300 s bound
def test_200k_rows_through_the_cli_with_a_correct_summary(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    users = [str(u) for u in add_users(admin, 1000)]
    path = tmp_path / "backfill.ndjson"
    with path.open("w") as out:
        for line in range(1, ROWS + 1):
            out.write(
                json.dumps(
                    {
                        "user_id": users[line % len(users)],
                        "event_type": "nudge_sent"
                        if line % BAD_EVERY == 0
                        else ("app_open", "goal_complete", "steps_import")[line % 3],
                        "timestamp": f"2025-{1 + line % 12:02d}-{1 + line % 28:02d}T{line % 24:02d}:{line % 60:02d}:00Z",
                        "value": {"steps": line} if line % 3 == 2 else {},
                    }
                )
                + "\n"
            )

    result = import_cli([str(path), "--json"], db_url)

    assert result.returncode == 1, result.stderr  # 20 rows refused
    summary = json.loads(result.stdout)
    bad = ROWS // BAD_EVERY
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (ROWS - bad, 0, bad)
    assert [e["line"] for e in summary["errors"]] == [n * BAD_EVERY for n in range(1, bad + 1)]
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == ROWS - bad
    assert admin.execute("select count(*) from engagement_import_quarantine").fetchone()[0] == bad
    admin.execute("select public.fold_engagement_summaries()")  # inserts reach the summary by the fold
    assert admin.execute("select count(*) from engagement_last_activity").fetchone()[0] == 3000
