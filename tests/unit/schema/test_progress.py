"""The progress bar draws on terminals only, so logs and pipes stay clean."""

from __future__ import annotations

import io

from events_schema.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(10, "seeding", stream)
    progress.update(5, force=True)
    progress.close()
    assert stream.getvalue() == ""


def test_redraws_one_line_and_ends_it_once_on_a_terminal() -> None:
    stream = Terminal()
    progress = Progress(4, "seeding", stream, width=8)
    progress.update(2, "10 events", force=True)
    progress.update(4, "20 events", force=True)
    progress.close()
    progress.close()
    text = stream.getvalue()
    assert "[####....]  50% 2/4 10 events" in text
    assert "[########] 100% 4/4 20 events" in text
    assert text.endswith("\n") and text.count("\n") == 1
