"""Connections: one place that turns the configured SQLAlchemy URL into connections.

Every session runs in UTC so timestamps are returned in UTC whatever the server's default. The
time zone is set by a statement after connecting, not by the `options` startup parameter, which
PgBouncer before 1.20 refuses ("unsupported startup parameter: options"); PgBouncer tracks
TimeZone per client and restores it on every server connection it lends. (Elsewhere the
server's default applies, UTC on Supabase; instants are the same either way: every SQL file
names UTC where it matters.)

psycopg prepares a statement on the server after it runs five times on one connection. Behind a
transaction-mode pooler the next transaction may run on another server connection, which does
not have it ("prepared statement _pg3_0 does not exist"), or on one where another client left
the same name ("already exists"); PgBouncer before 1.21 and poolers in general do not carry
them. So automatic preparation is off for every connection made here: the project's statements
are few and set-based, and planning is a small share of their cost (docs/pooler.md).
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from events_schema.errors import Unreachable
from events_schema.settings import get_settings

SET_UTC = "set time zone 'UTC'"
# psycopg's prepare_threshold: None never prepares automatically.
PREPARE_THRESHOLD = None

R = TypeVar("R")


def one_row(cursor: psycopg.Cursor[R]) -> R:
    """The row of a statement that always returns one (an aggregate, `select f()`): no row is a bug."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row


class DatabaseUnavailable(Unreachable):
    """The database could not be reached (exit 1)."""


def conninfo(url: str | None = None) -> str:
    """libpq `key=value` string for psycopg, from a SQLAlchemy URL (`postgresql+psycopg://...`).

    Built from the URL's parts, each quoted by psycopg, rather than re-rendered as a URI: a
    password with a space or a quote survives (SQLAlchemy leaves spaces unencoded; libpq refuses them).
    """
    sa_url = make_url(url or get_settings().database_url)
    parts = {"host": sa_url.host, "port": sa_url.port, "dbname": sa_url.database, "user": sa_url.username}
    parts["password"] = sa_url.password
    options = {key: value if isinstance(value, str) else ",".join(value) for key, value in sa_url.query.items()}
    return make_conninfo("", **{key: value for key, value in parts.items() if value is not None}, **options)


def _in_utc(conn: psycopg.Connection) -> None:
    """A session-level SET outside any transaction: it stays (and poolers that track TimeZone
    re-apply it), and leaves no transaction open."""
    autocommit = conn.autocommit
    conn.autocommit = True
    conn.execute(SET_UTC)
    conn.autocommit = autocommit


def connect(url: str | None = None, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """A psycopg 3 connection in UTC; unreachable servers become DatabaseUnavailable."""
    try:
        conn = psycopg.connect(conninfo(url), autocommit=autocommit, prepare_threshold=PREPARE_THRESHOLD, **kwargs)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line}") from exc
    _in_utc(conn)
    return conn


def engine(url: str | None = None, **kwargs: object) -> Engine:
    """A pooled SQLAlchemy engine (psycopg 3 driver), UTC sessions, stale connections re-checked."""
    created = create_engine(
        url or get_settings().database_url,
        connect_args={"prepare_threshold": PREPARE_THRESHOLD},
        pool_pre_ping=True,
        **kwargs,
    )
    event.listen(created, "connect", lambda dbapi_conn, _record: _in_utc(dbapi_conn))
    return created
