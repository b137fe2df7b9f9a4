"""Splitting one build over N machines: ``build --shard K/N``.

The targets are split by a stable hash of a name, so every machine of a CI job matrix
computes the same split without talking to the others, and an asset stays in the
same shard from one run to the next (its pictures are paid for once, by one job):

* ``shard_of(name, N)`` is ``sha256(name)`` read as a number, modulo N, plus one. It
  depends on nothing but the name: not the spec's order, not the Python version, not
  the machine (Python's ``hash()`` is salted per process and would split differently
  on every job).
* Shards are numbered from 1 (``--shard 1/4`` .. ``--shard 4/4``), like the job
  matrices of GitHub Actions and GitLab and the ``--shard`` of Jest and Playwright.
* **Groups.** :func:`select` places an asset by the name of its *group*, given by
  ``group_of``. Today every asset is its own group (assets do not depend on each
  other). When assets are built from other assets (issue 13), ``group_of`` maps each
  asset to a representative of its connected part of the asset graph (its root
  ancestor, say): a parent and everything made from it then land in one shard, so no
  shard needs a picture another shard is still making.

Together the N shards select every target exactly once; a shard may be empty (fewer
targets than shards). The cache, the remote cache and the lock merge the shards' work
as they merge any two builds'.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Iterable, NamedTuple

from recraft_build.errors import UsageError

__all__ = ["Shard", "parse_shard", "select", "shard_of"]

_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class Shard(NamedTuple):
    """Shard ``index`` of ``count`` (1 <= index <= count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | Shard) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; a :class:`UsageError` (exit 2) for anything else."""
    if isinstance(text, Shard):
        return text
    match = _FORM.fullmatch(str(text))
    if match is None:
        raise UsageError(f"--shard must look like K/N (for example 2/4), not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: K must be between 1 and N (shards are numbered 1..N), and N at least 1")
    return Shard(index, count)


def shard_of(name: str, count: int) -> int:
    """The shard (1..``count``) that the group called ``name`` belongs to."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(names: Iterable[str], shard: Shard, group_of: Callable[[str], str] | None = None) -> list[str]:
    """The ``names`` (in their order) whose group falls in ``shard``.

    ``group_of(name)`` names the group an asset belongs to (itself by default; see the
    module docstring).
    """
    group = group_of or (lambda name: name)
    return [n for n in names if shard_of(group(n), shard.count) == shard.index]
