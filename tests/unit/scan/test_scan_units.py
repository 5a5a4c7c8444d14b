"""Pure parts of the scan: instants, rule selection, the summary's shape, the task body."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from events_schema.settings import NudgeRule, Settings
from worker.scan.scanner import SKIP_REASONS, RuleSummary, ScanSummary, select_rules
from worker.clock import parse_instant


def test_as_of_with_offset_is_normalised_to_utc() -> None:
    assert parse_instant("2026-03-04T19:00:00+09:00") == datetime(2026, 3, 4, 10, tzinfo=timezone.utc)


def test_as_of_without_offset_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_instant("2026-03-04T10:00:00")


@freeze_time("2026-03-04T10:00:00Z")
def test_as_of_defaults_to_pythons_clock() -> None:
    assert parse_instant(None) == datetime(2026, 3, 4, 10, tzinfo=timezone.utc)


def test_rules_are_selected_by_name_in_configuration_order() -> None:
    settings = Settings(
        _env_file=None,
        nudge_rules=[NudgeRule(name="a", threshold_hours=1), NudgeRule(name="b", threshold_hours=2)],
    )
    assert [r.name for r in select_rules(settings, None)] == ["a", "b"]
    assert [r.name for r in select_rules(settings, ["b", "a"])] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown rule"):
        select_rules(settings, ["c"])


def test_summary_totals_and_json_shape() -> None:
    summary = ScanSummary(scan_id="s", as_of=datetime(2026, 3, 4, tzinfo=timezone.utc), dry_run=False)
    first = RuleSummary(rule="a", threshold_hours=48, mode="full", examined=5, due=3, nudged=1)
    first.skipped["quiet_hours"] = 2
    summary.rules = [first, RuleSummary(rule="b", threshold_hours=168, mode="incremental", examined=1, due=1, nudged=1)]
    data = summary.as_dict()
    assert (data["examined"], data["due"], data["nudged"]) == (6, 4, 2)
    assert set(data["skipped"]) == set(SKIP_REASONS) and data["skipped"]["quiet_hours"] == 2
    assert "examined=6 due=4 nudged=2" in summary.log_line()
