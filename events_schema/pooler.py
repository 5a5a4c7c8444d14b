"""Is a URL a transaction-mode pooler? What needs one server session throughout (the migration
runner's advisory lock and DDL, the feed's LISTEN and its handshake lock) refuses one, with one
line, instead of misbehaving quietly.

What is reliable, and what is not:
- Port 6543 is Supavisor's transaction mode on Supabase (a convention, which the user's URL
  carries): refused without connecting.
- A TCP connection whose server sees our own socket's address and port (`inet_client_addr()`,
  `inet_client_port()`) reaches PostgreSQL directly: proof of a session, no more checks.
- Otherwise (a pooler, a NAT, a Unix socket), a probe: note the server's `pg_backend_pid()`,
  let a second client connection open a transaction (a LIFO pool such as PgBouncer's lends it
  the server connection the probe just gave back), then ask again. A pid that changed between
  two statements of one client connection proves a transaction (or statement) pooler; a
  constant pid proves nothing (a session pooler, or a pool that lent another server
  connection), so it passes. PgBouncer's `SHOW POOLS` would tell for sure, but only on its
  admin console, for admin users: not something a URL gives.
"""

from __future__ import annotations

import socket
import threading

import psycopg
from sqlalchemy.engine import make_url

from events_schema.db import DatabaseUnavailable, connect, one_row
from events_schema.settings import get_settings

SUPAVISOR_TRANSACTION_PORT = 6543
PROBE_ROUNDS = 3
# Longest the probe lets its second client hold a server connection: a pool of one would make
# the probe wait for it.
HOG_SECONDS = 2.0


class SessionRequired(DatabaseUnavailable):
    """A transaction-mode pooler where a session is needed; the message is one line."""


def _direct(conn: psycopg.Connection) -> bool:
    """The server sees this very socket: nothing sits between us."""
    server_view = conn.execute("select host(inet_client_addr()), inet_client_port()").fetchone()
    if server_view is None or server_view[0] is None:
        return False
    with socket.socket(fileno=conn.pgconn.socket) as sock:
        try:
            local = sock.getsockname()[:2]
        finally:
            sock.detach()
    return (server_view[0], server_view[1]) == (local[0], local[1])


def _backend_pid(conn: psycopg.Connection) -> int:
    return int(one_row(conn.execute("select pg_backend_pid()"))[0])


def transaction_pooler_evidence(url: str, probe: psycopg.Connection) -> str | None:
    """Why `url` is a transaction-mode pooler, or None when nothing shows it is one. `probe` is
    an autocommit connection to `url`, outside any transaction (the caller's own)."""
    if make_url(url).port == SUPAVISOR_TRANSACTION_PORT:
        return f"port {SUPAVISOR_TRANSACTION_PORT} is Supabase's transaction-mode pooler (Supavisor)"
    if _direct(probe):
        return None
    with connect(url) as hog:
        for _ in range(PROBE_ROUNDS):
            before = _backend_pid(probe)
            _backend_pid(hog)  # opens a transaction: holds a server connection
            release = threading.Timer(HOG_SECONDS, hog.rollback)
            release.start()
            try:
                after = _backend_pid(probe)
            finally:
                release.cancel()
                hog.rollback()
            if after != before:
                return (
                    f"the server session changed between two transactions of one connection "
                    f"(backend {before}, then {after})"
                )
    return None


def session_setting(explicit: bool = False) -> str:
    """Where the session URL came from, for the error line."""
    if explicit:
        return "--database-url"
    return (
        "DATABASE_SESSION_URL" if get_settings().database_session_url else "DATABASE_URL (DATABASE_SESSION_URL unset)"
    )


def require_session(url: str, probe: psycopg.Connection, setting: str, purpose: str) -> None:
    """Raise SessionRequired (one line) when `url`, from `setting`, is a transaction pooler."""
    evidence = transaction_pooler_evidence(url, probe)
    if evidence:
        raise SessionRequired(
            f"{setting} is a transaction-mode pooler ({evidence}); {purpose} needs one server session: "
            "set DATABASE_SESSION_URL to a direct or session-mode connection"
        )
