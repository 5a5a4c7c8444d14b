"""The one place a command's ending is decided: its exit status and the one line on stderr.

Shared by `python -m events_schema` and `python -m worker` (and `python -m worker services`):
every expected failure (events_schema/errors.py, a server that is down, settings that do not
validate, a bad argument) ends the command with one line on stderr, `error: ...`, and the
status its class carries; never a traceback. A reader that goes away (`... | head -1`) ends the
command quietly, and the exit status still says what happened to the data.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pydantic
import sqlalchemy.exc

from events_schema.errors import INTERRUPTED, NOT_RIGHT, OK, USAGE, CommandError, Unreachable
from events_schema.settings import stopped_services_note, validation_message

# Failures of the database connection that reach a command from the drivers themselves.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
)


class ReaderGone(BrokenPipeError):
    """The reader of stdout went away while a command printed the result of work already done."""

    def __init__(self, status: int) -> None:
        super().__init__(errno.EPIPE, "the reader of stdout went away")
        self.status = status


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def _settings_problem(exc: pydantic.ValidationError) -> str:
    """`NAME: reason` for the first invalid setting, named as in the environment."""
    error = exc.errors()[0]
    name = "_".join(str(part) for part in error["loc"][:1]).upper() or "settings"
    # Within a structured setting (a rule of NUDGE_RULES), which element and field.
    inner = ".".join(str(part) for part in error["loc"][1:])
    return f"invalid setting {name}{f' ({inner})' if inner else ''}: {validation_message(error)}"


def describe(exc: BaseException, unreachable: tuple[type[BaseException], ...] = ()) -> tuple[str, int]:
    """The one line (without `error: `) and the exit status an expected failure ends a command with."""
    if isinstance(exc, pydantic.ValidationError):
        return _settings_problem(exc), USAGE
    if isinstance(exc, CommandError):
        message, status = " ".join(str(exc).split()) or type(exc).__name__, exc.status
    elif isinstance(exc, DATABASE_ERRORS):
        message, status = f"database: {first_line(exc)}", NOT_RIGHT
    else:
        message, status = first_line(exc), NOT_RIGHT
    parts = [message]
    if isinstance(exc, (Unreachable, *DATABASE_ERRORS, *unreachable)) and (note := stopped_services_note()):
        parts.append(note)
    # Advice added where the failure passed through (`exc.add_note(...)`): on the same line.
    parts += [" ".join(note.split()) for note in getattr(exc, "__notes__", ())]
    # One sentence: a part's closing full stop would end it before the next.
    return "; ".join(part.rstrip(".") for part in parts), status


def report(exc: BaseException, unreachable: tuple[type[BaseException], ...] = ()) -> int:
    """Print an expected failure as one line on stderr; the exit status it ends the command with."""
    message, status = describe(exc, unreachable)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status


def stdout_gone() -> None:
    """Point stdout at /dev/null (as Python's docs advise) so nothing complains at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextmanager
def keeping_status(status: int) -> Iterator[None]:
    """Print the result of work already done: a reader that goes away leaves the status `status`."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError as exc:
        raise ReaderGone(status) from exc


def run_command(command: Callable[[], int], unreachable: tuple[type[BaseException], ...] = ()) -> int:
    """Parse and run a command; the one place its exit status and error line are decided.

    `unreachable`: the caller's own exception types that mean a server it needs is down (e.g. the
    broker's), reported like a database that is down.
    """
    expected: tuple[type[BaseException], ...] = (CommandError, pydantic.ValidationError, *DATABASE_ERRORS, *unreachable)
    status: int | None = None
    try:
        try:
            status = command()
        except SystemExit as exit_:  # argparse's --help: flush it here, where a closed pipe is handled
            status = exit_.code if isinstance(exit_.code, int) else OK if exit_.code is None else USAGE
        sys.stdout.flush()
        return status
    except ReaderGone as gone:
        stdout_gone()
        return gone.status
    except BrokenPipeError:
        # The reader went away: quietly, with the status of what was done (none decided yet: 0).
        stdout_gone()
        return OK if status is None else status
    except KeyboardInterrupt:
        return INTERRUPTED
    except expected as exc:
        return report(exc, unreachable)
