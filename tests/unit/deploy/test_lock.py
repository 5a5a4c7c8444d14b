"""The image's Python dependencies come from requirements.lock (scripts/lock), exactly pinned,
covering every runtime dependency of pyproject.toml and everything those need."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = locked()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement.name} is a dependency in pyproject.toml but not in requirements.lock (scripts/lock)"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (str(requirement), pins[name])


def test_what_each_locked_package_needs_is_locked_too() -> None:
    """Checked from the installed metadata where .venv has the locked version (else skipped)."""
    pins = locked()
    extras = {canonicalize_name(r.name): set(r.extras) for r in runtime_requirements()}
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        for text in dist.requires or []:
            needed = Requirement(text)
            wanted = extras.get(name, set()) | {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in wanted):
                assert canonicalize_name(needed.name) in pins, f"{name} needs {needed.name}, not in requirements.lock"


def test_the_image_installs_the_lock_then_the_project_without_resolving() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock_at = dockerfile.index("--requirement requirements.lock")
    assert "--no-deps ." in dockerfile[lock_at:], "the project itself must not pull unpinned versions"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", ".local/", ".git/", ".env"} <= set(ignored)
