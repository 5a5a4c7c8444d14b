"""Migration 20261204190000_graphql_public.sql on plain PostgreSQL, where pg_graphql is not
installed: it applies, is recorded, and creates nothing (GraphQL needs Supabase's image).

What it does where pg_graphql exists (docker-compose.yml's supabase/postgres) could not be run
here: no Docker engine, and no pg_graphql build for this server (docs/operations.md).
"""

from __future__ import annotations

import psycopg

VERSION = "20261204190000"


def test_applies_cleanly_and_creates_nothing_without_pg_graphql(admin: psycopg.Connection) -> None:
    available = admin.execute("select count(*) from pg_available_extensions where name = 'pg_graphql'").fetchone()[0]
    assert available == 0, "this server has pg_graphql: the guarded branch would run; extend this test"
    recorded = admin.execute(
        "select name, statements from supabase_migrations.schema_migrations where version = %s", (VERSION,)
    ).fetchone()
    assert recorded is not None and recorded[0] == "graphql_public"
    assert len(recorded[1]) == 1, "one DO block: the guard and everything it guards are one statement"
    assert admin.execute("select to_regnamespace('graphql_public'), to_regnamespace('graphql')").fetchone() == (
        None,
        None,
    )
    assert admin.execute("select count(*) from pg_extension where extname = 'pg_graphql'").fetchone()[0] == 0
