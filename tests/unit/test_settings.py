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


@pytest.mark.parametrize(("percent", "valid"), [(-0.01, False), (0, True), (100, True), (100.01, False)])
def test_holdout_percent_is_a_share_from_0_to_100(monkeypatch: pytest.MonkeyPatch, percent: float, valid: bool) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps([{"name": "r", "threshold_hours": 1, "holdout_percent": percent}]))
    if valid:
        [rule] = Settings(_env_file=None).nudge_rules
        assert (rule.holdout_percent, rule.holdout_buckets, rule.holdout_salt) == (percent, round(percent * 100), "")
    else:
        with pytest.raises(ValidationError):
            Settings(_env_file=None)


def test_a_bad_holdout_is_one_line_naming_the_rule_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from events_schema.cli_errors import run_command

    monkeypatch.setenv("NUDGE_RULES", json.dumps([{"name": "r", "threshold_hours": 1, "holdout_percent": 150}]))
    assert run_command(lambda: len(Settings(_env_file=None).nudge_rules)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid setting NUDGE_RULES (0.holdout_percent): ") and err.count("\n") == 1
