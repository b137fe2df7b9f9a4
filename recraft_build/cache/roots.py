"""GC roots: the lock files whose pins ``cache gc`` keeps (as Nix's gcroots).

One cache folder is shared by every project on a machine, so ``cache gc`` run in one
project must not delete what another project's lock pins. Every build registers its
lock as a **root** of the cache it used; ``cache gc`` then keeps everything any live
root pins, and forgets (prunes) a root whose lock file is gone (the project was
deleted or moved: its next build registers it again).

Layout: ``<cache folder>/roots/<sha256 of the lock's path>.json``, each the canonical
JSON of ``{"format": ROOT_FORMAT, "lock": "/absolute/path/assets.lock", "host": NAME}``.
The path is absolute with symbolic links resolved, so one project reached by two
paths is one root; ``host`` is the machine that registered it (shown when a root is
pruned: a cache folder shared by several machines sees another machine's paths as
gone). Registering twice is one file; a file is written to a temp name and renamed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from recraft_build.cache.base import GcResult
from recraft_build.cache.codec import canonical_json, read_json
from recraft_build.errors import StoreError

__all__ = ["GcReport", "ROOTS_DIR", "ROOT_FORMAT", "Root", "RootRegistry"]

#: The folder, inside the cache folder, that holds the roots.
ROOTS_DIR = "roots"

#: The ``format`` tag of a root file (bumped if it changes).
ROOT_FORMAT = "recraft-build/root/1"


@dataclass(frozen=True)
class Root:
    """One registered lock: its absolute ``lock`` path, the ``host`` that registered it,
    and the root's own ``file`` in the cache folder."""

    lock: Path
    host: str
    file: Path


@dataclass(frozen=True)
class GcReport:
    """What ``cache gc`` did (or, with ``dry_run``, would do).

    ``entries`` (``blobs`` + ``records``) and ``bytes`` were removed (``orphan_files``,
    debris of killed writes, are in ``bytes`` too); ``kept_*`` stayed. ``roots`` are the
    lock files whose pins were kept (registered roots and locks named for this run);
    ``pruned_roots`` the registered locks that were gone, whose roots were forgotten.
    """

    dry_run: bool
    entries: int
    blobs: int
    records: int
    bytes: int
    kept_blobs: int
    kept_records: int
    orphan_files: int
    roots: list[str] = field(default_factory=list)
    pruned_roots: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, result: GcResult, *, roots: list[str], pruned_roots: list[str]) -> "GcReport":
        return cls(
            dry_run=result.dry_run,
            entries=result.blobs + result.records,
            blobs=result.blobs,
            records=result.records,
            bytes=result.bytes,
            kept_blobs=result.kept_blobs,
            kept_records=result.kept_records,
            orphan_files=result.orphan_files,
            roots=sorted(roots),
            pruned_roots=sorted(pruned_roots),
        )


class RootRegistry:
    """The roots of the cache folder ``directory``. ``host`` defaults to this machine's name.

    Errors are :class:`~recraft_build.errors.StoreError` naming the file and what to do.
    Safe across processes: every write is a whole file renamed into place.
    """

    def __init__(self, directory: Path, *, host: str | None = None):
        self.folder = Path(directory) / ROOTS_DIR
        self._host = host if host is not None else socket.gethostname()

    def register(self, lock_path: str | os.PathLike[str]) -> Root:
        """Record ``lock_path`` as a root (idempotent: nothing is written when it is)."""
        lock = Path(lock_path).resolve()
        name = hashlib.sha256(str(lock).encode("utf-8")).hexdigest()
        file = self.folder / f"{name}.json"
        try:
            existing = self._read(file)
        except StoreError:
            existing = None  # a damaged root file for this very lock: rewrite it
        if existing is not None and existing.lock == lock:
            return existing
        body = canonical_json({"format": ROOT_FORMAT, "lock": str(lock), "host": self._host})
        tmp = self.folder / f".tmp-{name}-{secrets.token_hex(4)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(body)
            os.replace(tmp, file)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise StoreError(
                f"cannot record {lock} as a gc root in {self.folder}: "
                f"{exc.strerror or exc} (check the cache folder's permissions)"
            ) from exc
        return Root(lock, self._host, file)

    def list(self) -> list[Root]:
        """Every registered root, sorted by lock path.

        A root file that cannot be read is a StoreError: ``gc`` must not guess what an
        unreadable root pins.
        """
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list the gc roots in {self.folder}: {exc.strerror or exc}") from exc
        roots = []
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue  # temp files of a registration in flight
            root = self._read(self.folder / name)
            if root is not None:
                roots.append(root)
        return sorted(roots, key=lambda r: str(r.lock))

    def remove(self, root: Root) -> None:
        """Forget ``root`` (already gone is fine)."""
        try:
            root.file.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot remove the gc root {root.file}: {exc.strerror or exc}") from exc

    def _read(self, file: Path) -> Root | None:
        """The root in ``file``; None when there is no such file; StoreError when damaged."""
        try:
            data = read_json(file.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise self._damaged(file, str(getattr(exc, "strerror", None) or exc)) from exc
        if (
            not isinstance(data, dict)
            or data.get("format") != ROOT_FORMAT
            or not isinstance(data.get("lock"), str)
            or not os.path.isabs(data["lock"])
            or not isinstance(data.get("host"), str)
        ):
            raise self._damaged(file, f"not a {ROOT_FORMAT} file")
        return Root(Path(data["lock"]), data["host"], file)

    @staticmethod
    def _damaged(file: Path, why: str) -> StoreError:
        return StoreError(
            f"the gc root {file} cannot be read ({why}); cache gc cannot tell what it "
            "keeps: delete that file and build the project it belonged to again (or name "
            "its lock: recraft-build cache gc path/to/assets.lock)"
        )
