"""Pure parts of the scan: instants, rule selection, the summary's shape, the task body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from events_schema.settings import NudgeRule, Settings
from worker.clock import parse_instant
from worker.scan.rules import select_rules
from worker.scan.scanner import SKIP_REASONS, Decision, NudgeBudget, RuleSummary, ScanSummary
from worker.scan.shards import Shard


def test_as_of_with_offset_is_normalised_to_utc() -> None:
    assert parse_instant("2026-03-04T19:00:00+09:00") == datetime(2026, 3, 4, 10, tzinfo=UTC)


def test_as_of_without_offset_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_instant("2026-03-04T10:00:00")


@freeze_time("2026-03-04T10:00:00Z")
def test_as_of_defaults_to_pythons_clock() -> None:
    assert parse_instant(None) == datetime(2026, 3, 4, 10, tzinfo=UTC)


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
    summary = ScanSummary(scan_id="s", as_of=datetime(2026, 3, 4, tzinfo=UTC), dry_run=False)
    first = RuleSummary(rule="a", threshold_hours=48, mode="full", examined=5, due=3, nudged=1)
    first.skipped["quiet_hours"] = 2
    summary.rules = [first, RuleSummary(rule="b", threshold_hours=168, mode="incremental", examined=1, due=1, nudged=1)]
    data = summary.as_dict()
    assert (data["examined"], data["due"], data["nudged"]) == (6, 4, 2)
    assert set(data["skipped"]) == set(SKIP_REASONS) and data["skipped"]["quiet_hours"] == 2
    assert "examined=6 due=4 nudged=2" in summary.log_line()


def _decisions(*kinds: str) -> list[Decision]:
    noon = datetime(2026, 3, 4, 12, tzinfo=UTC)
    return [Decision("r", uuid.uuid4(), noon, "UTC", noon.time(), kind, None) for kind in kinds]


def test_the_nudge_budget_defers_what_is_past_it_to_the_next_scan() -> None:
    as_of = datetime(2026, 3, 4, 12, tzinfo=UTC)
    budget = NudgeBudget(2)
    first = budget.split(_decisions("nudge", "quiet_hours", "nudge", "nudge"), as_of)
    assert [d.decision for d in first] == ["nudge", "quiet_hours", "nudge", "rate_limited"]
    assert first[3].hold_until == as_of and budget.remaining == 0
    budget.give_back(1)  # one of the two was already sent by another writer
    assert [d.decision for d in budget.split(_decisions("nudge", "nudge"), as_of)] == ["nudge", "rate_limited"]


def test_no_budget_limits_nothing_and_shards_share_the_cap() -> None:
    as_of = datetime(2026, 3, 4, 12, tzinfo=UTC)
    unlimited = NudgeBudget.for_scan(Settings(_env_file=None), None)
    assert [d.decision for d in unlimited.split(_decisions(*["nudge"] * 50), as_of)] == ["nudge"] * 50
    capped = Settings(_env_file=None, nudge_max_per_scan=10)
    assert NudgeBudget.for_scan(capped, None).remaining == 10
    assert NudgeBudget.for_scan(capped, Shard(0, 3)).remaining == 4  # ceil(10 / 3)
