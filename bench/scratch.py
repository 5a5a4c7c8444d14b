"""A throwaway, migrated database for one benchmark run, on the server DATABASE_URL names."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg import sql
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.migrate import migrate
from events_schema.settings import get_settings


@contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[str]:
    """Create `<prefix>_<random>`, migrate it, yield its URL; drop it afterwards unless `keep`."""
    server = make_url(get_settings().database_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin_url = server.set(database="postgres").render_as_string(hide_password=False)
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        if keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
