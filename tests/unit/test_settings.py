"""Settings come from the environment, with defaults that work on a machine with local servers."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from events_schema.errors import UsageError
from events_schema.settings import NudgeRule, Settings, parse_rules


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
    assert err == (
        'error: invalid setting NUDGE_RULES: rule 1 ("r"): holdout_percent: '
        "Input should be less than or equal to 100 (got 150)\n"
    )


# Rule validation: NUDGE_RULES and parse_rules (for commands taking rules of their own) alike


@pytest.mark.parametrize(
    ("rules", "line"),
    [
        (
            [{"name": "a", "threshold_hours": 48}, {"name": "b", "threshold_hours": 36, "zone": "Europe/Paris"}],
            'rule 2 ("b"): zone: unknown field (a rule has name, threshold_hours, event_types, holdout_percent, '
            "holdout_salt, mode)",
        ),
        (
            [{"name": "b", "threshold_hours": -1}],
            'rule 1 ("b"): threshold_hours: Input should be greater than 0 (got -1)',
        ),
        (
            [{"name": "b", "threshold_hours": 36, "mode": "dark"}],
            "rule 1 (\"b\"): mode: Input should be 'live' or 'shadow' (got \"dark\")",
        ),
        (
            [{"name": "b", "threshold_hours": 36, "mode": "shadow", "holdout_percent": 10}],
            'rule 1 ("b"): holdout_percent: a shadow rule sends nothing, so it has no control arm (got 10)',
        ),
        ([{"threshold_hours": 36}], "rule 1: name: missing (required)"),
        (
            [{"name": "a", "threshold_hours": 1}, {"name": "a", "threshold_hours": 2}],
            'rule 2 ("a"): name: rule 1 has the same name',
        ),
        (["inactive"], 'rule 1: Input should be a valid dictionary or instance of NudgeRule (got "inactive")'),
        (
            [{"name": "b", "threshold_hours": "soon", "event_types": "app_open"}],
            'rule 1 ("b"): threshold_hours: Input should be a valid number, unable to parse string as a number '
            '(got "soon") (and 1 more)',
        ),
    ],
    ids=[
        "unknown-field",
        "negative-threshold",
        "unknown-mode",
        "shadow-holdout",
        "no-name",
        "same-name",
        "not-an-object",
        "two-problems",
    ],
)
def test_a_bad_rule_is_one_line_naming_the_rule_and_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rules: list[object], line: str
) -> None:
    from events_schema.cli_errors import run_command

    with pytest.raises(UsageError) as refused:
        parse_rules(json.dumps(rules), "--rules")
    assert str(refused.value) == f"--rules: {line}"
    monkeypatch.setenv("NUDGE_RULES", json.dumps(rules))
    assert run_command(lambda: len(Settings(_env_file=None).nudge_rules)) == 2
    assert capsys.readouterr().err == f"error: invalid setting NUDGE_RULES: {line}\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[{", "rules: not JSON: Expecting property name enclosed in double quotes: line 1 column 3 (char 2)"),
        ("[]", "rules: expected a JSON list of rules, got []"),
        ("48", "rules: expected a JSON list of rules, got 48"),
    ],
)
def test_rules_text_that_is_not_a_list_of_rules(text: str, line: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(line) + "$"):
        parse_rules(text)


def test_parse_rules_reads_rules_as_nudge_rules_does() -> None:
    text = '[{"name": "proposed_36h", "threshold_hours": 36, "mode": "shadow"}, {"name": "x", "threshold_hours": 1}]'
    shadow, live = parse_rules(text)
    assert (shadow.mode, shadow.threshold_hours, live.mode) == ("shadow", 36, "live")
    assert parse_rules('{"name": "one", "threshold_hours": 2}') == [NudgeRule(name="one", threshold_hours=2)]
