"""docker-compose.yml, read as data and checked against the code (there is no Docker engine here):
every command is a real command line of this project or of Celery, every variable a real
setting, every image pinned, exactly one beat, and each service waits for what it needs."""

from __future__ import annotations

import os
import re
import shlex
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery
from celery.worker.control import Panel

from events_schema.__main__ import build_parser as events_schema_parser
from events_schema.settings import Settings
from worker.__main__ import build_parser as worker_parser

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SETTINGS = {name.upper() for name in Settings.model_fields}
# A released version, exactly: 17.6-bookworm, v14.5, 15.8.1.085 (never latest, never a bare
# major), and the digest of that tag's image where one was verified.
PINNED = re.compile(r"^[a-z0-9./-]+:v?\d+(\.\d+)+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")
# Images whose digest could not be verified from here, each with what was tried (docs/operations.md).
NO_DIGEST = {
    "mher/flower:2.0.1": "no published digest found for this tag; pinned by tag only",
    "supabase/realtime:v2.78.15": "the tag Supabase's self-hosting Compose file pins; its digest not verifiable from here",
}
# Variables the third-party images read, by the prefix each image documents (PGPASSWORD: libpq's).
THIRD_PARTY_ENV = ("POSTGRES_", "PGRST_", "PGPASSWORD", "CELERY_BROKER_URL", "FLOWER_")
# supabase/realtime's variables (its config/runtime.exs), which share no prefix.
REALTIME_ENV = {
    "PORT",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "DB_AFTER_CONNECT_QUERY",
    "DB_ENC_KEY",
    "API_JWT_SECRET",
    "METRICS_JWT_SECRET",
    "SECRET_KEY_BASE",
    "ERL_AFLAGS",
    "DNS_NODES",
    "RLIMIT_NOFILE",
    "APP_NAME",
    "SEED_SELF_HOST",
    "RUN_JANITOR",
}
ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def ours(service: dict[str, Any]) -> bool:
    """Built from this project's Dockerfile."""
    return "build" in service


def check_celery(args: list[str]) -> str:
    """Parse `celery ...` exactly as Celery's CLI would, without running it; the subcommand's name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # click's protected_args
        ctx = celery.make_context("celery", list(args))
        ctx.obj = CLIContext(app=find_app(ctx.params["app"]), no_color=True, workdir=None, quiet=True)
        name, command, rest = celery.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
    sub = command.make_context(name, rest, parent=ctx)
    if name == "inspect":
        assert sub.params["command"] in Panel.meta, f"no remote control command {sub.params['command']!r}"
    return name


def check_command(argv: list[str]) -> str:
    """A command of one of our images: `python -m events_schema|worker ...` or `celery -A worker ...`."""
    if argv[:2] == ["python", "-m"] and argv[2] == "events_schema":
        events_schema_parser().parse_args(argv[3:])
        return f"events_schema {argv[3]}"
    if argv[:2] == ["python", "-m"] and argv[2] == "worker":
        worker_parser(argv[3]).parse_args(argv[3:])
        return f"worker {argv[3]}"
    assert argv[:3] == ["celery", "-A", "worker"], argv
    return check_celery(argv[1:])


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1].replace("$$", "$"))
    assert test[0] == "CMD"
    return test[1:]


def test_every_command_of_our_image_is_a_real_command_line() -> None:
    seen = {}
    for name, service in SERVICES.items():
        if ours(service):
            seen[name] = check_command(service["command"])
            if "healthcheck" in service:
                check_command(healthcheck_argv(service))
    assert seen == {
        "migrate": "events_schema migrate",
        "logins": "events_schema logins",
        "worker": "worker",
        "beat": "beat",
    }


def test_a_wrong_command_would_be_caught() -> None:
    for argv in (
        ["python", "-m", "events_schema", "migrat"],
        ["celery", "-A", "worker", "worker", "--concurency=2"],
        ["celery", "-A", "worker", "inspect", "pong"],
        ["python", "-m", "worker", "scan", "--nosuch"],
    ):
        with pytest.raises((SystemExit, click.UsageError, AssertionError)):
            check_command(argv)


def test_every_image_is_pinned_to_an_exact_version_and_its_digest() -> None:
    base = re.search(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)[1]
    images = {"Dockerfile": base}
    for name, service in SERVICES.items():
        if ours(service):
            assert ":" in service["image"] and "/" not in service["image"], (name, "a local tag for the built image")
        else:
            images[name] = service["image"]
    for name, image in images.items():
        assert PINNED.match(image), (name, image)
        assert ("@sha256:" in image) != (image in NO_DIGEST), (name, image, "a digest, or the reason there is none")


def test_every_variable_is_a_real_setting_and_listed_in_env_example() -> None:
    listed = {m[1] for line in (ROOT / ".env.example").read_text().splitlines() if (m := ENV_EXAMPLE_LINE.match(line))}
    assert listed >= SETTINGS, f"settings missing from .env.example: {sorted(SETTINGS - listed)}"
    substituted = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    assert substituted <= listed, f"used by docker-compose.yml, missing from .env.example: {substituted - listed}"
    assert listed <= SETTINGS | substituted, f"in .env.example but used nowhere: {listed - SETTINGS - substituted}"
    for name, service in SERVICES.items():
        for variable in service.get("environment") or {}:
            if ours(service):
                assert variable in SETTINGS, (name, variable, "is not a setting of events_schema/settings.py")
            elif service["image"].startswith("supabase/realtime:"):
                assert variable in REALTIME_ENV, (name, variable)
            else:
                assert variable.startswith(THIRD_PARTY_ENV), (name, variable)


def test_env_example_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # The defaults themselves, whatever the caller's environment sets (e.g. REDIS_URL in CI).
    for name in list(os.environ):
        if name.upper() in SETTINGS:
            monkeypatch.delenv(name)
    defaults = Settings(_env_file=None)
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_EXAMPLE_LINE.match(line)
        if not (match and line.startswith("#") and match[1] in SETTINGS) or "..." in match[2] or not match[2]:
            continue
        monkeypatch.setenv(match[1], match[2])
        field = match[1].lower()
        assert getattr(Settings(_env_file=None), field) == getattr(defaults, field), line
        monkeypatch.delenv(match[1])


def test_exactly_one_beat_and_a_scalable_worker() -> None:
    beats = [name for name, s in SERVICES.items() if ours(s) and s["command"][3:4] == ["beat"]]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name, service in SERVICES.items():
        command = service.get("command") or []
        assert "-B" not in command and "--beat" not in command, (name, "a worker with an embedded beat")
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker, "a fixed name or port prevents --scale"


def _depends(name: str) -> dict[str, str]:
    return {target: spec["condition"] for target, spec in (SERVICES[name].get("depends_on") or {}).items()}


def _waits_for(name: str, target: str, condition: str) -> bool:
    """Whether `name` starts only after `target` reached `condition`, directly or through others."""
    direct = _depends(name)
    return direct.get(target) == condition or any(_waits_for(dep, target, condition) for dep in direct)


def test_depends_on_conditions_start_everything_in_order() -> None:
    for name in SERVICES:
        for target, condition in _depends(name).items():
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert SERVICES[target].get("restart") == "no" and "healthcheck" not in SERVICES[target], (name, target)
    assert _waits_for("migrate", "postgres", "service_healthy")
    assert _waits_for("logins", "migrate", "service_completed_successfully")
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        if {"WORKER_DATABASE_URL", "PGRST_DB_URI"} & set(environment) and name != "logins":
            assert _waits_for(name, "logins", "service_completed_successfully"), (name, "needs its login's password")
            assert _waits_for(name, "postgres", "service_healthy"), name
        if {"REDIS_URL", "CELERY_BROKER_URL"} & set(environment):
            assert _waits_for(name, "valkey", "service_healthy"), (name, "needs the broker")


def test_the_engine_never_holds_the_owners_credentials() -> None:
    for name in ("worker", "beat"):
        environment = SERVICES[name]["environment"]
        assert "DATABASE_URL" not in environment and "engagement_worker" in environment["WORKER_DATABASE_URL"]
    rest = SERVICES["postgrest"]["environment"]
    assert rest["PGRST_DB_URI"].startswith("postgres://authenticator@") and rest["PGRST_DB_ANON_ROLE"] == "anon"
    assert rest["PGRST_JWT_SECRET"].startswith("${JWT_SECRET")


def test_no_password_is_spliced_into_a_url() -> None:
    """`@`, `/`, `#` in a password break a URL; each password is a variable of its own."""
    passwords = {
        "migrate": {"DATABASE_PASSWORD": "POSTGRES_PASSWORD"},
        "logins": {"DATABASE_PASSWORD": "POSTGRES_PASSWORD", "WORKER_DATABASE_PASSWORD": "WORKER_DB_PASSWORD"},
        "worker": {"WORKER_DATABASE_PASSWORD": "WORKER_DB_PASSWORD"},
        "beat": {"WORKER_DATABASE_PASSWORD": "WORKER_DB_PASSWORD"},
        "postgrest": {"PGPASSWORD": "AUTHENTICATOR_PASSWORD"},
    }
    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and "://" in value:
                assert "${" not in value and urlsplit(value).password is None, (name, variable)
        for variable, secret in passwords.get(name, {}).items():
            assert re.fullmatch(rf"\$\{{{secret}(:\?[^}}]*)?\}}", service["environment"][variable]), (name, variable)


# Ports published beyond this machine, each with why; none so far (a proxy with TLS goes in front).
PUBLIC_PORTS: dict[str, str] = {}


def test_every_published_port_binds_loopback_only() -> None:
    published = 0
    for name, service in SERVICES.items():
        for port in service.get("ports") or []:
            published += 1
            if port not in PUBLIC_PORTS:
                assert str(port).startswith("127.0.0.1:"), (
                    name,
                    port,
                    "publish on 127.0.0.1, or say why in PUBLIC_PORTS",
                )
    assert published >= 2  # Flower and PostgREST, at least


def test_postgres_is_healthy_only_once_it_accepts_tcp() -> None:
    """The image's set-up server listens on the Unix socket only; -h makes the check use TCP."""
    argv = healthcheck_argv(SERVICES["postgres"])
    assert argv[0] == "pg_isready" and argv[argv.index("-h") + 1] == "127.0.0.1", argv
    assert _waits_for("migrate", "postgres", "service_healthy")
    command = SERVICES["migrate"]["command"]
    assert int(command[command.index("--wait") + 1]) >= 30, "migrate rides out a restart of the server"


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, (name, "docs/operations.md promises a health check per service")
    assert healthcheck_argv(SERVICES["beat"])[:4] == ["python", "-m", "worker", "health"]


def test_graphql_as_supabase_serves_it() -> None:
    """pg_graphql comes with Supabase's image; PostgREST exposes graphql_public, so
    POST /rpc/graphql with Content-Profile: graphql_public reaches graphql_public.graphql()."""
    assert SERVICES["postgres"]["image"].startswith("supabase/postgres:15.")
    schemas = SERVICES["postgrest"]["environment"]["PGRST_DB_SCHEMAS"].split(",")
    assert schemas[0] == "public" and "graphql_public" in schemas
    migration = ROOT / "events_schema" / "migrations" / "20261204190000_graphql_public.sql"
    assert "pg_available_extensions" in migration.read_text(), "guarded: plain PostgreSQL has no pg_graphql"


# Settings the worker and the beat do not read, each with why it stays out of their environment.
# A new setting is the engine's unless named here: it must then reach both (x-engine-settings).
NOT_THE_ENGINES = {
    "DATABASE_URL": "the owner's login: migrate and logins only; the engine never holds it",
    "DATABASE_PASSWORD": "the owner's password, with DATABASE_URL: migrate and logins only",
    "DATABASE_SESSION_URL": "migrations and `worker tail` as the owner; compose's migrate connects directly",
    "AUTHENTICATOR_PASSWORD": "read by `events_schema logins` only (the logins service has it)",
    "JWT_SECRET": "read by `events_schema keys`, run by hand; PostgREST gets it as PGRST_JWT_SECRET",
}
# Where each setting that is not the engine's is read in the deployment (None: by hand only).
READ_BY = {
    "DATABASE_URL": ("migrate", "logins"),
    "DATABASE_PASSWORD": ("migrate", "logins"),
    "AUTHENTICATOR_PASSWORD": ("logins",),
}


def test_every_setting_reaches_the_worker_and_the_beat_unless_named_as_not_theirs() -> None:
    assert set(NOT_THE_ENGINES) <= SETTINGS, f"not settings any more: {set(NOT_THE_ENGINES) - SETTINGS}"
    wanted = SETTINGS - set(NOT_THE_ENGINES)
    for name in ("worker", "beat"):
        given = set(SERVICES[name]["environment"])
        assert not wanted - given, (
            f"{name} never receives {sorted(wanted - given)}: add them to x-engine-settings in "
            "docker-compose.yml, or to NOT_THE_ENGINES here with the reason"
        )
        assert not given & set(NOT_THE_ENGINES), (name, sorted(given & set(NOT_THE_ENGINES)))
    tuning = set(COMPOSE["x-engine-settings"])
    assert all(COMPOSE["x-engine-settings"][k] is None for k in tuning), "passed through from .env, never fixed"
    for setting, services in READ_BY.items():
        for name in services:
            assert setting in SERVICES[name]["environment"], (name, setting)
