"""Waiting in tests: every wait has a timeout, and running out of it fails the test instead of
hanging it (pytest-timeout's per-test bound is the last resort, not the plan)."""

from __future__ import annotations

import threading
import time

# Long enough for a loaded machine; a bound about hanging, not speed.
THREAD_TIMEOUT = 60.0


def join(*threads: threading.Thread, timeout: float = THREAD_TIMEOUT) -> None:
    """Join the threads within one shared timeout; fail naming those still running."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"still running after {timeout:.0f} s: {', '.join(stuck)}"
