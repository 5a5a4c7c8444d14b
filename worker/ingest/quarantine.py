"""The import quarantine as operators see it: list what was refused, and ask whether a batch has
rows there (`python -m worker import --list-rejected [--batch-id ID] [--json]`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from events_schema.db import one_row
from events_schema.queries import QueryFolder
from worker.database import service_transaction

query = QueryFolder.beside(__file__)
# Rows fetched per round trip while listing: a large quarantine streams in constant memory.
FETCH_SIZE = 1000


@dataclass(frozen=True)
class QuarantinedRow:
    batch_id: str
    position: int
    reason: str
    received_at: datetime
    user_id: UUID | None
    event_id: UUID
    raw: str  # the first 200 characters of the input as received

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "position": self.position,
            "reason": self.reason,
            "received_at": self.received_at.isoformat(),
            "user_id": str(self.user_id) if self.user_id else None,
            "event_id": str(self.event_id),
            "raw": self.raw,
        }


def rejected_rows(batch_id: str | None = None, url: str | None = None) -> Iterator[QuarantinedRow]:
    """Every quarantined row (of `batch_id`, or all) in batch and position order, streamed."""
    with service_transaction(url) as conn, conn.cursor(name="quarantine_list") as cursor:
        cursor.itersize = FETCH_SIZE
        cursor.execute(query("import_quarantine_list"), {"batch_id": batch_id})
        for row in cursor:
            yield QuarantinedRow(*row)


def has_batch(batch_id: str, url: str | None = None) -> bool:
    """Whether the quarantine holds any row of `batch_id`."""
    with service_transaction(url) as conn:
        return bool(one_row(conn.execute(query("import_quarantine_has_batch"), {"batch_id": batch_id}))[0])
