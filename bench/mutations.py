"""Mutation check, run by hand (not in CI): does some test fail when a promise breaks?

Each mutation in bench/mutations.toml replaces one exact snippet of product code (a comparison, a
policy clause, a grant, a trigger, a validation rule, an exit code) in a fresh copy of the tree,
then runs the tests named for it against that copy (each run makes its own databases, as the suite
does). A mutation is caught when those tests fail; the table at the end lists every mutation and
which test caught it, and the exit status is 1 when any was not caught.

    .venv/bin/python bench/mutations.py                 # all of them (about 10-20 minutes here)
    .venv/bin/python bench/mutations.py --only quiet_start_inclusive --only import_exit_code
    .venv/bin/python bench/mutations.py --list          # check every snippet still occurs once
    .venv/bin/python bench/mutations.py --markdown      # the table as docs/mutations.md has it

Every snippet must occur exactly once in its file: a refactor that moves or rewrites a line
makes this script stop with the mutation's name before anything runs, so the list gets updated
rather than silently testing nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).with_name("mutations.toml")
# pytest's -ra summary lines; a parametrised id may hold spaces: "FAILED t.py::test[a b] - ..."
FAILED = re.compile(r"^(FAILED|ERROR) ([^\s\[]+(?:\[[^\]]*\])?)", re.MULTILINE)


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    original: str
    replacement: str
    promise: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    caught: bool
    by: str  # the first failing test, or why nothing did
    seconds: float


class MutationError(RuntimeError):
    """The list does not match the code: one line for the user."""


def load(path: Path = DATA) -> list[Mutation]:
    entries = tomllib.loads(path.read_text())["mutation"]
    mutations = [
        Mutation(e["name"], e["file"], e["original"], e["replacement"], e["promise"], tuple(e["tests"]))
        for e in entries
    ]
    names = [m.name for m in mutations]
    if len(set(names)) != len(names):
        raise MutationError(f"duplicate mutation names in {path.name}")
    for m in mutations:
        check(m)
    return mutations


def check(m: Mutation) -> None:
    """The snippet occurs exactly once, and the mutation changes something."""
    target = ROOT / m.file
    if not target.is_file():
        raise MutationError(f"{m.name}: {m.file} does not exist")
    count = target.read_text().count(m.original)
    if count != 1:
        raise MutationError(
            f"{m.name}: the original snippet occurs {count} times in {m.file}, not once; update the list"
        )
    if m.original == m.replacement:
        raise MutationError(f"{m.name}: the replacement is the original")
    for test in m.tests:
        if not (ROOT / test.split("::")[0]).exists():
            raise MutationError(f"{m.name}: no test file {test.split('::')[0]}")


def copy_tree(dest: Path) -> None:
    """The project's files as they are now (tracked and new, not ignored), without .venv/.git."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess[str]:
    """pytest in the copy, with the copy first on the path (also for the worker processes it starts)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def attempt(m: Mutation | None, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    """Apply `m` (None: nothing) to a fresh copy and run `tests`: (pytest's exit status, first failure)."""
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        tree = Path(scratch)
        copy_tree(tree)
        if m is not None:
            target = tree / m.file
            target.write_text(target.read_text().replace(m.original, m.replacement, 1))
        try:
            result = run_tests(tree, tests, timeout)
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout:.0f} s"
        failed = FAILED.search(result.stdout)
        tail = (result.stdout.strip().splitlines() or [result.stderr.strip()])[-1]
        if failed and failed.group(1) == "ERROR":
            return result.returncode, f"error at setup: {failed.group(2)}"
        return result.returncode, failed.group(2) if failed else tail


def evaluate(m: Mutation, timeout: float) -> Outcome:
    started = time.monotonic()
    status, detail = attempt(m, m.tests, timeout)
    if status == 1 and detail.startswith("error at setup"):
        # Only errors, no failed assertion: maybe a neighbour's run raced ours (roles are
        # cluster-wide). Once more, so a flake is not counted as a catch.
        status, detail = attempt(m, m.tests, timeout)
    # 1: tests failed (caught). 0: all passed (survived). Anything else: pytest could not run them.
    caught = status == 1
    by = detail if status in (0, 1) else f"error (pytest exit {status}): {detail}"
    return Outcome(m, caught, by if caught or status != 0 else "-", time.monotonic() - started)


def table(outcomes: list[Outcome], markdown: bool) -> str:
    rows = [(o.mutation.name, o.mutation.promise, "yes" if o.caught else "**NO**", o.by) for o in outcomes]
    if markdown:
        lines = ["| mutation | promise it breaks | caught | caught by |", "| --- | --- | --- | --- |"]
        lines += [f"| `{n}` | {p} | {c} | `{b}` |" for n, p, c, b in rows]
        return "\n".join(lines)
    width = max(len(n) for n, *_ in rows)
    return "\n".join(f"{n:{width}}  {'caught' if c == 'yes' else 'MISSED'}  {b}" for n, _, c, b in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="check the list against the code and print it")
    parser.add_argument("--markdown", action="store_true", help="print the result table as Markdown")
    parser.add_argument("--skip-baseline", action="store_true", help="do not first run the tests on the unchanged copy")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutation's test run")
    args = parser.parse_args(argv)
    try:
        mutations = load()
    except MutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {m.name for m in mutations}
        if unknown:
            print(f"error: no mutation named {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name}: {m.file}: {m.promise}")
        print(f"{len(mutations)} mutations; every snippet occurs once")
        return 0
    if not args.skip_baseline:
        tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
        status, detail = attempt(None, tests, args.timeout * 2)
        if status != 0:
            print(f"error: the tests fail without any mutation ({detail}); fix that first", file=sys.stderr)
            return 2
    outcomes = []
    for number, m in enumerate(mutations, 1):
        outcome = evaluate(m, args.timeout)
        outcomes.append(outcome)
        print(
            f"[{number}/{len(mutations)}] {m.name}: {'caught by ' + outcome.by if outcome.caught else 'NOT CAUGHT ' + outcome.by}"
            f" ({outcome.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    print(table(outcomes, args.markdown))
    missed = [o.mutation.name for o in outcomes if not o.caught]
    print(
        f"\n{len(outcomes) - len(missed)} of {len(outcomes)} mutations caught"
        + (f"; not caught: {', '.join(missed)}" if missed else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
