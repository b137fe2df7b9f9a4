"""A small built project for the picking, gallery and review tests.

A spec with assets of ``n: 3`` candidates, built offline with the placeholder provider
into a temp folder that is a git repository whose first commit holds the lock (so the
gallery and the lock diff have a base). Each test gets its own folder and cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recraft_build import api

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield]}
    prompt: "flat game icon of a {{ item }}"
    n: 3
    outputs:
      - path: "icons/{{ item }}.png"
        steps: [{resize: {width: 48}}]
  - name: coin
    prompt: "a stack of gold coins"
    n: 2
    output: coin.webp
"""

HAS_GIT = shutil.which("git") is not None


@dataclass
class Project:
    root: Path
    cache: Path

    @property
    def spec(self) -> Path:
        return self.root / "assets.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "assets.lock"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def gallery(self) -> Path:
        """The gallery's default folder: beside the spec, outside the output folder."""
        return self.root / ".recraft-build" / "gallery"

    def lock_data(self) -> dict[str, Any]:
        return json.loads(self.lock.read_text())

    def generation(self, name: str) -> dict[str, Any]:
        return self.lock_data()["assets"][name]["generation"]

    def build(self, *targets: str, env: dict[str, str] | None = None):
        return api.build(self.spec, list(targets) or None, cache_dir=self.cache, env=env or {}, jobs=2)

    def git(self, *args: str) -> str:
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", LC_ALL="C")
        proc = subprocess.run(["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True)
        return proc.stdout

    def commit(self, message: str = "lock") -> None:
        self.git("add", "assets.yaml", "assets.lock")
        self.git("commit", "-q", "-m", message)

    def kw(self) -> dict[str, Any]:
        """Keyword arguments for picking/gallery/review functions."""
        return {"cache_dir": self.cache, "env": {}}


def make_project(tmp_path: Path, *, spec: str = SPEC, git: bool = True, build: bool = True) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "assets.yaml").write_text(spec)
    project = Project(root, tmp_path / "cache")
    if build:
        result = project.build()
        assert not result.failed, [a.error for a in result.failed]
    if git and HAS_GIT:
        project.git("init", "-q")
        project.commit("first build")
    return project
