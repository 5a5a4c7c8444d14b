"""`python -m events_schema keys`: the API keys for the configured JWT secret.

Supabase's anon and service keys are long-lived HS256 JWTs whose `role` claim names the database
role PostgREST switches to; PostgREST verifies them with the same secret (PGRST_JWT_SECRET), so
a self-hosted deployment mints its own from JWT_SECRET.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import jwt

from events_schema.cli_args import whole_number
from events_schema.errors import UsageError
from events_schema.settings import get_settings

# Environment name of each key (as Supabase's self-hosting .env names them) and its role.
KEY_ROLES = {"ANON_KEY": "anon", "SERVICE_ROLE_KEY": "service_role"}
ALGORITHM = "HS256"
# Every secret .env.example ships starts so; a key signed with a published value is anyone's.
PLACEHOLDER_PREFIX = "change-me"


def mint(secret: str, role: str, issued_at: datetime, lifetime: timedelta) -> str:
    """One API key: the role, Supabase's issuer, issued and expiry times in whole seconds."""
    claims = {
        "role": role,
        "iss": "supabase",
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--years", type=whole_number(1), default=10, help="how long the keys stay valid (default 10)")
    parser.add_argument("--json", action="store_true", help='print {"ANON_KEY": ..., "SERVICE_ROLE_KEY": ...}')


def run(args: argparse.Namespace) -> int:
    secret = get_settings().jwt_secret
    if secret is None:
        raise UsageError("JWT_SECRET is not set (at least 32 characters; PostgREST verifies the keys with it)")
    if secret.lower().startswith(PLACEHOLDER_PREFIX):
        raise UsageError(
            "JWT_SECRET is still the placeholder of .env.example; set a long random value (e.g. openssl rand -base64 48)"
        )
    now = datetime.now(UTC)
    keys = {name: mint(secret, role, now, timedelta(days=365 * args.years)) for name, role in KEY_ROLES.items()}
    if args.json:
        print(json.dumps(keys))
    else:
        for name, key in keys.items():
            print(f"{name}={key}")
    return 0
