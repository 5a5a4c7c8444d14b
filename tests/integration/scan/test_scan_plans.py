"""The scan's candidate queries stay index-driven: a batch's cost grows with the users it decides,
never with all users. Checked on the plans PostgreSQL makes (EXPLAIN, FORMAT JSON) for each batch
statement (scan_decide.sql around each candidate query, as the scan sends it) on 20,000 users with
fresh statistics, unsharded and sharded: no sequential scan of the users, the per-user and
per-type summaries or the event log (which also rules out hashing every user), and each range
read on the index that makes it one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from events_schema.db import connect
from events_schema.settings import NudgeRule, Settings
from tests.integration.scan.scan_helpers import at
from worker.scan.scanner import batch_params, batch_query
from worker.scan.shards import Shard

USERS = 20_000
AS_OF = at("2026-03-05T12:00:00")
THRESHOLD = timedelta(hours=48)
BIG = {"engagement_users", "engagement_last_activity", "engagement_events"}


@pytest.fixture(scope="module")
def seeded(pg_server: URL, template_db: str) -> Iterator[psycopg.Connection]:
    """One database for the module (seeding is the slow part): 2% of the users lapsed, 1% active
    after as_of, 1% signed up inside the incremental window, the rest active within the threshold."""
    name = f"{template_db}_plans"
    server = pg_server.render_as_string(hide_password=False)
    with connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template_db))
        )
    with connect(pg_server.set(database=name).render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(
            """
            insert into auth.users (id, created_at)
            select gen_random_uuid(),
                   case when g %% 100 = 0 then %(window)s::timestamptz + (g %% 900) * interval '1 second'
                        else '2026-01-01T00:00Z'::timestamptz + (g %% 1000) * interval '1 minute' end
            from generate_series(1, %(n)s) g
            """,
            {"n": USERS, "window": AS_OF - THRESHOLD - timedelta(minutes=15)},
        )
        conn.execute(
            """
            insert into engagement_events (user_id, "timestamp", event_type)
            select u.user_id,
                   case when k %% 50 = 0 then %(as_of)s::timestamptz - interval '5 days' + (k %% 60) * interval '1 minute'
                        when k %% 100 = 1 then %(as_of)s::timestamptz + interval '1 hour'
                        else %(as_of)s::timestamptz - (k %% 1440) * interval '1 minute' end,
                   (array['app_open', 'goal_complete'])[1 + k %% 2]
            from (select user_id, row_number() over (order by user_id) k
                  from engagement_users where signed_up_at < '2026-02-01T00:00Z') u
            """,
            {"as_of": AS_OF},
        )
        # The events reach the summaries by the fold, as before every scan (migration 20261205100000).
        conn.execute("select public.fold_engagement_summaries()")
        conn.execute("analyze")
        yield conn
    with connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def params(shards: int, event_types: list[str] | None = None) -> dict[str, Any]:
    """The first batch's parameters, built by the scan itself, with a window for the incremental
    query. A batch is 0.5% of the users in production (5,000 of a million); 100 of 20,000 here."""
    settings = Settings(_env_file=None, scan_batch_size=100)
    rule = NudgeRule(name="inactive_48h", threshold_hours=48, event_types=event_types)
    shard = Shard(1, shards) if shards > 1 else None
    values = batch_params(settings, rule, AS_OF, "00000000-0000-0000-0000-000000000000", full=True, shard=shard)
    return {**values, "window_start": AS_OF - timedelta(minutes=15) - THRESHOLD, "budget_open": True}


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def explain(conn: psycopg.Connection, candidates: str, values: dict[str, Any], form: str) -> Any:
    """The batch statement's plan, as the scan runs it (service role, no JIT)."""
    with conn.transaction():
        conn.execute("set local role service_role")
        conn.execute("set local jit = off")
        rows = conn.execute(sql.SQL(f"explain (format {form}) ") + batch_query(candidates), values).fetchall()
    return rows[0][0] if form == "json" else "\n".join(r[0] for r in rows)


def plan_of(conn: psycopg.Connection, candidates: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the batch statement's plan."""
    return list(nodes(explain(conn, candidates, values, "json")[0]["Plan"]))


def sequential_reads(plan: list[dict[str, Any]]) -> set[str]:
    return {n["Relation Name"] for n in plan if n["Node Type"] == "Seq Scan" and n["Relation Name"] in BIG}


def unbounded_index_reads(plan: list[dict[str, Any]]) -> list[str]:
    """Index reads of a large table without a condition: a walk of the whole index."""
    big_indexes = {n.get("Index Name") for n in plan if n.get("Relation Name") in BIG} | {
        n["Index Name"] for n in plan if n["Node Type"] == "Bitmap Index Scan"
    }
    return [n["Index Name"] for n in plan if n.get("Index Name") in big_indexes - {None} and "Index Cond" not in n]


def indexes(plan: list[dict[str, Any]]) -> list[str]:
    """The index of every index, index-only and bitmap index scan, once per read."""
    return [n["Index Name"] for n in plan if "Index Name" in n]


@pytest.mark.parametrize("shards", [1, 4], ids=["unsharded", "sharded"])
@pytest.mark.parametrize(
    ("candidates", "event_types", "expected"),
    [
        # Both branches (due by the summary; active after as_of): range reads of one index.
        ("scan_candidates_full", None, {"engagement_users_last_active_idx"}),
        # A rule narrowing the types walks the users and the per-type summary by their keys.
        (
            "scan_candidates_full_typed",
            ["app_open"],
            {"engagement_users_pkey", "engagement_last_activity_pkey"},
        ),
        # Who crossed the threshold in the window, by the two time indexes; their columns by key.
        (
            "scan_candidates_incremental",
            None,
            {"engagement_last_activity_last_at_idx", "engagement_users_signed_up_at_idx", "engagement_users_pkey"},
        ),
    ],
    ids=["full", "full_typed", "incremental"],
)
def test_candidate_queries_read_by_index_never_every_user(
    seeded: psycopg.Connection, candidates: str, event_types: list[str] | None, expected: set[str], shards: int
) -> None:
    plan = plan_of(seeded, candidates, params(shards, event_types))
    used = indexes(plan)
    shown = explain(seeded, candidates, params(shards, event_types), "text")
    assert sequential_reads(plan) == set(), shown
    assert unbounded_index_reads(plan) == [], shown
    assert expected <= set(used), shown
    if candidates == "scan_candidates_full":
        # One range read per branch, each bounded by its instant: due by the summary (at or
        # before the cutoff), active after as_of.
        conditions = [n["Index Cond"] for n in plan if n.get("Index Name") == "engagement_users_last_active_idx"]
        assert len(conditions) == 2, shown
        assert any("2026-03-03 12:00:00" in c for c in conditions), shown
        assert any("2026-03-05 12:00:00" in c for c in conditions), shown
