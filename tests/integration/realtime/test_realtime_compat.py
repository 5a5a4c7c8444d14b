"""The stand-in of Supabase Realtime's schema is Realtime's own shape (supabase/realtime's tenant
migrations: 20260420000000_squash_migrations, 20260604120000_add_messages_default_partition), and
the migrations only use it: on Supabase, Realtime's real objects are used as they are."""

from __future__ import annotations

import re

import psycopg

from events_schema.migrate import discover

# (column, type, not null, default) of realtime.messages as Realtime's migrations create it.
MESSAGES = [
    ("topic", "text", True, None),
    ("extension", "text", True, None),
    ("payload", "jsonb", False, None),
    ("event", "text", False, None),
    ("private", "boolean", False, "false"),
    ("updated_at", "timestamp without time zone", True, "now()"),
    ("inserted_at", "timestamp without time zone", True, "now()"),
    ("id", "uuid", True, "gen_random_uuid()"),
]


def test_realtime_messages_has_realtimes_columns_key_partitioning_and_rls(admin: psycopg.Connection) -> None:
    columns = admin.execute(
        "select attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(adbin, adrelid)"
        " from pg_attribute left join pg_attrdef on adrelid = attrelid and adnum = attnum"
        " where attrelid = 'realtime.messages'::regclass and attnum > 0 and not attisdropped order by attnum"
    ).fetchall()
    assert columns == MESSAGES
    assert admin.execute("select pg_get_partkeydef('realtime.messages'::regclass)").fetchone() == (
        "RANGE (inserted_at)",
    )
    assert admin.execute(
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = 'realtime.messages'::regclass and conname = 'messages_pkey'"
    ).fetchone() == ("PRIMARY KEY (id, inserted_at)",)
    assert admin.execute(
        "select relrowsecurity from pg_class where oid = 'realtime.messages'::regclass"
    ).fetchone() == (True,)
    assert admin.execute("select to_regclass('realtime.messages_default') is not null").fetchone() == (True,)


def test_realtimes_functions_have_realtimes_signatures(admin: psycopg.Connection) -> None:
    assert admin.execute(
        "select to_regprocedure('realtime.topic()') is not null,"
        " to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null"
    ).fetchone() == (True, True)


def test_realtime_send_inserts_the_row_the_trigger_inserts(admin: psycopg.Connection) -> None:
    """realtime.send is one INSERT into realtime.messages (extension 'broadcast', an `id` added to
    the payload), after setting realtime.topic: the trigger's rows are of the same shape."""
    admin.execute("select realtime.send('{\"a\": 1}'::jsonb, 'ev', 'user:x', true)")
    row = admin.execute("select topic, extension, event, private, payload, id from realtime.messages").fetchone()
    assert row[:4] == ("user:x", "broadcast", "ev", True)
    assert row[4] == {"a": 1, "id": str(row[5])}


def test_no_migration_creates_or_replaces_anything_of_realtime() -> None:
    made = re.compile(
        r"\bcreate\s+(or\s+replace\s+)?(table|function|view|index|type)\s+(if\s+not\s+exists\s+)?realtime\.", re.I
    )
    altered = re.compile(r"\b(alter|drop)\s+(table|function|view|index|type)\s+(if\s+exists\s+)?realtime\.", re.I)
    for migration in discover():
        sql = re.sub(r"--[^\n]*", "", migration.sql)
        assert not made.search(sql) and not altered.search(sql), migration.path.name
