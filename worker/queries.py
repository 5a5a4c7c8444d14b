"""Named SQL queries, loaded once from `worker/queries/*.sql` (SQL lives in .sql files)."""

from __future__ import annotations

from pathlib import Path

QUERIES_DIR = Path(__file__).resolve().parent / "queries"
_QUERIES: dict[str, str] = {path.stem: path.read_text(encoding="utf-8") for path in QUERIES_DIR.glob("*.sql")}


def query(name: str) -> str:
    """The text of `queries/<name>.sql`; a missing name is a programming error."""
    try:
        return _QUERIES[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_DIR.name}/") from None
