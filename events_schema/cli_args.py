"""Argument types shared by both command lines, so a bad value reads the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime


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
    """An ISO 8601 instant with an offset (`Z` accepted); one without is ambiguous, so refused."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; ambiguous (e.g. {text}Z or {text}+02:00)")
    return value
