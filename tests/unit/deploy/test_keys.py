"""`python -m events_schema keys`: keys PostgREST accepts for the configured secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SECRET = "a-test-secret-that-is-at-least-32-characters-long"


def keys_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "keys", *args],
        env={**environment, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_anon_and_service_role_keys_verify_with_the_secret_only() -> None:
    result = keys_cli("--json", JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)
    assert set(keys) == {"ANON_KEY", "SERVICE_ROLE_KEY"}
    for name, role in (("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")):
        claims = jwt.decode(keys[name], SECRET, algorithms=["HS256"])
        assert claims["role"] == role and claims["iss"] == "supabase"
        assert claims["exp"] - claims["iat"] == 10 * 365 * 86400
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(keys[name], SECRET + "x", algorithms=["HS256"])


def test_env_file_lines_and_years() -> None:
    result = keys_cli("--years", "1", JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    claims = jwt.decode(lines["ANON_KEY"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 365 * 86400


def env_example_value(name: str) -> str:
    for line in (PROJECT_ROOT / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not set in .env.example")


PLACEHOLDER = env_example_value("JWT_SECRET")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "error: JWT_SECRET is not set"),
        ((), {"JWT_SECRET": "too-short"}, "error: invalid setting JWT_SECRET"),
        ((), {"JWT_SECRET": "x" * 31}, "at least 32 characters"),
        ((), {"JWT_SECRET": PLACEHOLDER}, "error: JWT_SECRET is still the placeholder of .env.example"),
        ((), {"JWT_SECRET": PLACEHOLDER.upper()}, "still the placeholder"),
        (("--years", "0"), {"JWT_SECRET": SECRET}, "must be at least 1"),
    ],
)
def test_refusals_are_one_line(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    result = keys_cli(*args, **env)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_shortest_secret_that_is_not_a_placeholder_is_accepted() -> None:
    """The other side of both refusals: 32 characters of anything but the placeholder."""
    assert len(PLACEHOLDER) >= 32, "the placeholder must pass the length rule, so only its own check stops it"
    for secret in ("x" * 32, "my-" + PLACEHOLDER):
        result = keys_cli("--json", JWT_SECRET=secret)
        assert result.returncode == 0, result.stderr
        assert jwt.decode(json.loads(result.stdout)["ANON_KEY"], secret, algorithms=["HS256"])["role"] == "anon"
