"""Rectangle packing for sprite atlases: MaxRects with the best-short-side-fit rule.

Pure and deterministic: sizes in, placements out, no pictures. The algorithm is Jukka
Jylänki's MaxRects ("A Thousand Ways to Pack the Bin", 2010): the free space of a page
is kept as the list of maximal free rectangles (they overlap); each rectangle goes
where the shorter leftover side is smallest (ties: the longer leftover side, then the
top-most, left-most spot), and every free rectangle it overlaps is split, keeping only
the maximal pieces.

Pages: rectangles are packed, largest first, into a page of at most ``max_size``
square; what does not fit starts the next page. Then each page is shrunk: its
rectangles are packed again into the smallest page (by area, then by the longer side)
they fit in (the shorter longer side, then the smaller area), trying a dozen widths,
so an atlas of twelve 64 px icons is a 262x196 page, not a 2048 px one or a strip. ``power_of_two`` rounds page sides up to powers
of two (and tries only such sizes).

``padding`` is the gap between rectangles: each takes ``w + padding`` by ``h +
padding`` in a page ``padding`` larger than its size, so there is no gap at the
page's right and bottom edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["PackError", "PackedPage", "Placement", "pack", "pack_pages"]


class PackError(ValueError):
    """A rectangle cannot fit a page of the largest allowed size (the message says which)."""


@dataclass(frozen=True)
class Placement:
    """Where rectangle ``index`` (of the input list) lies: its top-left on its page."""

    index: int
    x: int
    y: int


@dataclass(frozen=True)
class PackedPage:
    """One page: its size and the rectangles on it (in input order)."""

    width: int
    height: int
    placements: tuple[Placement, ...]


@dataclass
class _Rect:
    x: int
    y: int
    w: int
    h: int


class _MaxRects:
    """One page's free space, as maximal free rectangles."""

    def __init__(self, width: int, height: int):
        self.free = [_Rect(0, 0, width, height)]

    def find(self, w: int, h: int) -> tuple[int, int, int, int] | None:
        """(short leftover, long leftover, y, x) of the best spot for ``w`` x ``h``, or None."""
        best: tuple[int, int, int, int] | None = None
        for r in self.free:
            if r.w >= w and r.h >= h:
                lw, lh = r.w - w, r.h - h
                score = (min(lw, lh), max(lw, lh), r.y, r.x)
                if best is None or score < best:
                    best = score
        return best

    def place(self, x: int, y: int, w: int, h: int) -> None:
        """Take ``(x, y, w, h)``: split every free rectangle it overlaps, keep the maximal."""
        pieces: list[_Rect] = []
        kept: list[_Rect] = []
        for r in self.free:
            if x >= r.x + r.w or x + w <= r.x or y >= r.y + r.h or y + h <= r.y:
                kept.append(r)
                continue
            if x > r.x:
                pieces.append(_Rect(r.x, r.y, x - r.x, r.h))
            if x + w < r.x + r.w:
                pieces.append(_Rect(x + w, r.y, r.x + r.w - x - w, r.h))
            if y > r.y:
                pieces.append(_Rect(r.x, r.y, r.w, y - r.y))
            if y + h < r.y + r.h:
                pieces.append(_Rect(r.x, y + h, r.w, r.y + r.h - y - h))
        # The kept rectangles were maximal among themselves: each can only be inside a
        # new piece. A new piece can be inside anything (the earlier of equal pieces stays).
        def inside(a: _Rect, b: _Rect) -> bool:
            return b.x <= a.x and b.y <= a.y and a.x + a.w <= b.x + b.w and a.y + a.h <= b.y + b.h

        fresh = [a for i, a in enumerate(pieces)
                 if not any(inside(a, b) for b in kept)
                 and not any(inside(a, b) and ((a.x, a.y, a.w, a.h) != (b.x, b.y, b.w, b.h) or j < i)
                             for j, b in enumerate(pieces) if j != i)]
        maximal = [a for a in kept if not any(inside(a, b) for b in fresh)] + fresh
        self.free = maximal


def _order(sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Largest first (longer side, then area, then input order): the usual MaxRects order."""
    return sorted(range(len(sizes)), key=lambda i: (-max(sizes[i]), -sizes[i][0] * sizes[i][1], i))


def pack(sizes: Sequence[tuple[int, int]], width: int, height: int, padding: int,
         only: Sequence[int] | None = None) -> tuple[list[Placement], list[int]]:
    """Pack rectangles ``only`` (indexes into ``sizes``; all by default) into one page of
    ``width`` x ``height``: (placements, indexes that did not fit)."""
    bins = _MaxRects(width + padding, height + padding)
    placed: list[Placement] = []
    left: list[int] = []
    order = _order(sizes)
    if only is not None:
        rank = {i: r for r, i in enumerate(order)}
        order = sorted(only, key=rank.__getitem__)
    for i in order:
        w, h = sizes[i][0] + padding, sizes[i][1] + padding
        spot = bins.find(w, h)
        if spot is None:
            left.append(i)
            continue
        _, _, y, x = spot
        bins.place(x, y, w, h)
        placed.append(Placement(i, x, y))
    return placed, left


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _used(sizes: Sequence[tuple[int, int]], placed: Sequence[Placement]) -> tuple[int, int]:
    return (max(p.x + sizes[p.index][0] for p in placed), max(p.y + sizes[p.index][1] for p in placed))


def _smallest(sizes: Sequence[tuple[int, int]], group: Sequence[int], max_size: int, padding: int,
              power_of_two: bool) -> tuple[int, int, list[Placement]] | None:
    """The smallest page (longer side, then area) that holds all of ``group``, or None."""
    area = sum((sizes[i][0] + padding) * (sizes[i][1] + padding) for i in group)
    widest = max(sizes[i][0] for i in group)
    tallest = max(sizes[i][1] for i in group)
    if power_of_two:
        widths = [1 << k for k in range(_pow2(widest).bit_length() - 1, max_size.bit_length())]
    else:
        # From half the square root of the area up, in growing steps (a dozen widths).
        start = max(widest, int(math.sqrt(area) * 0.5))
        widths, w = [], start
        while w < max_size:
            widths.append(w)
            w = max(w + 1, int(w * 1.15))
        widths.append(max_size)
    # Score: the longer side first (a page must fit the GPU's limit, and a square-ish page
    # is what people expect), then the area.
    best: tuple[tuple[int, int], int, int, list[Placement]] | None = None
    for w in widths:
        if w < widest or w > max_size:
            continue
        low = max(tallest, -(-area // (w + padding)) - padding)
        if power_of_two:
            low = _pow2(max(1, low))
        if best is not None and max(w, low) > best[0][0]:
            if w > best[0][0]:
                break  # every wider page is worse
            continue
        heights = ([1 << k for k in range(low.bit_length() - 1, max_size.bit_length())] if power_of_two
                   else _search_heights(low, max_size))
        for h in heights:
            if h > max_size:
                break
            if best is not None and max(w, h) > best[0][0]:
                break
            placed, left = pack(sizes, w, h, padding, group)
            if not left:
                uw, uh = _used(sizes, placed)
                pw, ph = (_pow2(uw), _pow2(uh)) if power_of_two else (uw, uh)
                score = (max(pw, ph), pw * ph)
                if best is None or score < best[0]:
                    best = (score, pw, ph, placed)
                break
    return None if best is None else (best[1], best[2], best[3])


def _search_heights(low: int, high: int) -> list[int]:
    """Heights to try from ``low`` up: small steps first, then doubling steps."""
    out, h, step = [], low, max(1, low // 16)
    while h < high:
        out.append(h)
        h += step
        step = step * 2 if len(out) > 4 else step
    out.append(high)
    return out


def pack_pages(sizes: Sequence[tuple[int, int]], max_size: int, *, padding: int = 0,
               power_of_two: bool = False) -> list[PackedPage]:
    """Pack every rectangle ``(w, h)`` into as few pages of at most ``max_size`` square
    as the greedy order gives, each shrunk to the smallest size that holds it.

    Raises PackError when a rectangle is larger than ``max_size`` on a side.
    """
    for i, (w, h) in enumerate(sizes):
        if w > max_size or h > max_size:
            raise PackError(f"item {i} is {w}x{h} px, larger than the page's {max_size} px")
    pages: list[PackedPage] = []
    todo = list(range(len(sizes)))
    while todo:
        placed, left = pack(sizes, max_size, max_size, padding, todo)
        if not placed:  # cannot happen after the size check; never loop forever
            raise PackError(f"item {left[0]} does not fit a {max_size} px page")
        group = [p.index for p in placed]
        tight = _smallest(sizes, group, max_size, padding, power_of_two)
        if tight is not None:
            w, h, placed = tight
        else:
            uw, uh = _used(sizes, placed)
            w, h = (_pow2(uw), _pow2(uh)) if power_of_two else (uw, uh)
        pages.append(PackedPage(w, h, tuple(sorted(placed, key=lambda p: p.index))))
        todo = left
    return pages
