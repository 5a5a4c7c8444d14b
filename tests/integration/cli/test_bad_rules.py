"""A bad rule in NUDGE_RULES, from the outside: every command that reads the settings refuses with
one line naming the rule and the field, exit 2, before reaching a server (docs/engine.md, "Rule
validation"). `python -m worker` imports the metrics registry, which reads the settings at import:
a bad rule must not turn into a traceback there."""

from __future__ import annotations

import json

import pytest

from tests.integration.cli.commands import cli

NOWHERE = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere", "REDIS_URL": "redis://127.0.0.1:1/0"}
BAD = [
    (
        {"name": "proposed_36h", "threshold_hours": -1},
        'rule 1 ("proposed_36h"): threshold_hours: Input should be greater than 0 (got -1)',
    ),
    (
        {"name": "proposed_36h", "threshold_hours": 36, "mode": "dark"},
        "rule 1 (\"proposed_36h\"): mode: Input should be 'live' or 'shadow' (got \"dark\")",
    ),
    (
        {"name": "proposed_36h", "threshold_hours": 36, "zone": "Europe/Paris"},
        'rule 1 ("proposed_36h"): zone: unknown field',
    ),
]


@pytest.mark.parametrize(("rule", "line"), BAD, ids=["negative-threshold", "unknown-mode", "unknown-field"])
@pytest.mark.parametrize(
    "argv",
    [("worker", "scan", "--dry-run"), ("worker", "health"), ("events_schema", "report", "--weeks", "1")],
    ids=" ".join,
)
def test_a_bad_rule_is_one_line_from_every_command(argv: tuple[str, ...], rule: dict[str, object], line: str) -> None:
    result = cli(*argv, env={**NOWHERE, "NUDGE_RULES": json.dumps([rule])})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: invalid setting NUDGE_RULES: {line}")
    assert result.stderr.count("\n") == 1
