"""What changed in the lock between two revisions, as Markdown for a pull request.

``recraft-build diff [--base REV] [--head REV]`` compares the lock at ``base`` (read
with ``git show REV:path``) with the lock at ``head`` (the working-tree file when
``head`` is None) and reports, per asset:

* **added** / **removed**: the asset is in one lock only;
* **regenerated**: its generation key changed (new prompt or parameters, or a re-roll),
  so its candidates are new pictures;
* **re-picked**: same candidates, another pick;
* **outputs changed**: some output file's sha256 changed, appeared or went away
  (a changed step, format or option), with the paths.

The cost is the sum of the generation credits the head lock records for new
generations (added and regenerated assets). It is what those pictures cost when they
were made; a picture restored from a shared cache cost this pull request nothing.

The git helpers (:func:`read_lock_at`) are shared with the gallery, which uses them to
show each asset's previous picture. Git runs as a subprocess with ``LC_ALL=C`` and no
prompts; nothing here writes to the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from recraft_build.errors import LockError, UsageError
from recraft_build.engine.lock import LOCK_VERSION, Lock

__all__ = [
    "AssetChange",
    "LockDiff",
    "compare",
    "compute",
    "diff",
    "lock_path_for",
    "read_lock_at",
    "render_markdown",
]

#: Runs a git command line and returns the completed process (tests may swap it).
GitRunner = Callable[[Sequence[str], Path], "subprocess.CompletedProcess[bytes]"]

#: How many output paths a row lists before "and N more".
_MAX_PATHS = 4


def lock_path_for(spec_path: str | os.PathLike[str] | None) -> Path:
    """``assets.yaml`` -> ``assets.lock`` beside it (without loading the spec, so the
    diff works even when the spec at head does not load)."""
    return Path(spec_path or "assets.yaml").with_suffix(".lock")


def _run_git(args: Sequence[str], cwd: Path) -> "subprocess.CompletedProcess[bytes]":
    env = dict(os.environ)
    # Messages we may show must not depend on the user's language; git must never ask.
    env.update({"LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0"})
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
    )


def _git_message(proc: "subprocess.CompletedProcess[bytes]") -> str:
    text = proc.stderr.decode("utf-8", "replace").strip()
    return text.splitlines()[-1] if text else f"git exited with status {proc.returncode}"


def read_lock_at(
    lock_path: str | os.PathLike[str], rev: str, *, git: GitRunner | None = None
) -> dict[str, Any] | None:
    """The lock's asset entries as committed at git revision ``rev``.

    Returns None when the lock file did not exist at ``rev`` (every asset is then
    new). Raises UsageError, saying why, when git is not installed, the lock's folder
    is not inside a git work tree, or ``rev`` names no commit; LockError when the
    committed file is not a lock.
    """
    run = git or _run_git
    path = Path(lock_path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"folder {folder} of the lock {path.name} does not exist")
    if rev.startswith("-"):
        raise UsageError(f"revision {rev!r} must not start with '-'")
    try:
        proc = run(["rev-parse", "--is-inside-work-tree"], folder)
    except FileNotFoundError as exc:
        raise UsageError("git is not installed (or not on PATH); cannot read the lock at a revision") from exc
    if proc.returncode != 0 or proc.stdout.strip() != b"true":
        raise UsageError(f"{folder.resolve()} is not inside a git work tree ({_git_message(proc)})")
    proc = run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], folder)
    if proc.returncode != 0:
        raise UsageError(f"git revision {rev!r} does not exist in the repository of {folder.resolve()}")
    commit = proc.stdout.decode().strip()
    # "REV:./name" is relative to the current folder, so the spec may live anywhere in the repo.
    obj = f"{commit}:./{path.name}"
    proc = run(["cat-file", "-e", obj], folder)
    if proc.returncode != 0:
        return None
    proc = run(["show", obj], folder)
    if proc.returncode != 0:
        raise UsageError(f"git show {rev}:{path.name} failed: {_git_message(proc)}")
    return _parse_lock(proc.stdout, f"{path.name} at {rev}")


def _parse_lock(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockError(f"{where}: the lock is not valid JSON (was it committed with conflict markers?)") from exc
    if not isinstance(doc, dict) or doc.get("version") != LOCK_VERSION or not isinstance(doc.get("assets", {}), dict):
        raise LockError(f"{where}: not a recraft-build lock of version {LOCK_VERSION}")
    return dict(doc.get("assets") or {})


# -- comparing ----------------------------------------------------------------------------
@dataclass
class AssetChange:
    """How one asset differs between the two locks.

    ``kinds`` holds some of ``added``, ``removed``, ``regenerated``, ``re-picked``,
    ``outputs``; ``credits`` is the head's generation cost for added/regenerated assets.
    """

    name: str
    kinds: list[str]
    old_pick: int | None = None
    new_pick: int | None = None
    candidates: int = 0
    credits: float = 0.0
    outputs_changed: list[str] = field(default_factory=list)
    outputs_added: list[str] = field(default_factory=list)
    outputs_removed: list[str] = field(default_factory=list)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "changes": self.kinds,
            "old_pick": self.old_pick,
            "new_pick": self.new_pick,
            "candidates": self.candidates,
            "credits": self.credits,
            "outputs_changed": self.outputs_changed,
            "outputs_added": self.outputs_added,
            "outputs_removed": self.outputs_removed,
            "reason": self.reason,
        }


@dataclass
class LockDiff:
    """Every changed asset (sorted by name) plus the labels of the two sides."""

    base_label: str
    head_label: str
    lock_name: str
    changes: list[AssetChange]
    unchanged: int = 0

    @property
    def credits(self) -> float:
        return sum(c.credits for c in self.changes)

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if kind in c.kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_label,
            "head": self.head_label,
            "lock": self.lock_name,
            "assets": [c.to_json() for c in self.changes],
            "summary": {
                "added": self.count("added"),
                "removed": self.count("removed"),
                "regenerated": self.count("regenerated"),
                "re-picked": self.count("re-picked"),
                "hand_edited": self.count("hand-edited"),
                "outputs_changed": self.count("outputs"),
                "unchanged": self.unchanged,
                "credits": self.credits,
            },
        }


def _files(entry: Mapping[str, Any]) -> dict[str, str]:
    """Output file path -> sha256 of an asset entry."""
    out: dict[str, str] = {}
    for o in _list(entry.get("outputs")):
        for f in _list(o.get("files") if isinstance(o, Mapping) else None):
            if isinstance(f, Mapping) and "path" in f:
                out[str(f["path"])] = str(f.get("sha256"))
    return out


def _digests(gen: Mapping[str, Any]) -> list[str]:
    return [str(c.get("sha256")) for c in _list(gen.get("candidates")) if isinstance(c, Mapping)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    """A pick or roll from a lock as an int (a hand-edited lock may hold anything)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _gen(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    gen = entry.get("generation")
    return gen if isinstance(gen, Mapping) else {}


def _request_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Why a generation key changed, in words (fields changed, or a re-roll)."""
    fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if fields:
        return "changed: " + ", ".join(fields)
    return ""


def compare(
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any],
    *,
    base_label: str = "base",
    head_label: str = "head",
    lock_name: str = "assets.lock",
) -> LockDiff:
    """Compare two locks' asset entries (``base`` None: no lock at base, all added)."""
    base = base or {}
    changes: list[AssetChange] = []
    unchanged = 0
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if not isinstance(new, Mapping):
            g = _gen(old or {})
            changes.append(
                AssetChange(
                    name, ["removed"], old_pick=_int(g.get("pick")), outputs_removed=sorted(_files(old or {}))
                )
            )
            continue
        g_new = _gen(new)
        cands = len(_list(g_new.get("candidates")))
        if not isinstance(old, Mapping):
            changes.append(
                AssetChange(
                    name,
                    ["added"],
                    new_pick=_int(g_new.get("pick")),
                    candidates=cands,
                    credits=_num(g_new.get("credits")),
                    outputs_added=sorted(_files(new)),
                )
            )
            continue
        g_old = _gen(old)
        ch = AssetChange(
            name, [], old_pick=_int(g_old.get("pick")), new_pick=_int(g_new.get("pick")), candidates=cands
        )
        if g_old.get("key") != g_new.get("key"):
            ch.kinds.append("regenerated")
            ch.credits = _num(g_new.get("credits"))
            reason = _request_change(g_old.get("request") or {}, g_new.get("request") or {})
            if not reason and _int(g_old.get("roll")) != _int(g_new.get("roll")):
                reason = f"re-rolled (roll {_int(g_old.get('roll'))} -> {_int(g_new.get('roll'))})"
            if not reason and g_old.get("family") != g_new.get("family"):
                reason = f"made by {g_old.get('family')}, now {g_new.get('family')}"
            ch.reason = reason
        elif _digests(g_old) != _digests(g_new):
            # Same request, same key, other pictures: no build does that (a key always
            # names the same candidates), so the lock was edited by hand.
            ch.kinds.append("hand-edited")
            ch.reason = "candidates replaced by hand: same generation key, other pictures"
        elif ch.old_pick != ch.new_pick:
            ch.kinds.append("re-picked")
        f_old, f_new = _files(old), _files(new)
        ch.outputs_changed = sorted(p for p in f_old.keys() & f_new.keys() if f_old[p] != f_new[p])
        ch.outputs_added = sorted(f_new.keys() - f_old.keys())
        ch.outputs_removed = sorted(f_old.keys() - f_new.keys())
        if ch.outputs_changed or ch.outputs_added or ch.outputs_removed:
            ch.kinds.append("outputs")
        if ch.kinds:
            changes.append(ch)
        else:
            unchanged += 1
    return LockDiff(base_label, head_label, lock_name, changes, unchanged)


# -- Markdown -----------------------------------------------------------------------------
def _code(text: Any) -> str:
    """``text`` as an inline code span, inert in Markdown and HTML: asset names, paths
    and revisions come from pull requests, so one cannot open a link, mention someone,
    inject HTML or break the table (a ``|`` is escaped, which GFM honours in code spans
    inside tables)."""
    s = " ".join(str(text).splitlines()).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if (s.startswith("`") or s.endswith("`") or not s.strip()) else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _paths(paths: Sequence[str]) -> str:
    shown = ", ".join(_code(p) for p in paths[:_MAX_PATHS])
    more = len(paths) - _MAX_PATHS
    return shown + (f" and {more} more" if more > 0 else "")


def _credits(value: float) -> str:
    return f"{value:g}"


def _row(ch: AssetChange) -> tuple[str, str, str]:
    labels = {
        "added": "added",
        "removed": "removed",
        "regenerated": "regenerated",
        "re-picked": "re-picked",
        "hand-edited": "**edited by hand**",
        "outputs": "outputs changed",
    }
    what = ", ".join(labels[k] for k in ch.kinds)
    details: list[str] = []
    if "added" in ch.kinds:
        details.append(f"{ch.candidates} candidate(s), pick #{ch.new_pick}")
    if "regenerated" in ch.kinds:
        reason = f" ({_code(ch.reason)})" if ch.reason else ""
        details.append(f"new candidates{reason}, pick #{ch.new_pick}")
    if "re-picked" in ch.kinds:
        details.append(f"pick #{ch.old_pick} → #{ch.new_pick} of {ch.candidates}")
    if "hand-edited" in ch.kinds:
        details.append("the candidates were replaced in the lock by hand (same generation key, other pictures)")
    if ch.outputs_changed and "added" not in ch.kinds:
        details.append("changed: " + _paths(ch.outputs_changed))
    if ch.outputs_added and "added" not in ch.kinds:
        details.append("new: " + _paths(ch.outputs_added))
    elif ch.outputs_added:
        details.append("writes " + _paths(ch.outputs_added))
    if ch.outputs_removed:
        details.append(("removes " if "removed" in ch.kinds else "gone: ") + _paths(ch.outputs_removed))
    cost = _credits(ch.credits) if ch.credits else "-"
    return what, "; ".join(details) or "-", cost


def render_markdown(d: LockDiff) -> str:
    """The diff as Markdown: a heading, a one-line summary and a table of changed assets."""
    title = f"### recraft-build: changes to {_code(d.lock_name)} ({_code(d.base_label)} → {_code(d.head_label)})"
    if not d.changes:
        return f"{title}\n\nNo asset changed ({d.unchanged} unchanged).\n"
    parts = []
    for kind, label in (
        ("added", "added"),
        ("removed", "removed"),
        ("regenerated", "regenerated"),
        ("re-picked", "re-picked"),
        ("hand-edited", "edited by hand"),
        ("outputs", "with outputs changed"),
    ):
        n = d.count(kind)
        if n:
            parts.append(f"{n} {label}")
    credits = d.credits
    cost = (
        f"new generations cost **{_credits(credits)} credits** (about ${credits / 1000:.2f})"
        if credits
        else "no new paid generation"
    )
    lines = [
        title,
        "",
        f"{len(d.changes)} asset(s) changed: {', '.join(parts)}; {d.unchanged} unchanged; {cost}.",
        "",
        "| Asset | Change | Details | Credits |",
        "|---|---|---|---:|",
    ]
    for ch in d.changes:
        what, details, cost_cell = _row(ch)
        lines.append(f"| {_code(ch.name)} | {what} | {details} | {cost_cell} |")
    return "\n".join(lines) + "\n"


def diff(
    spec_path: str | os.PathLike[str] | None = None,
    base: str = "HEAD",
    head: str | None = None,
    *,
    git: GitRunner | None = None,
) -> str:
    """``recraft-build diff``: Markdown of what changed in the lock from ``base`` to ``head``.

    ``head`` None compares with the lock file in the working tree. Raises UsageError
    when git or a revision is missing, LockError when a lock cannot be read.
    """
    return render_markdown(compute(spec_path, base, head, git=git))


def compute(
    spec_path: str | os.PathLike[str] | None = None,
    base: str = "HEAD",
    head: str | None = None,
    *,
    git: GitRunner | None = None,
) -> LockDiff:
    """The structured diff behind :func:`diff` (``diff --json`` prints it)."""
    path = lock_path_for(spec_path)
    base_assets = read_lock_at(path, base, git=git)
    if head is None:
        head_assets = dict(Lock.load(path).raw_assets())
        head_label = "working tree"
    else:
        head_assets = read_lock_at(path, head, git=git) or {}
        head_label = head
    return compare(base_assets, head_assets, base_label=base, head_label=head_label, lock_name=path.name)
