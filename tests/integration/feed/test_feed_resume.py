"""A reader that leaves early, then resumes the documented way (docs/feed.md), gets every event
exactly once: through a real pipe from `python -m worker tail`, and from `Feed` directly."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
import time
from uuid import UUID

import psycopg
import pytest

from tests.integration.feed.test_feed_cli import Tail
from tests.integration.worker_process import PROJECT_ROOT
from worker.feed import BEGINNING, Feed

# More than a pipe holds (64 KiB): the tail is blocked writing when the reader leaves.
EVENTS = 600
PER_TRANSACTION = 10


def _events(admin: psycopg.Connection, n: int, pad: int) -> list[str]:
    """`n` events in transactions of several rows each, in commit order (ids as text)."""
    user = admin.execute(
        "insert into auth.users (id, email) select id, 'resume-' || id || '@example.com' "
        "from gen_random_uuid() id returning id"
    ).fetchone()[0]
    ids: list[str] = []
    for start in range(0, n, PER_TRANSACTION):
        rows = admin.execute(
            "insert into engagement_events (user_id, event_type, value) "
            "select %s, 'app_open', jsonb_build_object('n', i, 'pad', repeat('x', %s::int)) "
            "from generate_series(%s::int, %s::int) i order by i returning id",
            (user, pad, start, min(start + PER_TRANSACTION, n) - 1),
        ).fetchall()
        ids += [str(row[0]) for row in rows]
    return ids


def _unread(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def _leave_after_one_line(db_url: str, reads_ahead: bool) -> tuple[dict[str, object], str]:
    """`tail --json --since beginning` into a pipe whose reader handles one line and leaves, once
    the pipe holds many more. Returns that line and the cursor the tail printed on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "tail", "--json", "--since", "beginning"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert process.stdout is not None and process.stderr is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + 60
    while _unread(fd) < 32768:  # many lines waiting in the pipe
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    if reads_ahead:  # as `head -1` does: a buffer-full out of the pipe, one line of it handled
        line = os.read(fd, 8192).split(b"\n")[0]
    else:  # exactly the line it handles, as a shell's `read` does
        line = b""
        while not line.endswith(b"\n"):
            line += os.read(fd, 1)
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert "Traceback" not in stderr and stderr.startswith("cursor: "), stderr
    return json.loads(line), stderr.strip().removeprefix("cursor: ")


def _resume(db_url: str, since: str, expected: int) -> list[str]:
    """`tail --json --since CURSOR`: the ids of the events it prints, `expected` of them and then
    no more (checked once Ctrl-C has stopped it)."""
    tail = Tail(db_url, "--json", "--since", since)
    try:
        ids = [json.loads(tail.line(timeout=60))["id"] for _ in range(expected)]
    except BaseException:
        tail.process.kill()  # leave no tail behind, retrying against the dropped database
        tail.process.wait(timeout=30)
        raise
    status, stderr = tail.interrupt()
    assert status == 0, stderr
    extra = []
    while not tail.lines.empty():
        extra.append(json.loads(tail.lines.get_nowait())["id"])
    return ids + extra


@pytest.mark.parametrize("reads_ahead", [False, True], ids=["reads-one-line", "reads-ahead"])
def test_a_tail_reader_that_leaves_early_resumes_from_its_last_line(
    admin: psycopg.Connection, db_url: str, reads_ahead: bool
) -> None:
    ids = _events(admin, EVENTS, pad=300)
    first, exit_cursor = _leave_after_one_line(db_url, reads_ahead)
    assert first["id"] == ids[0]
    # The documented way: the cursor of the last line the reader handled.
    assert _resume(db_url, str(first["cursor"]), len(ids) - 1) == ids[1:]
    if not reads_ahead:
        # The reader took one line out of the pipe; the exit cursor is past that line, not past
        # the lines it left in the pipe.
        assert _resume(db_url, exit_cursor, len(ids) - 1) == ids[1:]


def test_a_feed_consumer_that_stops_early_resumes_from_its_cursor(admin: psycopg.Connection, db_url: str) -> None:
    ids = _events(admin, 25, pad=10)
    feed = Feed(db_url, page_size=10)
    taken: list[str] = []
    with feed.subscribe(since=BEGINNING) as subscription:
        for event in subscription:  # stops mid-page: the rest of the page was read, not taken
            taken.append(str(event.id))
            if len(taken) == 3:
                break
        cursor = subscription.cursor
        last_taken = event.cursor
    assert cursor == last_taken
    for since in (cursor, last_taken):
        resumed: list[str] = []
        with feed.subscribe(since=since) as subscription:
            while batch := subscription.next_batch(timeout=2):
                resumed += [str(e.id) for e in batch]
        assert taken + resumed == ids


def test_feed_iteration_started_again_carries_on_where_it_stopped(admin: psycopg.Connection, db_url: str) -> None:
    ids = _events(admin, 12, pad=10)
    taken: list[UUID] = []
    with Feed(db_url, page_size=5).subscribe(since=BEGINNING) as subscription:
        while len(taken) < len(ids):
            for event in subscription:
                taken.append(event.id)
                break  # one event per loop: each a new iteration of the same subscription
    assert [str(i) for i in taken] == ids


def test_a_tail_whose_reader_left_ends_though_no_event_follows(admin: psycopg.Connection, db_url: str) -> None:
    """`tail --json --since beginning | head -1` with a few events: all fit the pipe, nothing more
    commits, and the tail still ends, without counting the lines left in the pipe."""
    ids = _events(admin, 3, pad=10)
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "tail", "--json", "--since", "beginning"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # Like head: it reads ahead (here every line, so the tail has nothing left to write), handles one.
    lines = [process.stdout.readline() for _ in ids]
    first = json.loads(lines[0])
    process.stdout.close()
    assert process.wait(timeout=30) == 0
    exit_cursor = process.stderr.read().decode().strip().removeprefix("cursor: ")
    process.stderr.close()
    assert first["id"] == ids[0]
    assert _resume(db_url, str(first["cursor"]), 2) == ids[1:]
    # The exit cursor is past the lines the reader read out of the pipe: all of them.
    with Feed(db_url).subscribe(since=exit_cursor) as subscription:
        assert subscription.next_batch(timeout=1) == []
