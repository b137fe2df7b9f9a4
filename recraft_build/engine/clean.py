"""``clean``: remove output files this tool wrote that the spec no longer names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recraft_build.domain import Spec
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import OutputState

__all__ = ["CleanResult", "clean_outputs"]


@dataclass
class CleanResult:
    removed: list[str]
    output_dir: Path
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "removed": self.removed, "dry_run": self.dry_run}


def clean_outputs(spec: Spec, out: Path, lock: Lock, *, dry_run: bool = False) -> CleanResult:
    """``recraft-build clean``: remove files this tool wrote that the spec no longer names.

    Only files recorded in the output folder's state (written by recraft-build) are
    candidates; files anyone else put there are never touched.
    """
    named: set[str] = set()
    for a in spec.assets:
        for o in a.outputs:
            named.add(o.path)
        entry = lock.asset(a.name)
        wanted_paths = {o.path for o in a.outputs}
        for lo in entry.outputs if entry is not None else ():
            if lo.path in wanted_paths:
                named.update(f.path for f in lo.files)
    state = OutputState(out)
    removed = []
    for rel in sorted(state.known_paths()):
        if rel in named:
            continue
        removed.append(rel)
        if not dry_run:
            try:
                (out / rel).unlink()
            except FileNotFoundError:
                pass
            state.forget(rel)
            _prune_empty_dirs(out, (out / rel).parent)
    if not dry_run:
        state.save()
    return CleanResult(removed, out, dry_run)


def _prune_empty_dirs(root: Path, folder: Path) -> None:
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
