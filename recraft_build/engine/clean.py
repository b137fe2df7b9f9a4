"""``clean``: remove output files this tool wrote that the spec no longer names.

The list of candidates comes from the output folder's state file, which anyone can
edit (or commit in a pull request), so it is never trusted. A file is removed only
when all of these hold, and is otherwise kept and reported with the reason:

* its path is relative, without ``..``, and not one of recraft-build's own files;
* it is reached from the output folder without following a symlink (each folder is
  opened with ``O_NOFOLLOW``, see :mod:`recraft_build.engine.safefs`);
* it is a regular file;
* its content still has the sha256 this tool wrote there (a file the user changed
  is theirs now).

The files the spec names are those of :func:`~recraft_build.engine.publish.named_files`:
every output file (content-hashed names included) and every file of its atlases.
``manifest.json`` (if there is one) is rewritten afterwards, listing the files the spec
names that the lock records.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recraft_build.domain import Spec
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import MANIFEST_NAME, OutputState, output_parts
from recraft_build.engine.publish import named_files, rewrite_manifest
from recraft_build.engine.safefs import Folder, NotFollowed
from recraft_build.errors import OutputError

__all__ = ["CleanResult", "Kept", "clean_outputs"]


@dataclass(frozen=True)
class Kept:
    """A file recorded as written by this tool that ``clean`` did not remove, and why."""

    path: str
    reason: str


@dataclass
class CleanResult:
    """What ``clean`` did: ``removed`` paths (or would remove, with ``dry_run``) and the
    ``kept`` files it found recorded as written but did not touch, each with its reason."""

    removed: list[str]
    output_dir: Path
    dry_run: bool = False
    kept: list[Kept] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "removed": self.removed,
            "kept": [{"path": k.path, "reason": k.reason} for k in self.kept],
            "dry_run": self.dry_run,
        }


def clean_outputs(spec: Spec, out: Path, lock: Lock, *, dry_run: bool = False) -> CleanResult:
    """``recraft-build clean``: remove files this tool wrote that the spec no longer names.

    Only files recorded in the output folder's state as written by recraft-build are
    candidates, and each is checked as the module docstring says; files anyone else
    put there are never touched. ``dry_run`` reports without changing anything.
    Unless ``dry_run``, the state and ``manifest.json`` are rewritten.
    """
    out = Path(out)
    named, maybe_atlas = named_files(spec, lock, out)
    state = OutputState(out)
    removed: list[str] = []
    kept: list[Kept] = []
    for rel, digest in sorted(state.written().items()):
        if rel in named or maybe_atlas(rel):
            continue
        try:
            parts = output_parts(out, rel)
        except OutputError:
            # Never a path this tool writes: the state file was edited. Drop the entry.
            kept.append(Kept(rel, "not a path inside the output folder; left alone"))
            if not dry_run:
                state.forget(rel)
            continue
        outcome, reason = _remove(out, parts, digest, dry_run=dry_run)
        if outcome == "kept":
            # Stays in the state: a later clean looks again (e.g. once a symlink is gone).
            kept.append(Kept(rel, reason))
            continue
        if outcome == "removed":
            removed.append(rel)
        if not dry_run:
            state.forget(rel)
    if not dry_run:
        state.save()
        if (out / MANIFEST_NAME).exists():  # rewritten, never created: clean makes no new files
            try:
                rewrite_manifest(spec, out=out, lock=lock)
            except OSError as exc:
                raise OutputError(f"cannot rewrite {out / MANIFEST_NAME}: {exc.strerror or exc}") from exc
    return CleanResult(removed, out, dry_run, kept)


def _remove(root: Path, parts: tuple[str, ...], digest: str, *, dry_run: bool) -> tuple[str, str]:
    """Remove ``root/parts`` if it is safe to (see the module docstring).

    Returns ``("removed", "")`` (or removable, with ``dry_run``), ``("gone", "")``
    when the file no longer exists, or ``("kept", reason)``.
    """
    name = parts[-1]
    try:
        with Folder.open_root(root) as top, top.walk(parts[:-1]) as folder:
            try:
                before = folder.lstat(name)
            except FileNotFoundError:
                return "gone", ""
            if stat.S_ISLNK(before.st_mode):
                return "kept", "it is a symlink now, not the file recraft-build wrote; left alone"
            if not stat.S_ISREG(before.st_mode):
                return "kept", "it is not a regular file now; left alone"
            now, st = folder.sha256(name)
            if now != digest:
                return "kept", "it changed since recraft-build wrote it; left alone (delete it yourself if unwanted)"
            if dry_run:
                return "removed", ""
            # The file must still be the one just hashed, not one swapped in meanwhile.
            after = folder.lstat(name)
            if (after.st_ino, after.st_size, after.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return "kept", "it changed while clean was checking it; left alone"
            folder.unlink(name)
        _prune_empty_dirs(root, parts[:-1])
        return "removed", ""
    except NotFollowed as exc:
        if exc.what == "not a folder":
            return "gone", ""  # a folder on its path is a file now: the file cannot be there
        return "kept", f"{exc.rel!r} on its path is {exc.what}; clean does not follow it, left alone"
    except FileNotFoundError:
        return "gone", ""
    except OSError as exc:
        return "kept", f"cannot be removed: {exc.strerror or exc}"


def _prune_empty_dirs(root: Path, folders: tuple[str, ...]) -> None:
    """Remove the folders ``folders`` (innermost first) while they are empty; never ``root``."""
    for depth in range(len(folders), 0, -1):
        try:
            with Folder.open_root(root) as top, top.walk(folders[: depth - 1]) as parent:
                parent.rmdir(folders[depth - 1])
        except OSError:
            return  # not empty (or not ours to remove): stop climbing

