"""One clear line on stderr for every expected failure of a command line, never a traceback.

Shared by `python -m events_schema` and `python -m worker`: a server that is down, settings that
do not validate, and a reader that went away (`... | head`) all end the command the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import psycopg
import pydantic
import sqlalchemy.exc

from events_schema.db import DatabaseUnavailable
from events_schema.settings import stopped_services_note

# Failures of the database connection, whichever layer reports them.
EXPECTED: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
)


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
    return f"invalid setting {name}{f' ({inner})' if inner else ''}: {error['msg']}"


def run_command(command: Callable[[], int], expected: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's body; expected failures become one line on stderr and exit status 1."""
    try:
        return command()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except pydantic.ValidationError as exc:
        print(f"error: {_settings_problem(exc)}", file=sys.stderr)
        return 2
    except EXPECTED + expected as exc:
        message = first_line(exc)
        if not isinstance(exc, DatabaseUnavailable) and isinstance(exc, EXPECTED):
            message = f"database: {message}"
        if note := stopped_services_note():
            message = f"{message}; {note}"
        print(f"error: {message}", file=sys.stderr)
        return 1
