"""The README's layout table is the map a newcomer reads: it must name every package, and only real paths."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _layout_paths() -> list[str]:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_every_path_in_the_layout_table_exists() -> None:
    paths = _layout_paths()
    assert paths, "the README has no layout table"
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_every_capability_package_is_in_the_layout_table() -> None:
    listed = set(_layout_paths())
    packages = {
        f"{path.parent.relative_to(ROOT).as_posix()}/"
        for top in ("worker", "events_schema")
        for path in (ROOT / top).glob("*/__init__.py")
    }
    # events_schema's subpackages are named in its own row; worker's each have a row.
    missing = {p for p in packages if p.startswith("worker/") and p not in listed}
    assert missing == set()
    row = next(line for line in README.splitlines() if line.startswith("| `events_schema/` |"))
    assert [p for p in packages if p.startswith("events_schema/") and f"`{p.split('/')[1]}/`" not in row] == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert {page for page in pages if f"(docs/{page})" not in README} == set()
