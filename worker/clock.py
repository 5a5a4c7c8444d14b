"""The engine's one clock: instants are parsed and taken here, always as aware UTC datetimes.

Every capability passes its instant into SQL from here (never the database's `now()`), so tests
freeze Python's clock and a decision at a given instant is the same on any server.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, from Python's clock (which freezegun can freeze), in UTC."""
    return datetime.now(UTC)


def parse_instant(value: str | None) -> datetime:
    """ISO-8601 with an offset, as UTC; None means now from Python's clock."""
    if value is None:
        return utc_now()
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"as_of {value!r} has no UTC offset; ambiguous")
    return parsed.astimezone(UTC)
