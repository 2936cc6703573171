"""A second streamscribe to compare against: another revision's code, run beside ours.

`prepare(revision)` gives a `Checkout`: a directory holding that revision's tree. A path to
a directory with a `pyproject.toml` is used in place; anything else is resolved by git in
this repository (`git rev-parse REV^{commit}`) and exported once with `git archive` into
`.cache/baselines/<sha>/` (a finished export is marked by `.complete`, so an interrupted
one is redone). Nothing is installed: the baseline runs with this interpreter and its
packages, with `PYTHONPATH` pointing at the checkout, so `dependency_notes` compares the
checkout's declared runtime dependencies with what is installed here and says what differs.

Both servers are started the same way (`server_command`): the `streamscribe` entry point
that each tree's own `pyproject.toml` declares, so a revision that moved its CLI module
still starts.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from streaming.eval.corpus import REPO

ENTRY_POINT = "streamscribe"


@dataclass(frozen=True)
class Checkout:
    """A tree of streamscribe code: `revision` as asked, `sha` when it came from git."""

    revision: str
    path: Path
    sha: str | None = None

    @property
    def label(self) -> str:
        return f"{self.revision} ({self.sha[:10]})" if self.sha else str(self.path)

    def describe(self) -> dict[str, object]:
        return {"revision": self.revision, "sha": self.sha, "path": str(self.path),
                "dependency_notes": dependency_notes(self.path)}


def cache_root() -> Path:
    return REPO / ".cache" / "baselines"


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def prepare(revision: str, root: Path | None = None) -> Checkout:
    """The tree of `revision` (a git revision of this repository, or a checkout's path)."""
    as_path = Path(revision).expanduser()
    if as_path.is_dir():
        if not (as_path / "pyproject.toml").is_file():
            raise ValueError(f"{as_path} has no pyproject.toml: not a streamscribe checkout")
        return Checkout(revision, as_path.resolve())
    sha = _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    target = (root or cache_root()) / sha
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", sha],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
            else:  # Python < 3.11.4 has no filters; the archive is this repository's own
                tar.extractall(target)
        (target / ".complete").write_text(sha + "\n")
    return Checkout(revision, target, sha)


def describe_tree(tree: Path) -> dict[str, object]:
    """The commit a working tree is at, and whether it has uncommitted changes (None when
    it is not a git checkout): what "candidate" means in a comparison."""
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    status = subprocess.run(["git", "-C", str(tree), "status", "--porcelain",
                             "--untracked-files=no"], capture_output=True, text=True)
    ok = head.returncode == 0 and status.returncode == 0
    return {"path": str(tree), "sha": head.stdout.strip() if ok else None,
            "uncommitted_changes": bool(status.stdout.strip()) if ok else None}


def _project(tree: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((tree / "pyproject.toml").read_text()).get(
        "project", {})
    return project


def dependency_notes(tree: Path) -> list[str]:
    """What the tree's runtime dependencies ask for and this interpreter lacks (empty: none)."""
    notes = []
    for spec in _project(tree).get("dependencies", []):
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            notes.append(f"unparsable requirement {spec!r}")
            continue
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            notes.append(f"{spec}: not installed")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed,
                                                                        prereleases=True):
            notes.append(f"{spec}: {installed} installed")
    return notes


def server_command(tree: Path) -> list[str]:
    """This interpreter running the tree's `streamscribe` entry point (arguments follow)."""
    target = _project(tree).get("scripts", {}).get(ENTRY_POINT)
    if not target or ":" not in target:
        raise ValueError(f"{tree}/pyproject.toml declares no {ENTRY_POINT!r} script")
    module, function = target.split(":", 1)
    return [sys.executable, "-c",
            f"import sys; from {module} import {function} as main; sys.exit(main())"]
