"""Writing the no-op stamp that :mod:`recraft_build.engine.fastpath` reads.

A full ``build`` or ``status`` hands its session to a :class:`NoopStamp` at the end
(:meth:`NoopStamp.capture`, while the session is open), then the command line renders
the answers and :meth:`NoopStamp.commit` writes them with the stamp. The stamp is
written only when the full path itself concluded "every target is up to date":

* after a build that did nothing, its own plan says so;
* after a build that generated or restored, the targets are planned again (the lock,
  the keys and every output file as they are now) and the stamp is written only if
  that plan finds every target up to date;
* the lock must be exactly what this process last read or wrote (nobody else wrote
  it meanwhile), and every output file must have the size and mtime the stat cache
  recorded with the digest the lock pins.

The memos are rendered from that plan (``status``) and from the result a no-op build
would return (``build``), by the command line's own renderers, so the fast path
replays exactly what the full path prints.

**Timestamps.** A stamp matches files by their times, which tick coarsely (a few ms on
Linux, whole seconds on some file systems). An input the command read (the spec, a
style's reference picture) is recorded only if it had not changed for a margin before
the command started: otherwise an edit made while the command ran could keep its
times. Files this command wrote (the lock, outputs, the manifest) are recorded once
the clock is past their last change by the margin, waiting for it if needed (a few
ms; the stamp is skipped when it would take long, as on a file system whose times
tick in seconds), and checked again after the wait.

Failing to write a stamp never fails a command: the next one takes the full path.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from recraft_build.engine.fastpath import (
    FORMAT,
    STAMP_FOLDER,
    Request,
    memo_path,
    salted,
    stamp_path,
    tool_fingerprint,
)
from recraft_build.engine.outputs import MANIFEST_NAME
from recraft_build.engine.results import AssetResult, BuildResult
from recraft_build.settings import Settings

if TYPE_CHECKING:
    from recraft_build.engine.plan import Plan
    from recraft_build.engine.session import Session

__all__ = ["NoopStamp", "key_input_files"]

#: How long a file's last change must lie behind us before its times are trusted, on
#: file systems with fine timestamps (Linux's coarse clock ticks every 1-10 ms).
MARGIN_NS = 50_000_000
#: The same where times are whole milliseconds or coarser (FAT keeps 2 s).
COARSE_MARGIN_NS = 2_100_000_000
#: The longest the writer waits for that margin before giving up on the stamp.
MAX_WAIT_NS = 120_000_000


def key_input_files(session: "Session") -> list[Path]:
    """Every file whose bytes enter a key of ``session``'s plan, besides the lock: the
    spec and the reference pictures of the custom styles its assets use.

    The one list of the files a build reads: a new kind of input (a vars file, say) must
    be added here, or the no-op fast path would not see it change. Input pictures
    (``image: {file: ...}``) are here.
    """
    spec = session.spec
    files = [spec.path]
    for name in sorted(session.styles()):
        files.extend(spec.path.parent / ref for ref in spec.styles[name].references)
    # Pictures the assets take as input (``image: {file: ...}``, ``mask: {file: ...}``).
    files.extend(spec.path.parent / path for path in sorted(session.sources()))
    return files


def _environment_names() -> tuple[list[str], list[str], list[str]]:
    """The variables a no-op's answer depends on: (set or not, exact value, salted).

    ``set``: the tokens ``--provider auto`` chooses by; ``values``: the cache folder's
    and the remote cache mode's; ``salted``: the remote cache's address (it may hold a
    password, so the stamp keeps a salted digest of it).
    """
    from recraft_build.cache.local import CACHE_ENV
    from recraft_build.settings import RECRAFT_TOKEN_ENV, REMOTE_CACHE_ENV, REMOTE_MODE_ENV, REPLICATE_TOKEN_ENV

    return (
        [RECRAFT_TOKEN_ENV, REPLICATE_TOKEN_ENV],
        [CACHE_ENV, "XDG_CACHE_HOME", "HOME", REMOTE_MODE_ENV],
        [REMOTE_CACHE_ENV],
    )


def _input_stat(path: Path) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _coarse(ns: int) -> bool:
    return ns % 1_000_000 == 0


class NoopStamp:
    """The stamp of one ``build`` or ``status`` command (see the module docstring).

    ``environ`` is the environment the command ran with; ``clock`` (``time.time_ns``,
    the clock file times follow) and ``sleep`` are injectable for tests. ``error``
    holds what went wrong when capturing or committing failed (it never raises).
    """

    def __init__(
        self,
        request: Request,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.request = request
        self.environ = Settings(env=environ).environ
        self._clock = clock
        self._sleep = sleep
        self.started_ns = clock()
        self.cwd = os.getcwd()
        self.error: BaseException | None = None
        #: The plan that certified every target up to date (None until then).
        self.plan: Plan | None = None
        #: What a no-op ``build`` of that plan returns.
        self.noop_result: BuildResult | None = None
        self._captured: dict[str, Any] | None = None
        self._lock: Any = None

    @classmethod
    def for_command(cls, command: str, args: Any, environ: Mapping[str, str] | None = None) -> "NoopStamp | None":
        """The stamp of a parsed ``build``/``status`` command line (argparse's namespace);
        None for ``build --force`` (never a no-op)."""
        if getattr(args, "force", False):
            return None
        request = Request(
            command,
            spec=args.spec,
            output_dir=getattr(args, "output_dir", None),
            provider=getattr(args, "provider", None) or "auto",
            cache_dir=getattr(args, "cache_dir", None),
            targets=tuple(getattr(args, "targets", None) or ()),
            shard=getattr(args, "shard", None),
            as_json=bool(getattr(args, "json", False)),
            remote_cache=getattr(args, "remote_cache", None),
            remote_mode=getattr(args, "remote_cache_mode", None),
        )
        return cls(request, environ)

    @property
    def certified(self) -> bool:
        """Whether :meth:`capture` found every target up to date (a stamp may be written)."""
        return self._captured is not None

    def invalidate(self) -> None:
        """Remove the spec's stamp (a full build is about to change things)."""
        try:
            os.unlink(stamp_path(self.request.spec_file))
        except OSError:
            pass

    # -- capture (inside the session) ----------------------------------------------------
    def capture(self, session: "Session", plan: "Plan", result: BuildResult | None = None) -> None:
        """Record what ``session`` read and wrote, if every target ended up up to date.

        ``plan`` is the command's plan; ``result`` the build's result (None for
        ``status``). Never raises.
        """
        try:
            self._capture(session, plan, result)
        except Exception as exc:  # an optimisation must never fail the command
            self.error = exc
            self._captured = None

    def _capture(self, session: "Session", plan: "Plan", result: BuildResult | None) -> None:
        if result is not None and (result.failed or result.interrupted):
            return
        did_work = result is not None and any(a.status != "up-to-date" for a in result.assets)
        if did_work or any(a.status != "up-to-date" for a in plan.assets):
            # Certify what is on disk now, not what the build believes it did.
            plan = session.plan(list(self.request.targets) or None, shard=self.request.shard)
            if any(a.status != "up-to-date" for a in plan.assets):
                return
        if not session.lock.unchanged_on_disk():
            return
        outputs: list[Any] = []
        for ap in plan.assets:
            for op in ap.outputs:
                for f in op.locked_files:
                    known = session.state.recorded(f.path)
                    if known is None or known[2] != f.sha256:
                        return
                    outputs.append((f.path, known[0], known[1]))
        if (session.out / MANIFEST_NAME).exists() or outputs:
            manifest = os.lstat(session.out / MANIFEST_NAME)
            outputs.append((MANIFEST_NAME, manifest.st_size, manifest.st_mtime_ns))
        self._lock = session.lock
        self._captured = {
            "spec_dir": str(session.spec.path.parent),
            "inputs": [str(p) for p in key_input_files(session)],
            "lock": str(session.lock.path),
            "root": str(session.out),
            "outputs": outputs,
        }
        self.plan = plan
        self.noop_result = BuildResult(
            assets=[
                AssetResult(a.name, "up-to-date", outputs=[f for o in a.outputs for f in o.locked_files])
                for a in plan.assets
            ],
            output_dir=session.out,
        )

    # -- commit (after the answers are rendered) ------------------------------------------
    def commit(self, memos: Mapping[str, tuple[str, str]]) -> bool:
        """Write the stamp and the memos ``{kind: (stdout, stderr)}``; True if written.

        A stamp that already describes the same state keeps its token, so memos of
        other kinds written earlier stay valid. Never raises.
        """
        if self._captured is None:
            return False
        try:
            return self._commit(memos)
        except Exception as exc:
            self.error = exc
            return False

    def _snapshot(self) -> dict[str, Any] | None:
        """What the stamp records, read from disk now; None when an input changed too
        recently to be trusted or a written file is no longer what was captured."""
        cap = self._captured
        assert cap is not None
        inputs = [_input_stat(Path(p)) for p in cap["inputs"]]
        coarse = any(_coarse(i[4]) and _coarse(i[5]) for i in inputs)
        margin = COARSE_MARGIN_NS if coarse else MARGIN_NS
        if any(i[5] >= self.started_ns - margin for i in inputs):
            return None  # changed while (or just before) the command read it
        if not self._lock.unchanged_on_disk():
            return None
        absent: list[str] = []
        newest = 0
        lock_path = Path(cap["lock"])
        if lock_path.exists():
            lock = _input_stat(lock_path)
            inputs.append(lock)
            newest = lock[5]
        else:
            absent.append(os.path.abspath(lock_path))
        root = cap["root"]
        root_st = os.stat(root)
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != (root_st.st_dev, root_st.st_ino):
                return None
            by_folder: dict[str, list[Any]] = {}
            for rel, size, mtime in cap["outputs"]:
                st = os.stat(rel, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (size, mtime):
                    return None
                newest = max(newest, st.st_ctime_ns)
                coarse = coarse or (_coarse(st.st_mtime_ns) and _coarse(st.st_ctime_ns))
                folder, _, name = rel.rpartition("/")
                by_folder.setdefault(folder, []).extend((name, size, mtime))
        finally:
            os.close(fd)
        # The reader opens each folder once (see fastpath._outputs_match).
        flat: list[Any] = []
        for folder in sorted(by_folder):
            flat.extend((folder, by_folder[folder]))
        return {
            "inputs": inputs,
            "absent": absent,
            "root": [os.path.abspath(root), os.path.realpath(root), root_st.st_dev, root_st.st_ino],
            "outputs": flat,
            "newest": newest,
            "margin": COARSE_MARGIN_NS if coarse else margin,
        }

    def _commit(self, memos: Mapping[str, tuple[str, str]]) -> bool:
        import json

        snap = self._snapshot()
        if snap is None:
            return False
        wait = snap["newest"] + snap["margin"] - self._clock()
        if wait > 0:
            if wait > MAX_WAIT_NS:
                return False
            self._sleep(wait / 1e9)
            again = self._snapshot()
            if again is None or {k: v for k, v in again.items() if k != "margin"} != {
                k: v for k, v in snap.items() if k != "margin"
            }:
                return False
        spec_file = self.request.spec_file
        existing = _existing_token(stamp_path(spec_file))
        token = existing or secrets.token_hex(16)
        body = self._body(token, snap, json)
        if existing is not None and _read_body(stamp_path(spec_file)) != body:
            token = secrets.token_hex(16)
            body = self._body(token, snap, json)
            existing = None
        self._write(token, body, memos, json, keep_stamp=existing is not None)
        return True

    def _body(self, token: str, snap: Mapping[str, Any], json: Any) -> bytes:
        set_names, value_names, salted_names = _environment_names()
        header = {
            "request": self.request.identity(token, self.cwd),
            "env": {
                "set": {n: bool((self.environ.get(n) or "").strip()) for n in set_names},
                "values": {n: self.environ.get(n) for n in value_names},
                "salted": {n: salted(token, self.environ.get(n)) for n in salted_names},
            },
            "inputs": snap["inputs"],
            "absent": snap["absent"],
            "tool": tool_fingerprint(),
            "root": snap["root"],
        }
        return (
            json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
            + b"\n"
            + json.dumps(snap["outputs"], separators=(",", ":")).encode("utf-8")
        )

    def _write(self, token: str, body: bytes, memos: Mapping[str, tuple[str, str]], json: Any, *, keep_stamp: bool) -> None:
        from recraft_build.engine.safefs import Folder

        spec_dir = self._captured["spec_dir"] if self._captured else "."
        spec_file = self.request.spec_file
        with Folder.open_root(spec_dir) as top:
            with top.walk(STAMP_FOLDER[:1], create=True) as local:
                try:
                    local.lstat(".gitignore")
                except FileNotFoundError:
                    local.write_atomic(".gitignore", b"# recraft-build's local files: never committed\n*\n")
            with top.walk(STAMP_FOLDER, create=True) as folder:
                for kind, (out_text, err_text) in memos.items():
                    data = (
                        token.encode("ascii") + b"\n" + json.dumps(err_text).encode("utf-8") + b"\n"
                        + out_text.encode("utf-8")
                    )
                    folder.write_atomic(os.path.basename(memo_path(spec_file, kind)), data)
                if not keep_stamp:
                    folder.write_atomic(
                        os.path.basename(stamp_path(spec_file)), f"{FORMAT} {token}\n".encode("ascii") + body
                    )


def _existing_token(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            first = f.readline().decode("ascii").strip()
    except (OSError, UnicodeError):
        return None
    fmt, _, token = first.partition(" ")
    return token if fmt == FORMAT and token else None


def _read_body(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            f.readline()
            return f.read()
    except OSError:
        return None

