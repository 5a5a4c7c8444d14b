"""tests.waiting.join: a thread still running at the timeout fails the test instead of hanging it."""

from __future__ import annotations

import threading

import pytest

from tests.waiting import join


def test_join_returns_once_the_threads_end_and_fails_naming_one_that_does_not() -> None:
    release = threading.Event()
    quick = threading.Thread(target=lambda: None, name="quick")
    stuck = threading.Thread(target=lambda: release.wait(timeout=60), name="stuck", daemon=True)
    quick.start()
    stuck.start()
    try:
        join(quick, timeout=30)
        with pytest.raises(AssertionError, match="still running after 0 s: stuck"):
            join(quick, stuck, timeout=0.2)
    finally:
        release.set()
        join(stuck)
