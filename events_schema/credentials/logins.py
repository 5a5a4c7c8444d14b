"""`python -m events_schema logins`: give the login roles the passwords the deployment configured.

The migrations create the roles without passwords (a migration file is no place for a secret).
Run as the owner after `migrate`: the worker's login (engagement_worker) gets the password of
WORKER_DATABASE_URL, PostgREST's `authenticator` gets AUTHENTICATOR_PASSWORD. What is not
configured is left alone, so this is harmless on Supabase, which manages `authenticator` itself.
Each password is sent as a SCRAM-SHA-256 verifier computed here by libpq, never in clear text.
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from events_schema.cli_errors import keeping_status
from events_schema.db import connect
from events_schema.errors import CommandError
from events_schema.queries import QueryFolder
from events_schema.settings import get_settings

query = QueryFolder.beside(__file__)


def wanted_passwords() -> dict[str, str]:
    """{role: password} for every login the settings give a password."""
    settings = get_settings()
    wanted: dict[str, str] = {}
    if settings.worker_database_url:
        worker = make_url(settings.worker_database_url)
        if worker.username and worker.password:
            wanted[worker.username] = worker.password
    if settings.authenticator_password:
        wanted["authenticator"] = settings.authenticator_password
    return wanted


class LoginsError(CommandError):
    """A password could not be set (exit 1)."""


def set_password(conn: psycopg.Connection, role: str, password: str) -> None:
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    try:
        conn.execute(
            sql.SQL(query("logins_set_password")).format(role=sql.Identifier(role), verifier=sql.Literal(verifier))
        )
    except psycopg.errors.Error as exc:
        detail = exc.diag.message_primary or str(exc).strip()
        raise LoginsError(f"cannot set the password of {role}: {detail} (run `migrate` first, as the owner)") from exc


def apply(url: str | None = None) -> list[str]:
    """Set the configured passwords, in one transaction; returns the roles changed.

    The owner's own password is never changed here, even if a URL names that role.
    """
    wanted = wanted_passwords()
    with connect(url) as conn:
        me = conn.info.user
        changed = [role for role in sorted(wanted) if role != me]
        for role in changed:
            set_password(conn, role, wanted[role])
        conn.commit()
    return changed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: everything comes from the settings."""


def run(args: argparse.Namespace) -> int:
    changed = apply(args.database_url)
    with keeping_status(0):
        for role in changed:
            print(f"password set for {role}")
        if not changed:
            print("no login passwords configured (WORKER_DATABASE_URL with a password, AUTHENTICATOR_PASSWORD)")
    return 0
