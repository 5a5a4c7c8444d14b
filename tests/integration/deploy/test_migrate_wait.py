"""`events_schema migrate --wait N`: a server that comes up late (PostgreSQL restarting after its
first set-up in a new container) is waited for; without --wait the command fails at once."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from tests.integration.worker_process import PROJECT_ROOT


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def late_port(upstream: tuple[str, int], opened: threading.Event) -> Iterator[int]:
    """A loopback port that refuses connections until `opened` is set, then forwards to upstream."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def serve() -> None:
        if not opened.wait(timeout=120) or stop.is_set():
            return
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(upstream, timeout=10)
            client.settimeout(None)
            server.settimeout(None)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        opened.set()
        thread.join(timeout=10)
        listener.close()


def migrate(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "migrate", *args],
        env={**os.environ, "DATABASE_URL": url},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_waits_for_a_server_that_comes_up_late(empty_db_url: str) -> None:
    target = make_url(empty_db_url)
    opened = threading.Event()
    with late_port((target.host or "127.0.0.1", target.port or 5432), opened) as port:
        late = target.set(host="127.0.0.1", port=port).render_as_string(False)
        at_once = migrate(late)
        assert at_once.returncode == 1 and "cannot connect" in at_once.stderr, at_once.stderr
        assert len(at_once.stderr.splitlines()) == 1 and "waiting" not in at_once.stderr
        opener = threading.Timer(3, opened.set)
        opener.start()
        waited = migrate(late, "--wait", "60")
        opener.cancel()
    assert waited.returncode == 0, waited.stderr
    assert "applied 20261126100000_engagement_events.sql" in waited.stdout


def test_a_server_that_never_comes_is_one_line_after_the_wait() -> None:
    result = migrate("postgresql+psycopg://postgres@127.0.0.1:1/nothing", "--wait", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect") and "(still, after waiting 2 s)" in result.stderr
    assert len(result.stderr.splitlines()) == 1
