"""The README's layout table is the map a newcomer reads: it must name every package, and only real paths."""

from __future__ import annotations

import ast
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


# ---------------------------------------------------------------------------------------------
# Private names stay in their package: `_name` is free to change without telling anyone else.

FIRST_PARTY = ("worker", "events_schema", "bench", "tests", "celeryconfig")


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _module_package(module: str) -> str:
    """The package a module belongs to: itself for a package's __init__, else its parent."""
    return module if (ROOT.joinpath(*module.split(".")) / "__init__.py").exists() else module.rpartition(".")[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str, package: str) -> list[str]:
    """`module._name` for each private name of another package that a module of `package`
    imports or reaches: `from m import _n`, `alias._n` on an imported module, `setattr(alias, "_n", ...)`."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> first-party module it is bound to
    found: list[str] = []

    def first_party(module: str) -> str | None:
        if module.split(".")[0] in FIRST_PARTY:
            return module
        sibling = f"{package}.{module}" if package else module  # bench's scripts: `from scratch import ...`
        return sibling if _is_module(sibling) else None

    def note(module: str, name: str) -> None:
        if _private(name) and _module_package(module) != package:
            found.append(f"{module}.{name}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (module := first_party(alias.name)) is not None:
                    modules[alias.asname or alias.name.split(".")[0]] = (
                        module if alias.asname else alias.name.split(".")[0]
                    )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if (module := first_party(node.module)) is None:
                continue
            for alias in node.names:
                note(module, alias.name)
                if _is_module(f"{module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{module}.{alias.name}"

    def resolve(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return modules.get(node.id)
        if isinstance(node, ast.Attribute) and (base := resolve(node.value)) is not None:
            return f"{base}.{node.attr}" if _is_module(f"{base}.{node.attr}") else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (module := resolve(node.value)) is not None:
            note(module, node.attr)
        elif (
            isinstance(node, ast.Call)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None))
            in ("setattr", "getattr", "delattr")
            and len(node.args) >= 2
            and (module := resolve(node.args[0])) is not None
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            note(module, node.args[1].value)
    return found


def _sources() -> list[Path]:
    return [ROOT / "celeryconfig.py"] + [p for top in FIRST_PARTY[:4] for p in sorted((ROOT / top).rglob("*.py"))]


def test_no_module_uses_another_packages_private_names() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): private_uses(path.read_text(encoding="utf-8"), _package_of(path))
        for path in _sources()
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_a_private_name_from_another_package_is_found() -> None:
    """Both sides: another package's `_name` (imported, reached through a module, or patched) is
    reported; the package's own private names, and public ones, are not."""
    source = (
        "import worker.scan.leases\n"
        "from worker.clock import utc_now, _hidden\n"
        "from worker.dev_servers import runtime as rt\n"
        "from worker.scan.scanner import _own\n"
        "from scratch import _bench_helper\n"
        "rt._private_thing()\n"
        "rt.public_thing()\n"
        "worker.scan.leases._lease\n"
        "setattr(rt, '_patched', None)\n"
    )
    assert sorted(private_uses(source, "worker.scan")) == [
        "worker.clock._hidden",
        "worker.dev_servers.runtime._patched",
        "worker.dev_servers.runtime._private_thing",
    ]
    assert sorted(private_uses(source, "bench")) == [
        "worker.clock._hidden",
        "worker.dev_servers.runtime._patched",
        "worker.dev_servers.runtime._private_thing",
        "worker.scan.leases._lease",
        "worker.scan.scanner._own",
    ]


# ---------------------------------------------------------------------------------------------
# Every wait in a test has a timeout: on a loaded machine a test fails, it does not hang.

# Calls that block until something else happens: with neither an argument nor `timeout=` they
# can wait forever (`str.join` and `dict.get` always take an argument, so they are not caught).
BLOCKING = {"join", "wait", "communicate", "get", "result", "acquire"}
SUBPROCESS = {"run", "call", "check_call", "check_output"}


def waits_without_timeout(source: str) -> list[str]:
    """`line: call` for each blocking call in `source` that has no timeout."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        keywords = {keyword.arg for keyword in node.keywords}
        if "timeout" in keywords:
            continue
        name = node.func.attr
        on_subprocess = isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"
        if (name in BLOCKING and not node.args and not keywords) or (on_subprocess and name in SUBPROCESS):
            found.append(f"{node.lineno}: {ast.unparse(node.func)}()")
    return found


def test_every_wait_in_the_tests_has_a_timeout() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): waits
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if (waits := waits_without_timeout(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_a_wait_without_a_timeout_is_found() -> None:
    source = (
        "thread.join()\n"
        "thread.join(5)\n"
        "', '.join(names)\n"
        "process.wait(timeout=10)\n"
        "event.wait()\n"
        "process.communicate()\n"
        "subprocess.run(['ls'], check=True)\n"
        "subprocess.run(['ls'], timeout=30)\n"
        "queue.get()\n"
        "queue.get(timeout=1)\n"
    )
    assert waits_without_timeout(source) == [
        "1: thread.join()",
        "5: event.wait()",
        "6: process.communicate()",
        "7: subprocess.run()",
        "9: queue.get()",
    ]


# ---------------------------------------------------------------------------------------------
# No timed assertion: `assert clock() - started < N` fails on a loaded machine; a figure about
# speed belongs in bench/. (A deadline that ends a wait, `assert clock() < deadline`, is a timeout.)

CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns", "time_ns"}


def _is_clock(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) in CLOCKS
    )


def timed_asserts(source: str) -> list[int]:
    """Lines of asserts that compare an elapsed clock reading (`clock() - x`) with a bound."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert)
        and any(
            isinstance(part, ast.BinOp) and isinstance(part.op, ast.Sub) and _is_clock(part.left)
            for compare in ast.walk(node.test)
            if isinstance(compare, ast.Compare)
            for part in (compare.left, *compare.comparators)
        )
    ]


def test_no_test_asserts_on_elapsed_time() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): lines
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if (lines := timed_asserts(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_an_elapsed_time_assert_is_found() -> None:
    source = (
        "assert time.monotonic() - started < 5\n"
        "assert time.monotonic() < deadline, 'the wait timed out'\n"
        "assert 0 < perf_counter() - t0 <= window\n"
        "assert value <= since_insert\n"
    )
    assert timed_asserts(source) == [1, 3]
