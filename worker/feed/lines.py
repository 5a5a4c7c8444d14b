"""The tail's output: lines written to a file descriptor, and the cursor past the last line the
reader took.

A line written into a pipe is not yet read: the reader may leave (`| head -1`) with lines still
in the pipe's buffer. So on a pipe a line counts as taken only once the reader has read it out of
the pipe (Linux's FIONREAD on the pipe says how many bytes are still unread); on a terminal or a
file, once it is written. A reader that reads ahead of what it handles (head, any buffered reader)
can still leave with lines it read but never handled: only it knows, which is why every JSON line
carries its own cursor (docs/feed.md: resume from the last line handled).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import stat
import struct
import termios
from collections import deque

from worker.feed.subscription import Cursor

# Lines still possibly in the pipe are checked against it once this many wait (bounds memory).
PRUNE_AT = 256
# A pipe that select() calls writable has room for this much (one page) without blocking.
PIECE = select.PIPE_BUF
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class LineWriter:
    """Writes whole lines to `fd`, unbuffered; `taken` is the cursor past the last line the reader took."""

    def __init__(self, fd: int, start: Cursor) -> None:
        self._fd = fd
        self._pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        self._written = 0  # bytes written into fd, partial lines included
        self._in_pipe: deque[tuple[int, Cursor]] = deque()  # (offset just past the line, its cursor)
        self._taken = start

    def write(self, line: str, position: Cursor) -> None:
        """Write `line` and a newline (`position`: just past its event); BrokenPipeError once the reader has gone.

        Ctrl-C or SIGTERM (KeyboardInterrupt) may stop it while it waits for room in the pipe, never
        between a write and its count: an interrupted count would lose track of a line the reader has.
        """
        data = memoryview((line + "\n").encode())
        while data:
            select.select([], [self._fd], [])  # room for one piece (or the reader gone): interruptible
            held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                count = os.write(self._fd, data[:PIECE])  # fits the room select saw: does not block
                self._written += count
                data = data[count:]
                if not data:
                    self._count(position)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _count(self, position: Cursor) -> None:
        if not self._pipe:
            self._taken = position
            return
        self._in_pipe.append((self._written, position))
        if len(self._in_pipe) >= PRUNE_AT:
            self._update()

    def reader_gone(self) -> bool:
        """Whether a pipe's reader closed it (the next write would fail)."""
        if not self._pipe:
            return False
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))

    @property
    def caught_up(self) -> bool:
        """Whether the reader took every line written."""
        self._update()
        return not self._in_pipe

    @property
    def taken(self) -> str:
        """The cursor past every line the reader took; never past one still in the pipe."""
        self._update()
        return self._taken.encode()

    def _update(self) -> None:
        if not self._in_pipe:
            return
        try:
            unread = struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return  # cannot tell: count none of them as taken (repeats rather than losses)
        read_up_to = self._written - unread
        while self._in_pipe and self._in_pipe[0][0] <= read_up_to:
            self._taken = self._in_pipe.popleft()[1]
