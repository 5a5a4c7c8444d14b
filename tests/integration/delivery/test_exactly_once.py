"""One outcome per nudge across dispatchers running at once, and across a dispatcher killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest

from tests.integration.delivery.conftest import add_nudge, add_user, fcm_settings, outcomes, set_env
from tests.integration.delivery.servers import FcmStub
from tests.integration.worker_process import PROJECT_ROOT
from worker.delivery.dispatcher import Dispatcher


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_two_dispatchers_at_once_send_each_nudge_once(
    fcm_env: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, DELIVERY_BATCH_SIZE="20", DELIVERY_CONCURRENCY="10")
    assert Dispatcher().run().ran  # the cursor starts here
    nudges = [add_nudge(admin, add_user(admin, f"tok-{i}")) for i in range(200)]
    fcm_env.state.delay = 0.01
    done = threading.Event()
    summaries = []

    def dispatch() -> None:
        summaries.append(Dispatcher().run(follow=True, max_seconds=60, stop=done.is_set))

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(outcomes(admin)) == len(nudges), 60, "every nudge's outcome")
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)

    sent = Counter(r.nudge_id for r in fcm_env.sent(ok_only=False))
    assert sent == Counter({str(n): 1 for n in nudges})
    recorded = outcomes(admin)
    assert all(len(recorded[n]) == 1 and recorded[n][0][0] == "nudge_delivered" for n in nudges)
    assert sum(s.batches for s in summaries) >= 10


@pytest.mark.worker
def test_a_dispatcher_killed_mid_batch_leaves_one_outcome_per_nudge(
    settings_env: str, fcm: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL while a batch is in flight: its transaction dies with the connection, so nothing of
    it is recorded and the next dispatcher sends that batch again. The provider may receive the
    killed batch's messages twice (FCM has no idempotency key): at most DELIVERY_BATCH_SIZE."""
    batch = 50
    settings = fcm_settings(fcm, DELIVERY_BATCH_SIZE=str(batch), DELIVERY_CONCURRENCY="10")
    set_env(monkeypatch, **settings)
    assert Dispatcher().run().ran
    nudges = [add_nudge(admin, add_user(admin, f"tok-{i}")) for i in range(300)]
    fcm.state.delay = 0.05  # 50 nudges, 10 at a time: a batch takes a quarter of a second
    env = {**os.environ, **settings, "DATABASE_URL": settings_env}
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "deliver"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(fcm.sent()) >= 2 * batch + batch // 2, 60, "the third batch to be under way")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    recorded_at_kill = len(outcomes(admin))
    assert recorded_at_kill % batch == 0 and recorded_at_kill < len(nudges), "killed between batches"

    fcm.state.delay = 0
    Dispatcher().run(max_seconds=60)

    recorded = outcomes(admin)
    assert set(recorded) == set(nudges)
    assert all(len(v) == 1 for v in recorded.values())
    sent = Counter(r.nudge_id for r in fcm.sent(ok_only=False))
    assert set(sent) == {str(n) for n in nudges}
    twice = [n for n, count in sent.items() if count > 1]
    assert 0 < len(twice) <= batch
    assert max(sent.values()) == 2
