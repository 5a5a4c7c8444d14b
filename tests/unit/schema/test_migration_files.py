"""The migration files as files: Supabase CLI names, version order, and nothing Supabase refuses."""

from __future__ import annotations

import re
from datetime import datetime

from events_schema.migrate import MIGRATION_NAME, MIGRATIONS_DIR, discover

# What Supabase itself provides in `auth` and the compatibility layer recreates. Anything else of
# the layer (or of GoTrue) is an internal the migrations must not rely on.
SUPABASE_AUTH_OBJECTS = {"users", "uid", "role", "jwt"}
# Statements that need a superuser, or touch what Supabase manages: refused on a hosted project.
FORBIDDEN = re.compile(
    r"\b(create|alter|drop)\s+role\b|\bauthenticator\b|\balter\s+system\b|\bcreate\s+event\s+trigger\b"
    r"|\balter\s+database\b|\bsession\s+authorization\b|\bsecurity\s+label\b|\bfrom\s+program\b"
    r"|\bcreate\s+(or\s+replace\s+)?function\s+auth\.|\bsupabase_compat\b",
    re.IGNORECASE,
)
# The one role the project creates itself (the engine's login); Supabase's postgres may do this.
PROJECT_ROLE = re.compile(r"\b(create|alter)\s+role\s+engagement_worker\b", re.IGNORECASE)


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_names_follow_the_supabase_cli_pattern() -> None:
    paths = sorted(MIGRATIONS_DIR.glob("*.sql"))
    assert paths
    for path in paths:
        match = MIGRATION_NAME.match(path.name)
        assert match, path.name
        datetime.strptime(match["version"], "%Y%m%d%H%M%S")  # a real timestamp


def test_discovered_in_version_order() -> None:
    migrations = discover()
    assert [m.path for m in migrations] == sorted(MIGRATIONS_DIR.glob("*.sql"))
    versions = [int(m.version) for m in migrations]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_migrations_use_only_what_supabase_provides() -> None:
    for migration in discover():
        sql = PROJECT_ROLE.sub("", _without_comments(migration.sql))
        assert not FORBIDDEN.search(sql), f"{migration.path.name}: {FORBIDDEN.search(sql)[0]!r}"
        used = set(re.findall(r"\bauth\.\"?([a-z_]+)", sql, re.IGNORECASE))
        assert used <= SUPABASE_AUTH_OBJECTS, f"{migration.path.name} uses auth.{used - SUPABASE_AUTH_OBJECTS}"
