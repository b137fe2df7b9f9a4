"""The lock file: which pictures were approved, pinned by digest, reviewed in git.

``assets.yaml`` has ``assets.lock`` beside it: JSON, sorted keys, two-space indent, one
entry per asset, so a diff in review shows exactly which assets changed. Shape::

    {
      "version": 1,
      "assets": {
        "<asset name>": {
          "generation": {
            "key": "<generation key>",
            "family": "recraft" | "placeholder",
            "provider": "<profile name that made it>",
            "request": {...the keyed request fields, for review and `status` reasons...},
            "candidates": [{"sha256", "media_type", "width", "height", "meta"}],
            "pick": 0,
            "credits": 80
          },
          "steps": [{"step", "key", "sha256"}],            # the asset's own chain
          "outputs": [{
            "path": "icons/sword.png",
            "key": "<key of the final export>",
            "steps": [{"step", "key", "sha256"}],          # the output's own chain
            "files": [{"path", "sha256", "bytes", "format", "width", "height"}]
          }]
        }
      },
      "styles": {"<style name>": {"key", "style_id", "provider", "credits"}}
    }

The lock never holds a token, a base URL, a time or a machine-specific path.
Writes are atomic (temp file, fsync, rename), so a crash leaves the old or the new
lock, never a torn one.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping


from recraft_build.engine.lockdata import LockedAsset, LockedStyle
from recraft_build.errors import LockError
from recraft_build.jsonshape import ShapeError

__all__ = ["LOCK_VERSION", "Lock", "atomic_write_bytes"]

LOCK_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, then rename.

    ``durable`` also fsyncs the data before the rename (for the lock). Outputs skip it:
    they can always be re-made from the cache, and a file damaged by a power cut has a
    size or mtime the stat cache does not know, so the next build re-hashes and rewrites it.
    The file gets mode 0666 minus the umask (0644 under umask 022), like any other
    tool's files; the temp file is never opened through a symlink.
    """
    from recraft_build.engine.safefs import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path.parent, path.name, data, durable=durable)


class Lock:
    """An in-memory lock file. Thread-safe; :meth:`save` writes only when changed.

    Entries are the typed, frozen values of :mod:`~recraft_build.engine.lockdata`,
    shape-checked when read, so no command meets a malformed entry deep inside.
    """

    def __init__(
        self,
        path: Path,
        assets: Mapping[str, LockedAsset] | None = None,
        styles: Mapping[str, LockedStyle] | None = None,
    ):
        self.path = Path(path)
        self._assets: dict[str, LockedAsset] = dict(assets or {})
        self._styles: dict[str, LockedStyle] = dict(styles or {})
        self._mutex = threading.RLock()
        self._save_mutex = threading.Lock()
        self._saved_text: str | None = None
        # Entries changed in memory since load: only these are written over what is on
        # disk, so a `pick` made while a build runs is not lost (see save()).
        self._touched_assets: set[str] = set(self._assets)
        self._touched_styles: set[str] = set(self._styles)
        # A count of changes in memory, and its value when the file last matched memory
        # (read or written): equal means nothing in memory is unsaved.
        self._version = 0
        self._saved_version = -1 if (self._assets or self._styles) else 0
        # Serialised line ("name": entry) of each asset, so saving after each finished asset
        # costs O(changed entries), not O(all entries) of JSON encoding.
        self._entry_text: dict[str, str] = {}
        # (mtime_ns, size, inode) of the file as we last read or wrote it: when it is
        # unchanged, nobody else wrote it, and it need not be re-read before saving.
        self._disk_stamp: tuple[int, int, int] | None = None

    # -- reading -------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "Lock":
        """Read the lock at ``path``; a missing file is an empty lock.

        Raises LockError (exit 3) for a file that is not a lock, naming it and saying
        what to do (a merge conflict is the usual cause).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise LockError(f"{path}: cannot read the lock file: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = (
                "it has git merge conflict markers: resolve them, or delete the lock and rebuild"
                if "<<<<<<<" in text
                else "restore it from git, or delete it and rebuild (cached pictures are reused)"
            )
            raise LockError(
                f"{path}:{exc.lineno}:{exc.colno}: the lock file is not valid JSON ({hint})"
            ) from exc
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            raise LockError(
                f"{path}: not a recraft-build lock of version {LOCK_VERSION} "
                "(restore it from git, or delete it and rebuild)"
            )
        assets, styles = _typed_entries(path, data)
        lock = cls(path, assets, styles)
        lock._saved_text = text
        lock._touched_assets.clear()
        lock._touched_styles.clear()
        lock._saved_version = lock._version
        lock._disk_stamp = _stamp(path)
        return lock

    def asset(self, name: str) -> LockedAsset | None:
        """The entry of asset ``name`` (None if absent). Entries are frozen: share freely."""
        with self._mutex:
            return self._assets.get(name)

    def asset_names(self) -> list[str]:
        with self._mutex:
            return sorted(self._assets)

    def style(self, name: str) -> LockedStyle | None:
        with self._mutex:
            return self._styles.get(name)

    def style_names(self) -> list[str]:
        with self._mutex:
            return sorted(self._styles)

    def entries(self) -> Mapping[str, LockedAsset]:
        """Every asset entry by name (read-only by convention: the planner's fast path)."""
        return self._assets

    def unchanged_on_disk(self) -> bool:
        """Whether the file is exactly what this object last read or wrote (same mtime,
        size and inode; absent if it was absent) and nothing in memory is unsaved: then
        this object's entries are the file's (the no-op stamp relies on it)."""
        with self._mutex:
            return self._version == self._saved_version and _stamp(self.path) == self._disk_stamp

    def raw_assets(self) -> Mapping[str, Any]:
        """Every asset entry as the JSON object the file holds (for the review page)."""
        with self._mutex:
            return {name: entry.to_json() for name, entry in self._assets.items()}

    # -- writing -------------------------------------------------------------------
    def set_asset(self, name: str, entry: LockedAsset) -> None:
        if not isinstance(entry, LockedAsset):
            raise TypeError(f"lock entries are LockedAsset values, not {type(entry).__name__}")
        with self._mutex:
            if self._assets.get(name) == entry:
                return  # unchanged (a restore): nothing to write, nor to re-encode
            self._assets[name] = entry
            self._touched_assets.add(name)
            self._entry_text.pop(name, None)
            self._version += 1

    def set_style(self, name: str, entry: LockedStyle) -> None:
        if not isinstance(entry, LockedStyle):
            raise TypeError(f"lock styles are LockedStyle values, not {type(entry).__name__}")
        with self._mutex:
            self._styles[name] = entry
            self._touched_styles.add(name)
            self._version += 1

    def retain(self, asset_names: Iterable[str], style_names: Iterable[str] | None = None) -> list[str]:
        """Drop assets (and styles, if given) not named; return the dropped asset names."""
        keep = set(asset_names)
        with self._mutex:
            dropped = [n for n in self._assets if n not in keep]
            for n in dropped:
                del self._assets[n]
                self._touched_assets.add(n)
                self._version += 1
            if style_names is not None:
                keep_styles = set(style_names)
                for n in [s for s in self._styles if s not in keep_styles]:
                    del self._styles[n]
                    self._touched_styles.add(n)
                    self._version += 1
            return sorted(dropped)

    def to_text(self) -> str:
        """The file's text: ``json.dumps(data, sort_keys=True, indent=2)`` plus a newline,
        built from cached per-entry text (byte-identical to dumping it whole)."""
        with self._mutex:
            parts = []
            for name in sorted(self._assets):
                line = self._entry_text.get(name)
                if line is None:
                    # The whole line, name included: with indent, json encodes in Python.
                    text = _dumps(self._assets[name].to_json()).replace("\n", "\n    ")
                    line = self._entry_text[name] = f"    {_dumps(name)}: {text}"
                parts.append(line)
            assets = "{\n" + ",\n".join(parts) + "\n  }" if parts else "{}"
            styles = _dumps({n: st.to_json() for n, st in self._styles.items()}).replace("\n", "\n  ")
            return (
                "{\n"
                f'  "assets": {assets},\n'
                f'  "styles": {styles},\n'
                f'  "version": {LOCK_VERSION}\n'
                "}\n"
            )

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes while the lock file is read, merged and written.

        Taken on the folder that holds the lock file (see
        :func:`recraft_build.engine.folderlock.folder_lock`): nothing extra appears
        beside the spec, the atomic rename never replaces it, and there is no
        predictable path in a shared temp folder where a planted symlink could break it.
        """
        from recraft_build.engine.folderlock import folder_lock

        with folder_lock(self.path, timeout=60.0):
            yield

    def save(self) -> bool:
        """Write the lock atomically if it changed; True if written.

        Another process (a ``pick`` from the review page, a second build) may have
        written the file since we read it: under a file lock, the entries this object
        changed replace theirs and every other entry on disk is kept.
        """
        with self._save_mutex:  # one writer at a time; readers of entries are not blocked
            with self._mutex:
                if not self._touched_assets and not self._touched_styles:
                    return False
            with self._file_lock():
                return self._save_locked()

    def _save_locked(self) -> bool:
        """Merge with the file on disk and write; the caller holds the file lock.

        The in-memory entries are read under ``_mutex`` (briefly); the file is written
        outside it, so workers recording finished assets never wait for the disk.
        """
        with self._mutex:
            text = self._merged_text()
            version = self._version
        if text is None:
            return False
        try:
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise LockError(f"{self.path}: cannot write the lock file: {exc}") from exc
        with self._mutex:
            self._saved_text = text
            self._disk_stamp = _stamp(self.path)
            self._saved_version = version  # later changes (made while writing) stay unsaved
        return True

    def _merged_text(self) -> str | None:
        """The text to write (after merging others' changes), or None if nothing to write."""
        stamp = _stamp(self.path)
        exists = stamp is not None
        if exists and (stamp != self._disk_stamp or self._saved_text is None):
            # Someone else wrote the file since we read or wrote it: keep their entries
            # for everything this object did not change.
            disk = _read_entries(self.path)  # raises LockError for a malformed entry
            if disk is not None:
                d_assets, d_styles, d_text = disk
                if d_text != self._saved_text:
                    self._version += 1  # memory now holds others' entries too
                    for name, entry in d_assets.items():
                        if name not in self._touched_assets:
                            self._assets[name] = entry
                            self._entry_text.pop(name, None)
                    for name in [n for n in self._assets if n not in d_assets and n not in self._touched_assets]:
                        del self._assets[name]
                        self._entry_text.pop(name, None)
                    for name, entry in d_styles.items():
                        if name not in self._touched_styles:
                            self._styles[name] = entry
                self._saved_text = d_text
                self._disk_stamp = stamp  # read under the file lock: that very file
        text = self.to_text()
        if not exists and not self._assets and not self._styles:
            self._saved_version = self._version  # no file, and nothing to pin: in step
            return None  # nothing to pin: do not litter an empty lock beside the spec
        if exists and text == self._saved_text:
            if stamp == self._disk_stamp:
                self._saved_version = self._version  # memory is the file, byte for byte
            return None
        return text

    @classmethod
    def update(cls, path: Path, change: Callable[["Lock"], None]) -> "Lock":
        """Read the lock, apply ``change`` and save it, all under the file lock: the one
        path for small edits (``pick``, ``reroll``), safe while a build runs."""
        holder = cls(path)
        with holder._file_lock():
            lock = cls.load(path)
            change(lock)
            if lock._touched_assets or lock._touched_styles:
                lock._save_locked()
        return lock


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read_entries(path: Path) -> tuple[dict[str, LockedAsset], dict[str, LockedStyle], str] | None:
    """(assets, styles, text) of the lock on disk, or None if there is none (or it is not
    a lock at all: then ours replaces it). A lock whose entries are malformed raises."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    assets, styles = _typed_entries(path, data)
    return assets, styles, text


def _typed_entries(path: Path, data: Mapping[str, Any]) -> tuple[dict[str, LockedAsset], dict[str, LockedStyle]]:
    """The typed entries of a parsed lock; LockError naming the file, entry and field."""
    raw_assets = data.get("assets", {})
    raw_styles = data.get("styles", {})
    if not isinstance(raw_assets, dict) or not isinstance(raw_styles, dict):
        raise LockError(f"{path}: the lock file's 'assets' or 'styles' is not a mapping")
    assets: dict[str, LockedAsset] = {}
    styles: dict[str, LockedStyle] = {}
    kind, name = "asset", ""
    try:
        for name, entry in raw_assets.items():
            assets[name] = LockedAsset.from_json(entry, "")
        kind = "style"
        for name, entry in raw_styles.items():
            styles[name] = LockedStyle.from_json(entry, "")
    except ShapeError as exc:
        raise LockError(
            f"{path}: {kind} {name!r}: {exc} (restore the lock from git, or remove that entry "
            "and rebuild: cached pictures are reused)"
        ) from exc
    return assets, styles
