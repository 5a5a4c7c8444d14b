"""The test run's own state folder, set before anything reads the settings.

`scripts/run` keeps its embedded servers and their `services.env` in the state folder (`.local/`,
or EVENTS_STATE_DIR); a test run that read that file would take the URLs of servers `scripts/run`
started, and stopped when it ended, for configured ones. So a run, and every process it starts,
uses `<state folder>/tests/` instead (EVENTS_STATE_DIR is set to it), where nothing writes a
`services.env`; a nested run (a test that runs pytest) inherits EVENTS_TEST_STATE_DIR and shares
the folder, and its embedded servers, with the run around it (`shared_use`).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_STATE_DIR = Path(
    os.environ.get("EVENTS_TEST_STATE_DIR")
    or Path(os.environ.get("EVENTS_STATE_DIR") or PROJECT_ROOT / ".local") / "tests"
).absolute()
os.environ["EVENTS_TEST_STATE_DIR"] = os.environ["EVENTS_STATE_DIR"] = str(TEST_STATE_DIR)
