"""The worker's database access: pooled connections that act as the service role.

The engine connects with its own login (WORKER_DATABASE_URL, else DATABASE_URL) and switches
to the service role (Supabase's `service_role`, which bypasses RLS) inside each transaction, as
PostgREST does per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from events_schema.db import engine as make_engine
from events_schema.settings import get_settings

_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """One pooled engine per URL (default: the engine's own login), created on first use."""
    url = url or get_settings().engine_database_url
    if url not in _engines:
        _engines[url] = make_engine(url, pool_size=2, max_overflow=8)
    return _engines[url]


def dispose_after_fork() -> None:
    """Drop inherited pooled connections without closing the parent's sockets."""
    for eng in _engines.values():
        eng.dispose(close=False)


@contextmanager
def connection(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A pooled psycopg 3 connection; returned to the pool (rolled back) afterwards."""
    raw = get_engine(url).raw_connection()
    try:
        yield cast(psycopg.Connection, raw.driver_connection)  # SQLAlchemy's psycopg dialect: a psycopg 3 connection
    finally:
        raw.close()


def act_as_service_role(conn: psycopg.Connection) -> None:
    """Inside an open transaction: switch to the service role until it ends."""
    role = get_settings().db_service_role
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))


@contextmanager
def service_transaction(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A transaction acting as the service role; commits on success, rolls back on error."""
    with connection(url) as conn, conn.transaction():
        act_as_service_role(conn)
        yield conn


def dispose_engines() -> None:
    """Close every pooled connection of this process (shutdown, or between test databases)."""
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()
