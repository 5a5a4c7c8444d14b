"""Supabase's database linter (splinter) finds nothing in what the migrations build.

The queries in lints/ are this project's own equivalents of splinter's checks of the same names
(its Security and Performance Advisors). They run on the migrated template, so every future
migration is held to them; each is shown to report what it is meant to catch.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from events_schema.queries import QueryFolder

lint = QueryFolder(Path(__file__).resolve().parent / "lints")
LINTS = sorted(path.stem for path in lint.folder.glob("*.sql"))


def offenders(conn: psycopg.Connection, name: str) -> list[str]:
    return [row[0] for row in conn.execute(lint(name))]


@pytest.mark.parametrize("name", LINTS)
def test_the_migrated_schema_passes(admin: psycopg.Connection, name: str) -> None:
    assert offenders(admin, name) == []


def test_a_function_without_a_fixed_search_path_is_reported(admin: psycopg.Connection) -> None:
    body = "language sql as $$ select 1 $$"
    admin.execute(f"create function public.lint_mutable() returns int {body}")
    admin.execute(f'create function public.lint_follows_user() returns int set search_path = "$user", public {body}')
    admin.execute(f"create function public.lint_fixed() returns int set search_path = '' {body}")
    admin.execute(f"create function public.lint_named() returns int set search_path = pg_catalog, public {body}")
    # A SQL-standard body is bound when created: no search_path reaches it (engagement_shard).
    admin.execute("create function public.lint_bound() returns int language sql return 1")
    assert offenders(admin, "function_search_path_mutable") == ["lint_follows_user()", "lint_mutable()"]


def test_a_foreign_key_without_an_index_leading_with_its_columns_is_reported(admin: psycopg.Connection) -> None:
    admin.execute("create table public.lint_parent (a int, b int, primary key (a, b))")
    for name, index in (
        ("leading", "(a, b, c)"),
        ("trailing", "(c, a, b)"),
        ("reversed", "(b, a)"),
        ("partial", "(a, b) where c > 0"),
        ("none", None),
    ):
        admin.execute(
            f"create table public.lint_{name} (a int, b int, c int,"
            f" constraint lint_{name}_fkey foreign key (a, b) references public.lint_parent)"
        )
        if index:
            admin.execute(f"create index on public.lint_{name} {index}")
    assert offenders(admin, "unindexed_foreign_keys") == [
        f"lint_{name}.lint_{name}_fkey" for name in ("none", "partial", "reversed", "trailing")
    ]


def test_a_public_table_without_rls_is_reported(admin: psycopg.Connection) -> None:
    admin.execute("create table public.lint_open (id int)")
    admin.execute("create table public.lint_closed (id int); alter table public.lint_closed enable row level security")
    assert offenders(admin, "rls_disabled_in_public") == ["lint_open"]


def test_a_policy_calling_auth_per_row_is_reported(admin: psycopg.Connection) -> None:
    admin.execute(
        "create table public.lint_owned (user_id uuid); alter table public.lint_owned enable row level security"
    )
    admin.execute('create policy "Per row" on public.lint_owned for select using (auth.uid() = user_id)')
    admin.execute('create policy "Once" on public.lint_owned for insert with check ((select auth.uid()) = user_id)')
    admin.execute(
        'create policy "Half" on public.lint_owned for update'
        " using ((select auth.uid()) = user_id or auth.role() = 'service_role')"
    )
    assert offenders(admin, "auth_rls_initplan") == ["public.lint_owned: Half", "public.lint_owned: Per row"]


def test_a_view_with_the_owners_rights_is_reported(admin: psycopg.Connection) -> None:
    admin.execute("create view public.lint_owner_view as select 1 as one")
    admin.execute("create view public.lint_invoker_view with (security_invoker = true) as select 1 as one")
    assert offenders(admin, "security_definer_view") == ["lint_owner_view"]


def test_an_index_twice_is_reported(admin: psycopg.Connection) -> None:
    admin.execute("create table public.lint_twice (a int, b int)")
    admin.execute(
        "create index lint_twice_a on public.lint_twice (a); create index lint_twice_a_again on public.lint_twice (a)"
    )
    admin.execute(
        "create index lint_twice_ab on public.lint_twice (a, b); create index lint_twice_a_desc on public.lint_twice (a desc)"
    )
    assert offenders(admin, "duplicate_index") == ["lint_twice_a = lint_twice_a_again"]
