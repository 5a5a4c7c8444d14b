"""`python -m events_schema logins`: the configured passwords reach the login roles as SCRAM
verifiers. Roles are cluster-wide, so the login here is a throwaway role, not the shared ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.integration.worker_process import PROJECT_ROOT


def logins_cli(db_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "logins"],
        env={**os.environ, "DATABASE_URL": db_url, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` is this password's."""
    method, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return method == "SCRAM-SHA-256" and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


@pytest.fixture
def throwaway_login(admin: psycopg.Connection) -> Iterator[str]:
    name = f"login_test_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
    yield name
    admin.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def test_the_worker_urls_password_is_set_as_a_scram_verifier(
    admin: psycopg.Connection, db_url: str, throwaway_login: str
) -> None:
    worker_url = make_url(db_url).set(username=throwaway_login, password="s3cret-Worker")
    result = logins_cli(db_url, WORKER_DATABASE_URL=worker_url.render_as_string(hide_password=False))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"password set for {throwaway_login}"
    stored = admin.execute("select rolpassword from pg_authid where rolname = %s", (throwaway_login,)).fetchone()[0]
    assert scram_matches(stored, "s3cret-Worker")
    assert not scram_matches(stored, "s3cret-worker")


def test_nothing_configured_changes_nothing_and_a_missing_role_is_one_line(db_url: str) -> None:
    result = logins_cli(db_url)
    assert result.returncode == 0 and result.stdout.startswith("no login passwords configured"), result
    missing = make_url(db_url).set(username="no_such_login_role", password="x")
    result = logins_cli(db_url, WORKER_DATABASE_URL=missing.render_as_string(hide_password=False))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot set the password of no_such_login_role" in result.stderr
