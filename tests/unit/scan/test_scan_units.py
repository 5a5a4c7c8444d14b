"""Pure parts of the scan: instants, rule selection, the summary's shape, the task body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from events_schema.settings import NudgeRule, Settings
from worker.clock import parse_instant
from worker.scan.rules import select_rules
from worker.scan.scanner import SKIP_REASONS, NudgeBudget, RuleSummary, ScanSummary
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


def test_a_batch_takes_from_the_budget_what_it_wrote() -> None:
    """The batch statement defers what is past the budget (as rate_limited) in the database;
    between batches the scan keeps what is left: writes another writer had already made
    (already_nudged) cost nothing, a dry run's would-be writes cost as writes."""
    real = RuleSummary(rule="r", threshold_hours=48, mode="full")
    written = real.add_batch(
        {"nudge": 3, "withhold": 1, "quiet_hours": 1, "not_due": 2},
        {"nudge_sent": 2, "nudge_withheld": 1},
        dry_run=False,
    )
    assert written == 3
    assert (real.examined, real.due, real.nudged, real.withheld) == (7, 5, 2, 1)
    assert real.skipped["already_nudged"] == 1 and real.skipped["quiet_hours"] == 1
    dry = RuleSummary(rule="r", threshold_hours=48, mode="full")
    assert dry.add_batch({"nudge": 3, "withhold": 1, "rate_limited": 2}, {}, dry_run=True) == 4
    assert (dry.nudged, dry.withheld, dry.skipped["rate_limited"], dry.skipped["already_nudged"]) == (3, 1, 2, 0)
    budget = NudgeBudget(5)
    budget.take(written)
    assert budget.remaining == 2
    unlimited = NudgeBudget(None)
    unlimited.take(50)
    assert unlimited.remaining is None


def test_no_budget_limits_nothing_and_shards_share_the_cap() -> None:
    assert NudgeBudget.for_scan(Settings(_env_file=None), None).remaining is None
    capped = Settings(_env_file=None, nudge_max_per_scan=10)
    assert NudgeBudget.for_scan(capped, None).remaining == 10
    assert NudgeBudget.for_scan(capped, Shard(0, 3)).remaining == 4  # ceil(10 / 3)
