"""The gallery and the review page in a real headless Chromium (driven by Playwright).

Needs Debian's ``chromium`` package (/usr/bin/chromium) and the ``playwright`` pip
package (its bundled driver only; no downloaded browsers). Skipped, with the reason,
when either is missing. Screenshots go to the test's tmp folder
(``gallery.png``, ``review-picked.png``), to be looked at.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from recraft_build.review import page as gallery_page
from recraft_build.review.server import ReviewServer

from review_fixtures import SPEC, Project, make_project

CHROMIUM = os.environ.get("RECRAFT_BUILD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright pip package is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"chromium is not installed ({CHROMIUM}; apt-get install chromium)", allow_module_level=True)

EVIL = "a stack of coins <img src=x onerror=alert(1)></script><script>alert(2)</script>"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 850})
    pg = context.new_page()
    pg.problems = []  # console errors, page errors and dialogs nobody expected
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    yield pg
    context.close()


@pytest.fixture
def project(tmp_path):
    spec = SPEC.replace('prompt: "a stack of gold coins"', "prompt: " + json.dumps(EVIL))
    return make_project(tmp_path, spec=spec)


def wait_ready(pg):
    _poll(pg, "!!(window.__gallery && window.__gallery.ready)", "the gallery did not become ready")


def _poll(pg, expression: str, failure: str, seconds: float = 20.0) -> None:
    """Wait until ``expression`` is true in the page.

    Polls with ``evaluate`` (a DevTools call): ``wait_for_function`` compiles its string
    with eval, which the page's Content-Security-Policy rightly forbids."""
    deadline = time.monotonic() + seconds
    while not pg.evaluate(expression):
        assert time.monotonic() < deadline, f"{failure} in {seconds:g} s"
        time.sleep(0.05)


def all_images_decoded(pg) -> list:
    """Load every picture now (they are lazy), then list any that did not decode."""
    pg.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    _poll(pg, "Array.from(document.images).every(i => i.complete)", "pictures did not finish loading")
    return pg.evaluate(
        "Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
    )


def section(pg, name):
    return pg.locator(f'section.asset[data-name="{name}"]')


def open_review(pg, srv):
    """Open the address ``recraft-build review`` prints, as a user would; check that
    the browser lands on the page without the token and keeps it in a cookie that the
    page's script cannot read."""
    pg.goto(srv.url)
    assert pg.url == srv.page_url  # the token is not left in the address bar / history
    wait_ready(pg)
    cookies = {c["name"]: c for c in pg.context.cookies()}
    cookie = cookies[srv.cookie_name]
    assert cookie["value"] == srv.access_token and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert srv.access_token not in pg.evaluate("document.cookie")


def test_static_gallery_from_file_shows_every_picture(project, page, tmp_path):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    html = gallery_page.write_gallery(project.spec, **project.kw())
    page.goto(html.resolve().as_uri())
    wait_ready(page)
    expected = sum(
        1
        for a in gallery_page.build_model(project.spec, **project.kw())["assets"]
        for x in [*a["candidates"], *(f for o in a["outputs"] for f in o["files"])]
        if x["img"]
    )
    assert page.locator("img").count() == expected > 0
    assert all_images_decoded(page) == []
    assert page.locator("section.asset").count() == 3
    # The prompt is shown as text: nothing in it ran.
    assert EVIL in section(page, "coin").locator(".prompt").inner_text()
    assert dialogs == []
    # Filter by name, then by state (keyboard).
    page.keyboard.press("/")
    page.keyboard.type("shield")
    assert page.locator("section.asset").count() == 1
    page.keyboard.press("Escape")  # leaves the filter box; the filter stays
    assert page.locator("section.asset").count() == 1
    page.keyboard.press("/")
    page.keyboard.press("Backspace")  # "/" selected the text
    page.keyboard.press("Escape")
    assert page.locator("section.asset").count() == 3
    page.keyboard.press("c")  # only "changed": none yet
    assert page.locator("section.asset").count() == 0
    assert page.locator("#empty").is_visible()
    page.keyboard.press("a")
    assert page.locator("section.asset").count() == 3
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    assert page.problems == []


def test_clicking_a_candidate_in_review_picks_it(project, page, tmp_path):
    with ReviewServer(project.spec, **project.kw()) as srv:
        open_review(page, srv)
        sword = section(page, "icon-sword")
        sword.locator('.cand[data-index="2"] .frame').click()
        sword.locator('.cand.picked[data-index="2"]').wait_for(timeout=30000)
        assert project.generation("icon-sword")["pick"] == 2
        assert sword.locator(".badge.changed").inner_text().lower() == "changed"
        # The previous pick (from git HEAD) is shown beside the new one.
        assert sword.locator(".prev img").count() == 1
        assert all_images_decoded(page) == []
        page.screenshot(path=str(tmp_path / "review-picked.png"), full_page=False)

        # Keyboard: next asset (j), then "2" picks its second candidate (index 1).
        page.keyboard.press("j")
        page.keyboard.press("2")
        section(page, "icon-shield").locator('.cand.picked[data-index="1"]').wait_for(timeout=30000)
        assert project.generation("icon-shield")["pick"] == 1
    assert page.problems == []


def test_reroll_asks_first_then_shows_new_candidates(project, page):
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    with ReviewServer(project.spec, **project.kw()) as srv:
        open_review(page, srv)
        section(page, "coin").locator("button.reroll").click()
        page.locator("#toast", has_text="new candidates for coin").wait_for(timeout=30000)
    assert len(asked) == 1 and "Reroll coin?" in asked[0] and "costs" in asked[0]
    assert project.generation("coin")["roll"] == 1
    assert page.problems == []


def test_the_page_refuses_writes_without_its_token_and_paths_outside(project, page):
    text = project.lock.read_text()
    with ReviewServer(project.spec, **project.kw()) as srv:
        # Without the printed address (no cookie yet): nothing, not even the page.
        resp = page.goto(srv.page_url)
        assert resp.status == 403 and "printed" in page.inner_text("body")
        open_review(page, srv)
        # With the cookie left out, the page's own requests are refused too.
        status = page.evaluate("async () => (await fetch('/api/state', {credentials: 'omit'})).status")
        assert status == 403
        status = page.evaluate(
            """async () => (await fetch('/api/pick', {method: 'POST', headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({asset: 'coin', index: 1})})).status"""
        )
        assert status == 403
        for path in ["/%2e%2e/assets.lock", "/gallery/%2e%2e/%2e%2e/assets.yaml", "/.recraft-build-state.json"]:
            got = page.evaluate("async (p) => (await fetch(p)).status", path)
            assert got in (403, 404), path
        resp = page.goto(srv.origin + "/%2e%2e/assets.lock")
        assert resp.status in (403, 404)
    assert project.lock.read_text() == text


EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "game-icons", "assets.yaml")


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
@pytest.mark.skipif(not os.path.exists(EXAMPLE), reason="examples/game-icons is not there")
def test_game_icons_example_review_then_git_diff_shows_exactly_the_picks(tmp_path, page):
    """The issue's "done when": pick in the review page, then the lock's git diff and
    `recraft-build diff` show those picks and nothing else."""
    from recraft_build.review import lockdiff

    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(EXAMPLE, root / "assets.yaml")
    p = Project(root, tmp_path / "cache")
    assert not p.build().failed
    p.git("init", "-q")
    p.commit("first build")
    with ReviewServer(p.spec, **p.kw()) as srv:
        open_review(page, srv)
        for name, index in (("icon-potion", 2), ("icon-key", 1)):
            card = section(page, name)
            card.locator(f'.cand[data-index="{index}"] .frame').click()
            card.locator(f'.cand.picked[data-index="{index}"]').wait_for(timeout=60000)
    changed = lockdiff.compute(p.spec).changes
    assert [(c.name, c.kinds[0], c.new_pick) for c in changed] == [
        ("icon-key", "re-picked", 1),
        ("icon-potion", "re-picked", 2),
    ]
    diff = p.git("diff", "--unified=0", "assets.lock")
    picks = [line for line in diff.splitlines() if line.startswith(("+", "-")) and '"pick"' in line]
    assert sorted(picks) == sorted(['-        "pick": 0,', '+        "pick": 2,', '-        "pick": 0,', '+        "pick": 1,'])
    # Apart from the pick, those two generations are untouched (same candidates, same key):
    # the rest of their diff is their outputs, made from the newly picked pictures.
    old = json.loads(p.git("show", "HEAD:assets.lock"))["assets"]
    new = p.lock_data()["assets"]
    assert {n for n in new if new[n] != old[n]} == {"icon-potion", "icon-key"}
    for name in ("icon-potion", "icon-key"):
        before, after = dict(old[name]["generation"]), dict(new[name]["generation"])
        before.pop("pick"), after.pop("pick")
        assert before == after
    md = lockdiff.diff(p.spec)
    assert "2 re-picked" in md and "`icon-potion`" in md and "`icon-key`" in md
    assert page.problems == []
