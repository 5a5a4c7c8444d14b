"""The parser and argument types shared by both command lines, so a bad value reads the same
everywhere: one line on stderr with a hint, exit status 2 (events_schema/cli_errors.py prints it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import NoReturn

from events_schema.cli_errors import report
from events_schema.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    """argparse, but a bad argument is reported as a UsageError (one line with a hint, exit 2)
    instead of the usage plus the error. Subcommand parsers made by `add_subparsers` are of this
    class too. As argparse promises, `parse_args` still exits (SystemExit) on a bad argument.
    """

    def error(self, message: str) -> NoReturn:
        sys.exit(report(UsageError(f"{message} (see {self.prog} --help)")))


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type for an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            bound = "0 or more" if minimum == 0 else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def instant(text: str) -> datetime:
    """An ISO 8601 instant with an offset (`Z` accepted); one without is ambiguous, so refused.
    A date with an offset ("2026-11-01Z") is its midnight there: Python would drop the offset."""
    dated = len(text) > 10 and text[10] not in "Tt "
    full = f"{text[:10]}T00:00{text[10:]}" if dated else text
    try:
        value = datetime.fromisoformat(full.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        example = text if len(text) > 10 else f"{text}T00:00"
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; ambiguous (e.g. {example}Z or {example}+02:00)")
    return value


def day(text: str) -> date:
    """An ISO 8601 calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def non_empty(text: str) -> str:
    """A value that is not blank (e.g. an id)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def positive_seconds(text: str) -> float:
    """A duration in seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value
