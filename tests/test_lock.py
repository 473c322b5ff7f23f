"""Reproducible installs: `make install` takes every Python package from requirements.lock, each file checked against
its hash (`make lock` refreshes it). The lock pins every dependency pyproject.toml names, at a version its range
allows, with hashes; and the environment running these tests holds exactly the lock's versions."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def _locked() -> dict[str, tuple[str, str | None, list[str]]]:
    """name -> (version, marker, hashes) of every entry of the lock."""
    entries: dict[str, tuple[str, str | None, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8")):
        head = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?\n", block + "\n")
        if head is None:
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries[canonicalize_name(head.group(1))] = (head.group(2), head.group(3), hashes)
    return entries


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["test"]]
    return [Requirement(r) for r in [*names, *project["build-system"]["requires"]]]


def test_the_lock_pins_every_declared_dependency_in_its_range_with_hashes() -> None:
    locked = _locked()
    assert len(locked) > 30
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in the lock: run `make lock`"
        version, _, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), f"the lock has {name}=={version}, pyproject wants {requirement}"
    for name, (version, _, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash"
    assert "editables" in locked and "pip" in locked  # the build backend's editable hook and the installer itself


def test_this_environment_was_installed_from_the_lock() -> None:
    wrong = {}
    for name, (version, marker, _) in _locked().items():
        if marker and not Marker(marker).evaluate():
            continue  # another platform's package (colorama on Windows)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from the lock (locked, installed): {wrong}; run `make install`"
