"""The asset graph: an asset made from another asset's picture depends on it.

Edges go from a parent (``image: {asset: knight}`` or ``mask: {asset: ...}``) to the
asset made from it. This module is pure and shared: the loader checks the graph
(:func:`graph_problems`: unknown names, cycles, inputs that are not raster), the
planner orders a build by it (:func:`build_order`, parents first, otherwise spec
order) and pulls in what targets need (:func:`with_ancestors`).
"""

from __future__ import annotations

import difflib
from typing import Iterable, Iterator, Mapping, Sequence

from recraft_build.domain import Asset, ImageInput
from recraft_build.errors import Problem

__all__ = ["build_order", "descendants", "find_cycles", "graph_problems", "with_ancestors"]


def _has_edges(assets: Sequence[Asset]) -> bool:
    """True when some asset is made from another asset."""
    return any(i is not None and i.asset is not None for a in assets for i in (a.image, a.mask))


def _problem(inp: ImageInput, fallback: str, message: str, hint: str = "") -> Problem:
    w = inp.where
    if w is None:
        return Problem(fallback, 0, 0, "", message, hint)
    return Problem(w.file, w.line, w.col, w.path, message, hint)


def find_cycles(assets: Sequence[Asset]) -> list[list[str]]:
    """Each cycle of the graph once, as the names along it, first name repeated at the
    end (``[a, b, a]``); a self-reference is ``[a, a]``. Unknown names are ignored."""
    if not _has_edges(assets):
        return []
    by_name = {a.name: a for a in assets}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles: list[list[str]] = []
    for root in by_name:
        if root in state:
            continue
        # Iterative DFS (a chain of 100,000 assets must not hit the recursion limit).
        path: list[str] = [root]
        iters = [iter(by_name[root].parents())]
        state[root] = 1
        while iters:
            parent = next(iters[-1], None)
            if parent is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if parent not in by_name:
                continue
            if state.get(parent) == 1:
                cycle = path[path.index(parent):] + [parent]
                cycles.append(list(reversed(cycle)))  # parent -> child order reads as made-from
                continue
            if parent not in state:
                state[parent] = 1
                path.append(parent)
                iters.append(iter(by_name[parent].parents()))
    return cycles


def graph_problems(assets: Sequence[Asset], vector: Mapping[str, bool], spec_file: str) -> list[Problem]:
    """Problems of the graph: an input naming no asset (with the closest names), a cycle
    (``a -> b -> a``: an asset cannot be made from itself, even through others), and an
    input asset whose picture is SVG (``vector[name]``): operations take raster pictures."""
    if not _has_edges(assets):
        return []
    names = [a.name for a in assets]
    known = set(names)
    problems: dict[Problem, None] = {}
    for a in assets:
        for key, inp in (("image", a.image), ("mask", a.mask)):
            if inp is None or inp.asset is None:
                continue
            if inp.asset not in known:
                close = difflib.get_close_matches(inp.asset, [n for n in names if n != a.name], n=3)
                hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                        else "name an asset of this spec")
                problems[_problem(inp, spec_file, f"no asset named {inp.asset!r} (asset {a.name!r})", hint)] = None
            elif vector.get(inp.asset) and not a.from_file:
                problems[_problem(
                    inp, spec_file,
                    f"asset {inp.asset!r} gives an SVG picture, and {a.request.operation} takes a raster "
                    f"picture (asset {a.name!r})",
                    "use a raster parent (a raster style or model), or a png/jpg/webp file")] = None
    by_name = {a.name: a for a in assets}
    for cycle in find_cycles(assets):
        first = by_name[cycle[-1]]  # the asset whose input closes the cycle
        inp = next((i for i in first.inputs() if i.asset == cycle[-2]), None) or first.image
        assert inp is not None
        problems[_problem(
            inp, spec_file,
            f"the assets form a cycle: {' -> '.join(cycle)}",
            "an asset cannot be made from itself, directly or through others: break the chain")] = None
    return list(problems)


def build_order(assets: Sequence[Asset]) -> list[Asset]:
    """``assets`` with every parent before the assets made from it, otherwise in the
    order given (a spec without chains keeps its order). Parents outside ``assets`` and
    cycles (refused by the loader) are ignored."""
    if not _has_edges(assets):
        return list(assets)  # the common case, on every no-op build: nothing to order
    by_name = {a.name: a for a in assets}
    done: set[str] = set()
    out: list[Asset] = []
    for root in assets:
        if root.name in done:
            continue
        stack: list[tuple[Asset, Iterator[str]]] = [(root, iter(root.parents()))]
        on_path = {root.name}
        while stack:
            asset, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                on_path.discard(asset.name)
                if asset.name not in done:
                    done.add(asset.name)
                    out.append(asset)
                continue
            if parent in by_name and parent not in done and parent not in on_path:
                on_path.add(parent)
                stack.append((by_name[parent], iter(by_name[parent].parents())))
    return out


def with_ancestors(assets: Sequence[Asset], names: Iterable[str]) -> set[str]:
    """``names`` and every asset they are made from, directly or not."""
    by_name = {a.name: a for a in assets}
    seen: set[str] = set()
    todo = [n for n in names if n in by_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(p for p in by_name[name].parents() if p in by_name and p not in seen)
    return seen


def descendants(assets: Sequence[Asset], name: str) -> set[str]:
    """Every asset made from ``name``, directly or not (not ``name`` itself)."""
    children: dict[str, list[str]] = {}
    for a in assets:
        for p in a.parents():
            children.setdefault(p, []).append(a.name)
    seen: set[str] = set()
    todo = list(children.get(name, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(children.get(n, ()))
    return seen


def components(assets: Sequence[Asset]) -> dict[str, str]:
    """Each asset's connected part of the graph, named by its alphabetically first asset:
    a parent and everything made from it share a name (``--shard`` keeps them together)."""
    parent: dict[str, str] = {a.name: a.name for a in assets}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a in assets:
        for p in a.parents():
            if p in parent:
                ra, rp = root(a.name), root(p)
                if ra != rp:
                    parent[max(ra, rp)] = min(ra, rp)
    return {n: root(n) for n in parent}
