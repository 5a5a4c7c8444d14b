"""docker-compose.yml's Supabase Realtime, read as data: pinned, on this database with the image's
superuser (as Supabase's self-hosting Compose file has it), the same JWT secret as PostgREST, its
secrets from .env, started after the migrations (which make the realtime stand-in it migrates
over), and what it needs of the database present (logical decoding, the `_realtime` schema)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from tests.unit.deploy.test_compose import ROOT, SERVICES, _waits_for

REALTIME = SERVICES["realtime"]
ENV = REALTIME["environment"]


def test_realtime_is_supabases_image_pinned() -> None:
    image, tag = REALTIME["image"].split(":")
    assert image == "supabase/realtime" and tag.startswith("v2.")


def test_realtime_uses_this_database_and_the_apis_jwt_secret() -> None:
    migrate = SERVICES["migrate"]["environment"]
    url = make_url(migrate["DATABASE_URL"])
    assert (ENV["DB_HOST"], int(ENV["DB_PORT"]), ENV["DB_NAME"]) == (url.host, url.port, url.database)
    assert ENV["DB_HOST"] in SERVICES
    assert ENV["DB_USER"] == "supabase_admin" and SERVICES["postgres"]["image"].startswith("supabase/postgres:")
    assert ENV["DB_PASSWORD"] == migrate["DATABASE_PASSWORD"] == "${POSTGRES_PASSWORD}"
    assert ENV["API_JWT_SECRET"] == "${JWT_SECRET}"
    assert SERVICES["postgrest"]["environment"]["PGRST_JWT_SECRET"].startswith("${JWT_SECRET")
    assert ENV["SECRET_KEY_BASE"].startswith("${REALTIME_SECRET_KEY_BASE:?")
    assert ENV["DB_ENC_KEY"].startswith("${REALTIME_DB_ENC_KEY:?")
    assert ENV["SEED_SELF_HOST"] == "true" and ENV["RUN_JANITOR"] == "true"


def test_realtime_starts_after_the_migrations_on_a_database_it_can_stream() -> None:
    assert _waits_for("realtime", "migrate", "service_completed_successfully")
    assert _waits_for("realtime", "postgres", "service_healthy")
    # supabase/postgres's own configuration file sets wal_level=logical.
    assert "config_file=/etc/postgresql/postgresql.conf" in SERVICES["postgres"]["command"]
    assert ENV["DB_AFTER_CONNECT_QUERY"] == "SET search_path TO _realtime"
    compat = (ROOT / "events_schema" / "compat" / "realtime_compat.sql").read_text()
    assert "create schema if not exists _realtime;" in compat


def test_env_example_secrets_have_the_lengths_realtime_needs() -> None:
    lines = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line[:1].isalpha())
    assert len(lines["REALTIME_DB_ENC_KEY"]) == 16
    assert len(lines["REALTIME_SECRET_KEY_BASE"]) >= 64
