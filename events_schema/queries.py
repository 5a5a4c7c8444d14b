"""Named SQL statements, each folder's `*.sql` files read once (SQL lives in .sql files)."""

from __future__ import annotations

from pathlib import Path


class QueryFolder:
    """The `.sql` files of one folder by name (file stem); a missing name is a programming error."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._queries = {path.stem: path.read_text(encoding="utf-8") for path in folder.glob("*.sql")}

    @classmethod
    def beside(cls, module_file: str) -> QueryFolder:
        """The `sql/` folder next to a capability's module: each package keeps its own SQL."""
        return cls(Path(module_file).resolve().parent / "sql")

    def __call__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self.folder.parent.name}/{self.folder.name}/") from None
