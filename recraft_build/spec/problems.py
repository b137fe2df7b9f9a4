"""Collecting a spec's problems, each placed at ``FILE:LINE:COL`` with its field path.

Places are tuple paths into the YAML document (``("assets", 3, "outputs", 0,
"path")``); :class:`ProblemLog` turns them into lines and columns through the
:class:`~recraft_build.spec.yamlload.YamlDocument`, once per path.

Problems met while expanding an asset (a template that fails, an output path that
renders wrong) are usually the same for every combination of a matrix: they are
reported once, naming the first asset and how many more share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Tuple

from recraft_build.domain import Where
from recraft_build.errors import Problem
from recraft_build.spec.yamlload import YamlDocument, format_path

__all__ = ["Path", "ProblemLog"]

#: A place in the spec document: keys and list indexes from the top.
Path = Tuple[Any, ...]


@dataclass
class _Grouped:
    """A problem repeated across matrix combinations, reported once with a count."""

    problem: Problem
    first: str
    count: int = 1
    named: bool = False


class ProblemLog:
    """Every problem found in one spec, placed; duplicates kept once.

    :meth:`add` records a problem at a path. :meth:`add_for` records one met while
    handling an asset (``who`` names it: ``asset 'icon-sword'``): the same problem met
    again only counts, and with ``named`` the message says which asset (and how many
    more) it was met in.
    """

    def __init__(self, doc: YamlDocument):
        self.doc = doc
        self._problems: dict[Problem, None] = {}
        self._grouped: dict[Problem, _Grouped] = {}
        self._places: dict[Path, Where] = {}

    def __len__(self) -> int:
        return len(self._problems) + len(self._grouped)

    def where(self, path: Path) -> Where:
        """The line, column and dotted path of ``path`` (looked up once per path)."""
        place = self._places.get(path)
        if place is None:
            line, col = self.doc.position(path)
            place = self._places[path] = Where(self.doc.filename, line, col, format_path(path))
        return place

    def problem(self, path: Path, message: str, hint: str = "", *,
                at_key: bool = False) -> Problem:
        """A Problem placed at ``path`` (at its key with ``at_key``), not recorded."""
        if at_key:
            return self.doc.problem(path, message, hint, at_key=True)
        w = self.where(path)
        return Problem(w.file, w.line, w.col, w.path, message, hint)

    def add(self, path: Path, message: str, hint: str = "", *, at_key: bool = False) -> None:
        """Record a problem at ``path``."""
        self._problems[self.problem(path, message, hint, at_key=at_key)] = None

    def extend(self, problems: Iterable[Problem]) -> None:
        """Record problems already placed (the schema's)."""
        for p in problems:
            self._problems[p] = None

    def add_for(self, who: str, named: bool, path: Path, message: str, hint: str = "") -> None:
        """Record a problem at ``path`` met while handling ``who``; see the class."""
        self.add_placed(who, named, self.problem(path, message, hint))

    def add_placed(self, who: str, named: bool, problem: Problem) -> None:
        """Like :meth:`add_for`, for a problem already placed."""
        seen = self._grouped.get(problem)
        if seen is None:
            self._grouped[problem] = _Grouped(problem, who, 1, named)
        else:
            seen.count += 1
            seen.named = seen.named or named

    def problems(self) -> list[Problem]:
        """Everything recorded, each once, named ones with their asset and count."""
        out = dict(self._problems)
        for g in self._grouped.values():
            out[_ungroup(g)] = None
        return list(out)


def _ungroup(g: _Grouped) -> Problem:
    p = g.problem
    if not g.named:
        return p
    more = f" and {g.count - 1} more" if g.count > 1 else ""
    return Problem(p.file, p.line, p.col, p.path, f"{p.message} ({g.first}{more})", p.hint)
