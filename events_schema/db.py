"""Connections: one place that turns the configured SQLAlchemy URL into connections.

Every session runs in UTC so timestamps are returned in UTC whatever the server's default.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from events_schema.settings import get_settings

UTC_OPTIONS = "-c timezone=UTC"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the message is one line for the user."""


def conninfo(url: str | None = None) -> str:
    """libpq URI for psycopg, from a SQLAlchemy URL (`postgresql+psycopg://...`)."""
    sa_url = make_url(url or get_settings().database_url)
    return sa_url.set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str | None = None, *, autocommit: bool = False, **kwargs: object) -> psycopg.Connection:
    """A psycopg 3 connection in UTC; unreachable servers become DatabaseUnavailable."""
    try:
        return psycopg.connect(conninfo(url), autocommit=autocommit, options=UTC_OPTIONS, **kwargs)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line}") from exc


def engine(url: str | None = None, **kwargs: object) -> Engine:
    """A pooled SQLAlchemy engine (psycopg 3 driver), UTC sessions, stale connections re-checked."""
    return create_engine(
        url or get_settings().database_url,
        connect_args={"options": UTC_OPTIONS},
        pool_pre_ping=True,
        **kwargs,
    )
