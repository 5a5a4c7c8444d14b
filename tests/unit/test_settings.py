"""Settings come from the environment, with defaults that work on a machine with local servers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from events_schema.settings import Settings


def test_defaults_point_at_loopback_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "NUDGE_RULES"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert "127.0.0.1" in settings.redis_url
    assert [r.name for r in settings.nudge_rules] == ["inactive_48h"]
    assert settings.nudge_rules[0].threshold_hours == 48


def test_plain_postgres_urls_get_the_psycopg3_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/app")
    assert Settings(_env_file=None).database_url == "postgresql+psycopg://u:p@db.example:5432/app"


def test_rules_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [{"name": "inactive_7d", "threshold_hours": 168, "event_types": ["app_open"]}]
    monkeypatch.setenv("NUDGE_RULES", json.dumps(rules))
    [rule] = Settings(_env_file=None).nudge_rules
    assert (rule.name, rule.threshold_hours, rule.event_types) == ("inactive_7d", 168, ["app_open"])


@pytest.mark.parametrize(
    "rules",
    [
        [{"name": "a", "threshold_hours": 1}, {"name": "a", "threshold_hours": 2}],
        [{"name": "Bad Name", "threshold_hours": 1}],
        [{"name": "zero", "threshold_hours": 0}],
    ],
    ids=["duplicate-names", "bad-name", "zero-threshold"],
)
def test_bad_rules_are_refused(monkeypatch: pytest.MonkeyPatch, rules: list[dict]) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps(rules))
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
