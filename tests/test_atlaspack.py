"""Tests for recraft_build.engine.atlaspack: MaxRects packing into pages."""

from __future__ import annotations

import random

import pytest

from recraft_build.engine.atlaspack import PackError, pack_pages


def check_layout(sizes, pages, max_size, padding):
    """Every rectangle placed once, inside its page, at least ``padding`` from any other."""
    placed = sorted(p.index for page in pages for p in page.placements)
    assert placed == list(range(len(sizes)))
    for page in pages:
        assert 0 < page.width <= max_size and 0 < page.height <= max_size
        rects = [(p.x, p.y, *sizes[p.index]) for p in page.placements]
        for x, y, w, h in rects:
            assert x >= 0 and y >= 0 and x + w <= page.width and y + h <= page.height
        for i, (ax, ay, aw, ah) in enumerate(rects):
            for bx, by, bw, bh in rects[i + 1:]:
                apart = (ax + aw + padding <= bx or bx + bw + padding <= ax
                         or ay + ah + padding <= by or by + bh + padding <= ay)
                assert apart, ((ax, ay, aw, ah), (bx, by, bw, bh))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("padding", [0, 2])
def test_random_rectangles_fit_their_page_without_overlap(seed, padding):
    rng = random.Random(seed)
    sizes = [(rng.randint(1, 120), rng.randint(1, 120)) for _ in range(rng.randint(1, 60))]
    pages = pack_pages(sizes, 512, padding=padding)
    check_layout(sizes, pages, 512, padding)


def test_the_pages_are_tight_and_well_filled():
    sizes = [(64, 64)] * 12
    (page,) = pack_pages(sizes, 2048, padding=2)
    # Not a 2048 px page, not a strip of twelve: a compact block.
    assert max(page.width, page.height) <= 262
    used = sum(w * h for w, h in sizes)
    assert used / (page.width * page.height) > 0.75


def test_mixed_sizes_pack_better_than_a_row():
    rng = random.Random(7)
    sizes = [(rng.randint(16, 128), rng.randint(16, 128)) for _ in range(80)]
    (page,) = pack_pages(sizes, 2048, padding=2)
    check_layout(sizes, [page], 2048, 2)
    assert sum(w * h for w, h in sizes) / (page.width * page.height) > 0.7
    assert max(page.width, page.height) < 2 * min(page.width, page.height) + 128  # roughly square


def test_frames_that_do_not_fit_one_page_go_to_more_pages():
    sizes = [(300, 300)] * 30
    pages = pack_pages(sizes, 1024, padding=2)
    check_layout(sizes, pages, 1024, 2)
    assert len(pages) == 4  # nine 300 px frames fit a 1024 px page (3 x 302 <= 1026)
    assert [len(p.placements) for p in pages] == [9, 9, 9, 3]


def test_power_of_two_pages():
    rng = random.Random(3)
    sizes = [(rng.randint(10, 90), rng.randint(10, 90)) for _ in range(25)]
    pages = pack_pages(sizes, 1024, padding=1, power_of_two=True)
    check_layout(sizes, pages, 1024, 1)
    for p in pages:
        assert p.width & (p.width - 1) == 0 and p.height & (p.height - 1) == 0


def test_packing_is_deterministic():
    sizes = [(i % 7 * 9 + 5, i % 5 * 11 + 3) for i in range(40)]
    assert pack_pages(sizes, 256, padding=2) == pack_pages(sizes, 256, padding=2)


def test_a_rectangle_larger_than_a_page_is_refused():
    with pytest.raises(PackError, match="item 1 is 600x10"):
        pack_pages([(10, 10), (600, 10)], 512)


def test_an_exact_fit_fills_the_page():
    (page,) = pack_pages([(50, 50)] * 4, 100)
    assert (page.width, page.height) == (100, 100)
    check_layout([(50, 50)] * 4, [page], 100, 0)
