"""`python -m worker tail` as a user runs it: lines as events commit, Ctrl-C exits 0, resumable."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from uuid import UUID

import psycopg

from tests.integration.worker_process import PROJECT_ROOT
from worker.feed import Feed


class Tail:
    """A running `tail` whose stdout lines arrive on a queue, so reads can time out."""

    def __init__(self, db_url: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "tail", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": db_url},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, timeout: float = 15) -> str:
        return self.lines.get(timeout=timeout)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C; the exit status and stderr, once every stdout line is on the queue."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=15)
        self._pump_thread.join(timeout=15)
        assert self.process.stderr is not None
        return status, self.process.stderr.read()


def _user(admin: psycopg.Connection) -> UUID:
    return admin.execute(
        "insert into auth.users (id, email) select id, 'tail-' || id || '@example.com' from gen_random_uuid() id returning id"
    ).fetchone()[0]


def _insert(admin: psycopg.Connection, user: UUID, event_type: str) -> UUID:
    return admin.execute(
        "insert into engagement_events (user_id, event_type, value) values (%s, %s, '{\"k\": 1}') returning id",
        (user, event_type),
    ).fetchone()[0]


def test_tail_prints_json_lines_exits_0_on_ctrl_c_and_resumes(db_url: str, admin: psycopg.Connection) -> None:
    user = _user(admin)
    with Feed(db_url).subscribe() as subscription:  # a cursor from before the tail starts
        since = subscription.cursor
    # No such event yet: --any-type says these types are expected, not typos.
    tail = Tail(db_url, "--json", "--any-type", "--type", "goal_complete", "coach_message", "--since", since)
    _insert(admin, user, "app_open")
    wanted = _insert(admin, user, "goal_complete")
    printed = json.loads(tail.line())
    assert (printed["id"], printed["event_type"], printed["user_id"], printed["is_deleted"]) == (
        str(wanted),
        "goal_complete",
        str(user),
        False,
    )
    assert printed["value"] == {"k": 1} and printed["timestamp"].endswith("+00:00")
    status, stderr = tail.interrupt()
    assert status == 0
    assert "Traceback" not in stderr
    resume_at = stderr.strip().splitlines()[-1].removeprefix("cursor: ")

    later = _insert(admin, user, "coach_message")
    resumed = Tail(db_url, "--json", "--type", "goal_complete", "coach_message", "--since", resume_at)
    assert json.loads(resumed.line())["id"] == str(later)
    assert resumed.interrupt()[0] == 0
    assert resumed.lines.empty(), "an event was printed twice"


def test_tail_for_a_user_prints_only_what_that_user_may_read(db_url: str, admin: psycopg.Connection) -> None:
    mine, theirs = _user(admin), _user(admin)
    tail = Tail(db_url, "--user", str(mine), "--since", "beginning")
    for user in (theirs, mine, theirs):
        _insert(admin, user, "app_open")
    line = tail.line()
    assert f"user={mine}" in line and "app_open" in line
    assert tail.interrupt()[0] == 0
    assert tail.lines.empty()


def test_tail_refuses_a_bad_cursor_in_one_line(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "tail", "--since", "not-a-cursor"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: not a feed cursor: 'not-a-cursor'"]
