"""The Performance tables of README.md and docs/scaling.md are the committed run's JSON rendered
(`python -m bench render docs/bench/scaling.json --readme`), so they cannot drift from it, and the
table keeps its shape: every indented row under its own measure, one unit per row, one precision
per unit."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parents[3]
RUN = json.loads((ROOT / "docs" / "bench" / "scaling.json").read_text())
CELL = {
    "s": re.compile(r"\d[\d,]*\.\d{3}"),
    "ratio": re.compile(r"\d+\.\d{2}x"),
}
WHOLE = re.compile(r"\d{1,3}(,\d{3})*")


def test_the_pages_show_the_committed_run_as_rendered() -> None:
    assert report.generated(ROOT / "README.md") == report.table(RUN, readme=True), (
        "README.md's Performance table differs from docs/bench/scaling.json: "
        "python -m bench render docs/bench/scaling.json --readme"
    )
    assert report.generated(ROOT / "docs" / "scaling.md") == report.table(RUN)


def test_every_indented_row_sits_under_its_own_measure_in_both_tables() -> None:
    for readme in (False, True):
        parent = None
        for row in report.rows(readme):
            if row.depth == 0:
                parent = row
            else:
                assert parent is not None, row.label
                assert not readme or parent.readme, f"README shows {row.label!r} without its measure {parent.label!r}"
    labels = [(row.depth, row.label) for row in report.ROWS if row.depth == 0]
    assert len(labels) == len(set(labels)), "two measures with one name"


def test_one_unit_per_row_and_one_precision_per_unit() -> None:
    for row in report.ROWS:
        assert not re.search(r"\((s|MB|/s|x)\)|rows/s|events/s", row.label), f"unit in the label: {row.label!r}"
        for size in RUN["sizes"]:
            cell = report.value(size, row.spec, row.unit)
            if not row.spec:
                assert cell == ""
                continue
            for part in cell.split(" / "):
                assert CELL.get(row.unit, WHOLE).fullmatch(part), (row.label, row.unit, cell)


def test_a_page_without_its_markers_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("no markers here\n")
    try:
        report.rewrite(page, "x")
    except ValueError as exc:
        assert "markers" in str(exc)
    else:
        raise AssertionError("rewrote a page without markers")
    page.write_text(f"before\n{report.BEGIN}\n```\nold\n```\n{report.END}\nafter\n")
    assert report.rewrite(page, "new") and report.generated(page) == "new"
    assert page.read_text().startswith("before\n") and page.read_text().endswith("after\n")
    assert not report.rewrite(page, "new")
