"""Helpers the command-line tests share: run ``recraft-build`` in-process, and set up
an offline project (the placeholder provider, a private cache)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from recraft_build.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """``recraft-build ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def offline_project(tmp_path: Path, monkeypatch: Any, spec: str) -> Path:
    """``tmp_path`` as the working folder of a project with ``spec`` as assets.yaml, no
    provider token (the placeholder draws) and a private cache folder."""
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets.yaml").write_text(spec)
    return tmp_path
