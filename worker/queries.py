"""The worker's named SQL, loaded once from `worker/queries/*.sql`."""

from __future__ import annotations

from pathlib import Path

from events_schema.queries import QueryFolder

query = QueryFolder(Path(__file__).resolve().parent / "queries")
