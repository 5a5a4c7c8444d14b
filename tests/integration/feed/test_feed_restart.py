"""Restart PostgreSQL under a live consumer and a busy writer: nothing is lost or repeated.

The server is an embedded PostgreSQL this test starts for itself (worker.dev_servers.services, as an
unprivileged user, in a fresh state folder), never the machine's shared server. It is restarted
twice: a clean fast shutdown, then an immediate one (SIGQUIT to the postmaster: no checkpoint,
crash recovery on start).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from events_schema.db import DatabaseUnavailable, connect
from events_schema.migrate import migrate
from worker.dev_servers import services as ls
from worker.feed import Feed, FeedEvent

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded() -> Iterator[tuple[Path, str]]:
    # Not pytest's tmp_path: its parent is private to us, out of reach for the server's user.
    state_dir = Path(tempfile.mkdtemp(prefix="engagement-feed-restart-"))
    try:
        url = ls.ensure_postgres(state_dir)
        migrate(url)
        yield state_dir, url
    finally:
        ls.stop_all(state_dir)
        shutil.rmtree(state_dir)


def _crash(state_dir: Path) -> None:
    """Immediate shutdown, as after a crash: the postmaster quits without a checkpoint."""
    pid = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while ls.command_line(pid) is not None:
        assert time.monotonic() < deadline, "the postmaster did not quit"
        time.sleep(0.05)


def test_a_consumer_loses_nothing_when_the_server_restarts(embedded: tuple[Path, str]) -> None:
    state_dir, url = embedded
    with connect(url, autocommit=True) as admin:
        user: UUID = admin.execute(
            "insert into auth.users (id, email) values (gen_random_uuid(), 'restart@example.com') returning id"
        ).fetchone()[0]
    received: list[FeedEvent] = []
    stop = threading.Event()
    written = threading.Semaphore(0)
    subscription = Feed(url, poll_interval=0.2).subscribe()

    def consume() -> None:
        with subscription:
            while not stop.is_set():
                received.extend(subscription.next_batch(timeout=0.1))
            while batch := subscription.next_batch(timeout=1.0):  # stragglers
                received.extend(batch)

    def write() -> None:
        """Commits events one by one, through the restarts; what fails to commit is not counted."""
        conn: psycopg.Connection | None = None
        n = 0
        while not stop.is_set():
            try:
                conn = conn or connect(url, autocommit=True)
                conn.execute(
                    "insert into engagement_events (user_id, event_type, value) values (%s, 'app_open', %s)",
                    (user, psycopg.types.json.Jsonb({"n": n})),
                )
                n += 1
                written.release()
            except (psycopg.OperationalError, DatabaseUnavailable):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=consume), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:
        for restart in ("fast", "immediate"):
            for _ in range(50):  # the writer is busy and the consumer is reading
                assert written.acquire(timeout=30)
            if restart == "fast":
                ls.stop_all(state_dir)
            else:
                _crash(state_dir)
            assert ls.ensure_postgres(state_dir) == url, "the server came back elsewhere"
        for _ in range(50):  # and both carry on after the second restart
            assert written.acquire(timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    with connect(url) as admin:
        table = [row[0] for row in admin.execute("select id from engagement_events").fetchall()]
    ids = [event.id for event in received]
    assert len(table) >= 150
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(table)
