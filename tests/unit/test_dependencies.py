"""Every third-party package the code imports is declared in pyproject.toml.

A package that arrives only as another's dependency (kombu through celery, numpy through
matplotlib) can disappear with that package's next release; declaring it keeps the install whole.
Import names are mapped to distributions the way the installed environment does
(importlib.metadata.packages_distributions: `jwt` is PyJWT, `yaml` is PyYAML).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"events_schema", "worker", "bench", "tests", "celeryconfig"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req).group(0)) for req in requirements}  # type: ignore[union-attr]


MAIN = _names(PYPROJECT["dependencies"])
EXTRAS = {extra: _names(reqs) for extra, reqs in PYPROJECT["optional-dependencies"].items()}

# Which declarations each part of the tree may rely on: the installed packages need the main
# dependencies alone; the embedded servers' code its extra; the tests (and the benches, which
# reuse test helpers) the test extra too.
ALLOWED = {
    "worker/dev_servers/": MAIN | EXTRAS["embedded"],
    "worker/": MAIN,
    "events_schema/": MAIN,
    "celeryconfig.py": MAIN,
    "bench/": MAIN | EXTRAS["test"] | EXTRAS["embedded"],
    "tests/": MAIN | EXTRAS["test"] | EXTRAS["embedded"],
}


def _sources() -> list[Path]:
    files = [ROOT / "celeryconfig.py"]
    for top in ("worker", "events_schema", "bench", "tests"):
        files += sorted((ROOT / top).rglob("*.py"))
    return files


def _imported_tops(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def _third_party(path: Path) -> set[str]:
    """Top-level import names that are neither the standard library, ours, nor a sibling script."""
    return {
        top
        for top in _imported_tops(path)
        if top not in sys.stdlib_module_names
        and top not in FIRST_PARTY
        # bench's scripts import their neighbours by file name (`from scratch import ...`).
        and not (path.parent / f"{top}.py").exists()
        and not (path.parent / top / "__init__.py").exists()
    }


def _allowed(path: Path) -> set[str]:
    relative = path.relative_to(ROOT).as_posix()
    return next(allowed for prefix, allowed in ALLOWED.items() if relative.startswith(prefix))


DISTRIBUTIONS = importlib.metadata.packages_distributions()


def _missing(path: Path, allowed: set[str]) -> list[str]:
    """`name (distributions)` for each import of `path` that no name in `allowed` covers."""
    missing = []
    for top in sorted(_third_party(path)):
        dists = {_normalized(d) for d in DISTRIBUTIONS.get(top, [])}
        if not dists & allowed:
            missing.append(f"{top} ({', '.join(sorted(dists)) or 'not installed'})")
    return missing


def test_every_imported_package_is_declared() -> None:
    found = {path.relative_to(ROOT).as_posix(): _missing(path, _allowed(path)) for path in _sources()}
    assert {path: names for path, names in found.items() if names} == {}


def test_an_undeclared_import_is_found(tmp_path: Path) -> None:
    """The other side: an import its part of the tree may not rely on is reported, by distribution."""
    module = tmp_path / "module.py"
    module.write_text("import yaml\nimport kombu.exceptions\nfrom psycopg import sql\nimport json\n")
    assert _missing(module, {"psycopg", "kombu"}) == ["yaml (pyyaml)"]
    assert _missing(module, {"psycopg"}) == ["kombu (kombu)", "yaml (pyyaml)"]
    assert _missing(module, {"psycopg", "kombu", "pyyaml"}) == []
