"""Two workers and two beats (a deployment mistake Celery warns about) for many scan cycles:
every user who comes due is nudged exactly once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.integration.faults.data import assert_nudged_once, nudge_counts
from tests.integration.faults.processes import start_beat, start_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.worker]
THRESHOLD_HOURS = 0.002  # 7.2 s: users signed up now come due within the test
WAVES, PER_WAVE = 6, 25


def test_two_workers_and_two_beats_nudge_each_due_user_once(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str, tmp_path: Path
) -> None:
    env = {
        **fault_env,
        "SCAN_INTERVAL_SECONDS": "1",
        "NUDGE_COOLDOWN_HOURS": "0",
        "NUDGE_RULES": json.dumps([{"name": "quick", "threshold_hours": THRESHOLD_HOURS}]),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    processes = [start_worker(env, queue, "one", concurrency=2), start_worker(env, queue, "two", concurrency=2)]
    try:
        processes += [start_beat(env, str(tmp_path / "a")), start_beat(env, str(tmp_path / "b"))]
        users = []
        for _ in range(WAVES):  # users keep coming due while the scans repeat
            users += [
                row[0]
                for row in admin.execute(
                    "insert into auth.users (id, created_at) select gen_random_uuid(), %s from generate_series(1, %s) returning id",
                    (datetime.now(UTC), PER_WAVE),
                ).fetchall()
            ]
            time.sleep(1.5)
        wait_until(
            lambda: len(nudge_counts(admin)) >= len(users),
            60,
            lambda: f"{len(nudge_counts(admin))} of {len(users)} nudged",
        )
        time.sleep(3)  # a few more cycles of both beats: nothing more may be written
        scans = sum(p.output().count("scan_inactive scan") for p in processes[:2])
    finally:
        for process in processes:
            process.stop()
    print(f"{scans} scans, {sum(nudge_counts(admin).values())} nudges for {len(users)} users")
    assert scans >= 10, f"only {scans} scans ran"
    assert_nudged_once(admin, users)
