"""The live event feed: every committed write, in commit order, exactly once (`from worker.feed import Feed`)."""

from worker.feed.subscription import (
    BEGINNING,
    CHANNEL,
    Cursor,
    Feed,
    FeedError,
    FeedEvent,
    Snapshot,
    Subscription,
    current_position,
    read_page,
)

__all__ = [
    "BEGINNING",
    "CHANNEL",
    "Cursor",
    "Feed",
    "FeedError",
    "FeedEvent",
    "Snapshot",
    "Subscription",
    "current_position",
    "read_page",
]
