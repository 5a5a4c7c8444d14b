"""Retention's edges: an event exactly RETENTION_DAYS old stays, a microsecond older goes; a
transaction covers RETENTION_CHUNK_SIZE rows' worth of pages, so never more than that many rows;
forget_user soft-deletes at most RETENTION_CHUNK_SIZE rows a transaction."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.ingest.import_helpers import NOW, add_users
from tests.integration.retention.test_retention import add_events, days_ago
from worker.retention.retention import MAX_ROWS_PER_PAGE, apply_retention, forget_user

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def test_an_event_exactly_retention_days_old_is_kept(admin: psycopg.Connection) -> None:
    [user] = add_users(admin)
    add_events(admin, user, [days_ago(30), days_ago(30) - timedelta(microseconds=1)])
    assert apply_retention(NOW, retention_days=30)["soft_deleted"] == 1
    [(kept,)] = admin.execute("select timestamp from engagement_events where not is_deleted").fetchall()
    assert kept == days_ago(30)


def test_no_transaction_touches_more_than_the_chunk_size(admin: psycopg.Connection) -> None:
    """The densest rows the table can hold (`{}`, a one-letter type): a page holds at most
    MAX_ROWS_PER_PAGE, so a chunk of N rows' pages holds at most N."""
    [user] = add_users(admin)
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) "
        "select %s, %s, 'a' from generate_series(1, 1000)",
        (user, days_ago(100)),
    )
    per_page = admin.execute(
        "select max(n) from (select count(*) n from engagement_events group by (ctid::text::point)[0]) p"
    ).fetchone()[0]
    assert per_page <= MAX_ROWS_PER_PAGE
    summary = apply_retention(NOW, retention_days=30, chunk_size=2 * MAX_ROWS_PER_PAGE)
    assert summary["soft_deleted"] == 1000
    assert summary["chunks"] >= 1000 / (2 * MAX_ROWS_PER_PAGE)


def rows_per_transaction(admin: psycopg.Connection, user: object) -> list[int]:
    """How many of the user's rows each transaction soft-deleted: an updated row's xmin is the
    transaction that updated it."""
    return [
        n
        for (n,) in admin.execute(
            "select count(*) from engagement_events where user_id = %s and is_deleted"
            " group by xmin::text order by 1 desc",
            (user,),
        )
    ]


@pytest.mark.parametrize("configured", [False, True])
def test_forget_user_soft_deletes_at_most_the_chunk_size_a_transaction(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """With RETENTION_CHUNK_SIZE from the environment and passed in; a tie of timestamps across
    the chunk boundaries included."""
    [user] = add_users(admin)
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type)"
        " select %s, %s - (g / 3) * interval '1 minute', 'app_open' from generate_series(1, 47) g",
        (user, days_ago(1)),
    )
    if configured:
        monkeypatch.setenv("RETENTION_CHUNK_SIZE", "7")
        get_settings.cache_clear()
        summary = forget_user(user)
    else:
        summary = forget_user(user, chunk_size=7)
    per_transaction = rows_per_transaction(admin, user)
    assert summary["soft_deleted"] == sum(per_transaction) == 47
    assert per_transaction[0] == 7 and len(per_transaction) == 7  # six full chunks and five rows
