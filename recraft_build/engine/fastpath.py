"""The no-op fast path: ``build`` and ``status`` answered from a stamp, at the speed of stat.

A make-style tool runs on every save, in pre-commit hooks and in every CI job, so the
answer "everything is up to date" must cost little more than starting Python. The full
path loads and validates the spec, renders its templates, parses the lock, computes
every key and stats every output; this module answers the same question by comparing
what a stamp recorded with what is on disk now, and it imports nothing but ``os``,
``sys`` and ``json`` (no Pillow, numpy, httpx, jinja2, YAML or JSON Schema).

**The stamp.** At the end of a full ``build`` (or ``status``) that found, or left, every
target up to date, :mod:`recraft_build.engine.stamp` writes
``.recraft-build/noop/<spec file name>.stamp`` beside the spec. It holds what the
answer depended on:

* the command's options that change the answer (the working folder, ``-f``, ``-o``,
  ``--provider``, ``--cache-dir``, the targets, ``--shard``, and the remote cache's
  mode and, as a salted digest, its address); ``-j``,
  ``--keep-going``, ``--frozen`` and ``--max-credits`` do not change a no-op's answer
  and are only checked for being well formed;
* the environment that enters keys or decides a folder: whether each token variable
  that ``--provider auto`` reads is set (never its value), the cache folder's
  variables, the remote cache's mode, and a salted digest of the remote cache's
  address (which may hold a password);
* the tool: the interpreter, every file of the installed package (size, mtime), and the
  site-packages folders' mtimes (a dependency upgraded changes them);
* every file whose bytes enter a key: the spec, the lock, the custom styles' reference
  pictures (and, as the spec grows, any file it reads), each by device, inode, size,
  mtime and ctime; files that must still be absent;
* the output folder (its real path, device and inode) and every output file it must
  hold, with ``manifest.json``, by size and mtime (as the stat cache trusts them).

Beside it, **memos** hold the exact text the full path printed for that answer, one per
command and form (``build``, ``build-json``, ``status``, ``status-json``), bound to the
stamp by a random token. The fast path checks everything above, then replays the memo.
Anything missing, different, unreadable or unexpected means "not sure", and the full
path runs (which writes a new stamp when it ends with everything up to date).

**Why a pull request cannot forge a stamp.** The stamp lives in the project folder, so
a pull request can commit one. But every input is matched by inode and ctime, which
the machine that checks the files out assigns (git records neither, and no user call
can set a ctime), and the output folder by its inode: a stamp made anywhere else, or
before the checkout, never matches, and a stamp that does not match only costs the
full path. The stamp is also ignored unless the current user owns it.

**Racy timestamps.** File times tick coarsely (a few milliseconds on Linux, up to 2 s
elsewhere), so a change made in the same tick as the recorded one could keep every
number. The writer therefore records only inputs that had not changed for a margin
before the command started, and waits until the files it wrote are older than that
margin before it records them (see :mod:`recraft_build.engine.stamp`).
"""

from __future__ import annotations

import os
import re
import stat
import sys

# typing is not imported at run time: milliseconds the fast path does not need.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Mapping, Sequence

__all__ = [
    "DEFAULT_SPEC",
    "FORMAT",
    "Request",
    "answer",
    "memo_path",
    "parse_request",
    "salted",
    "stamp_path",
    "tool_fingerprint",
]

#: The spec a command reads without ``-f`` (the one definition; the session imports it).
DEFAULT_SPEC = "assets.yaml"
#: First word of a stamp; a stamp of another format is ignored.
FORMAT = "recraft-build/noop/1"
#: Where stamps and memos live, below the spec's folder.
STAMP_FOLDER = (".recraft-build", "noop")

# The options of `build` and `status` the recogniser knows; anything else (another
# option, an abbreviation, `-j8`, `--`) sends the command down the full path, which
# argparse parses. Values: which field they set.
_VALUE_OPTIONS = {
    "-f": "spec", "--file": "spec",
    "-o": "output_dir", "--output-dir": "output_dir",
    "--provider": "provider",
    "--cache-dir": "cache_dir",
    "-j": "jobs", "--jobs": "jobs",
    "--max-credits": "max_credits",
    "--remote-cache": "remote_cache",
    "--remote-cache-mode": "remote_mode",
    "--shard": "shard",
}
_FLAG_OPTIONS = {"--json": "as_json", "--keep-going": "keep_going", "--frozen": "frozen"}
_STATUS_FIELDS = frozenset({"spec", "output_dir", "provider", "cache_dir", "as_json"})
_JOBS = re.compile(r"[1-9][0-9]{0,5}")
_CREDITS = re.compile(r"[0-9]{1,12}(\.[0-9]{0,6})?")
_REMOTE_MODES = ("read", "read-write")


class Request:
    """A ``build`` or ``status`` command line the fast path understands."""

    __slots__ = (
        "command", "spec", "output_dir", "provider", "cache_dir", "targets", "shard",
        "as_json", "remote_cache", "remote_mode",
    )

    def __init__(
        self,
        command: str,
        *,
        spec: str | None = None,
        output_dir: str | None = None,
        provider: str = "auto",
        cache_dir: str | None = None,
        targets: Sequence[str] = (),
        shard: str | None = None,
        as_json: bool = False,
        remote_cache: str | None = None,
        remote_mode: str | None = None,
    ):
        self.command = command
        self.spec = spec
        self.output_dir = output_dir
        self.provider = provider
        self.cache_dir = cache_dir
        self.targets = tuple(targets)
        self.shard = shard
        self.as_json = as_json
        self.remote_cache = remote_cache
        self.remote_mode = remote_mode

    @property
    def spec_file(self) -> str:
        return self.spec or DEFAULT_SPEC

    @property
    def memo_kind(self) -> str:
        """Which memo answers this command: ``build``, ``build-json``, ``status``, ``status-json``."""
        return self.command + ("-json" if self.as_json else "")

    def identity(self, token: str, cwd: str) -> dict[str, Any]:
        """What of the command line decides the answer (the stamp's ``request``).

        ``build`` and ``status`` share it (a stamp answers both); the remote cache's
        address is kept only as a digest salted with the stamp's ``token``.
        """
        return {
            "cwd": cwd,
            "spec": self.spec,
            "output_dir": self.output_dir,
            "provider": self.provider,
            "cache_dir": self.cache_dir,
            "targets": list(self.targets),
            "shard": self.shard,
            "remote_cache": salted(token, self.remote_cache),
            "remote_mode": self.remote_mode,
        }


def parse_request(argv: Sequence[str]) -> Request | None:
    """The command line ``argv`` (without the program name) as a :class:`Request`, or
    None when it is not a plain ``build``/``status`` the fast path may answer.

    Deliberately narrow: every option must be spelled out in full, with its value in
    the next word or after ``=``; a value that starts with ``-`` is refused; ``-j`` and
    ``--max-credits`` must be plain positive numbers; ``--force`` is never answered
    here. What is refused is parsed by argparse on the full path, which decides.
    """
    if not argv or argv[0] not in ("build", "status"):
        return None
    command = argv[0]
    fields: dict[str, Any] = {}
    targets: list[str] = []
    words = list(argv[1:])
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            # argparse takes the targets as one run of words (`build a -j 2 b` is an error).
            if command != "build" or (targets and words[i - 2].startswith("-")):
                return None
            targets.append(word)
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in _FLAG_OPTIONS and not eq:
            field = _FLAG_OPTIONS[name]
            if field in fields:
                return None
            fields[field] = True
            continue
        field = _VALUE_OPTIONS.get(name)
        if field is None:
            return None  # --force, --help, an abbreviation, -j8, --, a typo...
        if not eq:
            if i >= len(words):
                return None
            value = words[i]
            i += 1
        if field in fields or not value or value.startswith("-"):
            return None
        fields[field] = value
    if command == "status" and (targets or set(fields) - _STATUS_FIELDS):
        return None
    if "jobs" in fields and not _JOBS.fullmatch(fields["jobs"]):
        return None
    if "max_credits" in fields and not _CREDITS.fullmatch(fields["max_credits"]):
        return None
    if "remote_mode" in fields and fields["remote_mode"] not in _REMOTE_MODES:
        return None
    return Request(
        command,
        spec=fields.get("spec"),
        output_dir=fields.get("output_dir"),
        provider=fields.get("provider", "auto"),
        cache_dir=fields.get("cache_dir"),
        targets=targets,
        shard=fields.get("shard"),
        as_json=bool(fields.get("as_json")),
        remote_cache=fields.get("remote_cache"),
        remote_mode=fields.get("remote_mode"),
    )


# -- where ----------------------------------------------------------------------------
def stamp_folder(spec_file: str) -> str:
    """The folder of a spec's stamp and memos: ``.recraft-build/noop`` beside the spec."""
    return os.path.join(os.path.dirname(spec_file) or ".", *STAMP_FOLDER)


def stamp_path(spec_file: str) -> str:
    return os.path.join(stamp_folder(spec_file), os.path.basename(spec_file) + ".stamp")


def memo_path(spec_file: str, kind: str) -> str:
    return os.path.join(stamp_folder(spec_file), f"{os.path.basename(spec_file)}.{kind}.memo")


# -- what the answer depends on --------------------------------------------------------
def salted(token: str, value: str | None) -> str | None:
    """A digest of ``value`` salted with ``token`` (None stays None): lets the stamp tell
    whether a value that may hold a secret changed, without holding it."""
    if value is None:
        return None
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12+: no OpenSSL to load
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]  # CPython <= 3.11
        except ImportError:  # pragma: no cover - other interpreters
            from hashlib import sha256  # type: ignore[assignment]
    return sha256(f"{token}\0{value}".encode("utf-8", "surrogatepass")).hexdigest()


def tool_fingerprint() -> list[Any]:
    """The interpreter, every file of the installed package (path, size, mtime) and
    the site-packages folders' mtimes: any upgrade, reinstall or edit of the tool or
    its dependencies changes it."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files: list[Any] = []
    folders = [package]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                files.append([entry.path[len(package) + 1:], st.st_size, st.st_mtime_ns])
    files.sort()
    sites = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            try:
                sites.append([entry, os.stat(entry).st_mtime_ns])
            except OSError:
                pass
    return [sys.version, sys.prefix, files, sites]


def _env_matches(recorded: Mapping[str, Any], token: str, environ: Mapping[str, str]) -> bool:
    """Whether the environment still reads as the stamp recorded (see the stamp writer)."""
    for name, was_set in recorded.get("set", {}).items():
        # Blank counts as unset, as settings.env_value reads every variable.
        if bool((environ.get(name) or "").strip()) != was_set:
            return False
    for name, value in recorded.get("values", {}).items():
        if environ.get(name) != value:
            return False
    for name, digest in recorded.get("salted", {}).items():
        if salted(token, environ.get(name)) != digest:
            return False
    return True


def _inputs_match(inputs: Sequence[Sequence[Any]], absent: Sequence[str]) -> bool:
    for path, dev, ino, size, mtime, ctime in inputs:
        st = os.stat(path)
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (dev, ino, size, mtime, ctime):
            return False
    return not any(os.path.lexists(path) for path in absent)


def _outputs_match(root: Sequence[Any], outputs: Sequence[Any]) -> bool:
    """The output folder is the one recorded and holds every file with its size and mtime.

    ``outputs`` is ``[folder, [name, size, mtime_ns, name, ...], folder, [...], ...]``
    (folders relative to the root, ``""`` for the root itself): each folder is opened
    once and its files are stat'ed by name, without following a symlink.
    """
    path, real, dev, ino = root
    if os.path.realpath(path) != real:
        return False
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino):
            return False
        if not (os.stat in os.supports_dir_fd and os.open in os.supports_dir_fd):  # pragma: no cover - Windows
            return _outputs_match_by_path(path, outputs)
        stat_at = os.stat
        is_reg = stat.S_ISREG
        folders = iter(outputs)
        for folder, files in zip(folders, folders):
            sub = os.open(folder, flags | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd) if folder else fd
            try:
                it = iter(files)
                for name, size, mtime in zip(it, it, it):
                    st = stat_at(name, dir_fd=sub, follow_symlinks=False)
                    if st.st_size != size or st.st_mtime_ns != mtime or not is_reg(st.st_mode):
                        return False
            finally:
                if sub != fd:
                    os.close(sub)
    finally:
        os.close(fd)
    return True


def _outputs_match_by_path(root: str, outputs: Sequence[Any]) -> bool:  # pragma: no cover - Windows
    folders = iter(outputs)
    for folder, files in zip(folders, folders):
        it = iter(files)
        for name, size, mtime in zip(it, it, it):
            st = os.lstat(os.path.join(root, folder, name))
            if st.st_size != size or st.st_mtime_ns != mtime or not stat.S_ISREG(st.st_mode):
                return False
    return True


# -- the answer -------------------------------------------------------------------------
def answer(
    argv: Sequence[str],
    stdout: IO[str],
    stderr: IO[str],
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Answer ``argv`` from the stamp when nothing changed: write the memo (exactly
    what the full path printed) and return the exit code 0. None when the command is
    not one the fast path answers or anything is not as recorded: then the caller runs
    the full path. Never raises for what it finds on disk."""
    request = parse_request(argv)
    if request is None:
        return None
    environ = os.environ if environ is None else environ
    try:
        memo = _check(request, environ)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeError):
        return None  # unreadable, malformed or changed: the full path decides
    if memo is None:
        return None
    out_text, err_text = memo
    if err_text:
        stderr.write(err_text)
    if out_text:
        stdout.write(out_text)
    return 0


def _read_owned(path: str) -> bytes:
    """The bytes of ``path`` if it is a regular file of the current user (else OSError)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            raise OSError("not a stamp of this user")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _check(request: Request, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The memo ``(stdout, stderr)`` when the stamp still holds, else None."""
    import json

    spec_file = request.spec_file
    raw = _read_owned(stamp_path(spec_file))
    first, _, rest = raw.partition(b"\n")
    header_line, _, outputs_line = rest.partition(b"\n")
    fmt, _, token = first.decode("ascii").partition(" ")
    if fmt != FORMAT or not token:
        return None
    header = json.loads(header_line)
    if header["request"] != request.identity(token, os.getcwd()):
        return None
    if not _env_matches(header["env"], token, environ):
        return None
    if not _inputs_match(header["inputs"], header["absent"]):
        return None
    if header["tool"] != tool_fingerprint():
        return None
    memo = _read_owned(memo_path(spec_file, request.memo_kind))
    memo_token, _, memo_rest = memo.partition(b"\n")
    if memo_token.decode("ascii") != token:
        return None
    err_line, _, out_bytes = memo_rest.partition(b"\n")
    if not _outputs_match(header["root"], json.loads(outputs_line)):
        return None
    return out_bytes.decode("utf-8"), json.loads(err_line)
