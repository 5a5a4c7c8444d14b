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
                if part == "-":  # a figure the committed run predates
                    continue
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


def test_compare_shows_every_row_before_and_after_with_the_change(tmp_path: Path) -> None:
    after = json.loads(json.dumps(RUN))
    largest = after["sizes"][-1]
    largest["full_dry_s"] = 2 * largest["full_dry_s"]
    del largest["peak_rss_mb"]
    after["machine"]["load_before"] = [9.0, 9.0, 9.0]
    (tmp_path / "a.json").write_text(json.dumps(RUN))
    (tmp_path / "b.json").write_text(json.dumps(after))
    out = report.compare(tmp_path / "a.json", tmp_path / "b.json")
    blocks = out.split("\n\n")
    assert len(blocks) == len(RUN["sizes"]) + 1  # a table per size, then both machines
    last = {line.split(" | ")[0].strip(): line.split(" | ") for line in blocks[-2].splitlines()}
    for row in report.ROWS:
        assert row.label in last, row.label
    assert last["full scan, deciding only"][-1].strip() == "x2.00"
    assert last["baseline / full scan"][-1].strip() == "x0.50"
    assert [c.strip() for c in last["worker's peak memory during a full scan (max RSS)"][2:]] == [
        f"{RUN['sizes'][-1]['peak_rss_mb']:,.0f}",
        "-",
        "-",
    ]
    assert "after (B) : " in out and ", machine: 2 CPUs" in out and "[9.0, 9.0, 9.0] before" in out
