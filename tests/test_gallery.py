"""The static gallery page: its data, its pictures beside it, states against git, escaping."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recraft_build.review import page as gallery_page
from recraft_build.review import picking
from recraft_build.cli import main
from recraft_build.errors import OutputError

from review_fixtures import HAS_GIT, SPEC, make_project

needs_git = pytest.mark.skipif(not HAS_GIT, reason="git is not installed")


def page_data(html: str) -> dict:
    m = re.search(r'<script id="gallery-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the page embeds its data"
    return json.loads(m.group(1))


def by_name(data: dict) -> dict:
    return {a["name"]: a for a in data["assets"]}


def every_img(data: dict) -> list[str]:
    out = []
    for a in data["assets"]:
        out += [c["img"] for c in a["candidates"]]
        out += [f["img"] for o in a["outputs"] for f in o["files"]]
        if a["previous"]:
            out.append(a["previous"]["img"])
    return out


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@needs_git
def test_page_lists_every_asset_with_its_pictures_beside_it(project):
    page = gallery_page.write_gallery(project.spec, **project.kw())
    assert page == project.gallery / "index.html"
    data = page_data(page.read_text())
    assets = by_name(data)
    assert list(assets) == ["icon-sword", "icon-shield", "coin"]
    sword = assets["icon-sword"]
    assert len(sword["candidates"]) == 3 and sword["pick"] == 0
    assert sword["prompt"] == "flat game icon of a sword"
    assert sword["params"]["model"] == "recraftv3" and sword["params"]["n"] == 3
    assert sword["outputs"][0]["path"] == "icons/sword.png"
    f = sword["outputs"][0]["files"][0]
    assert (f["format"], f["width"]) == ("png", 48)
    assert [s["name"] for s in sword["outputs"][0]["steps"]] == ["resize"]
    # Every picture is a file beside the page, named by its digest.
    imgs = every_img(data)
    assert imgs and all(imgs)
    for rel in imgs:
        file = page.parent / rel
        assert file.is_file()
        assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name.split(".")[0]  # (full pictures)
    # Nothing is loaded from the network.
    html = page.read_text()
    assert "http://" not in html and "https://" not in html


@needs_git
def test_states_against_the_lock_in_head(project):
    picking.pick(project.spec, "icon-sword", 2, **project.kw())
    project.spec.write_text(SPEC.replace("[sword, shield]", "[sword, shield, bow]"))
    data = gallery_page.build_model(project.spec, **project.kw())
    assets = by_name(data)
    assert assets["icon-sword"]["state"] == "changed"
    assert assets["icon-sword"]["changes"][0] == "re-picked #0 → #2"
    # The previous pick is shown beside the new one.
    prev = assets["icon-sword"]["previous"]
    assert prev["index"] == 0 and prev["img"]
    assert prev["sha256"] == assets["icon-sword"]["candidates"][0]["sha256"]
    assert assets["icon-shield"]["state"] == "up-to-date"
    assert assets["icon-shield"]["previous"] is None
    assert assets["icon-bow"]["state"] == "not-built"
    assert assets["icon-bow"]["candidates"] == []
    assert data["counts"] == {"changed": 1, "up-to-date": 2, "not-built": 1}
    project.build("icon-bow")
    assert by_name(gallery_page.build_model(project.spec, **project.kw()))["icon-bow"]["state"] == "new"


@needs_git
def test_a_removed_asset_shows_its_last_picture(project):
    project.spec.write_text(SPEC.replace("[sword, shield]", "[sword]"))
    project.build()
    assets = by_name(gallery_page.build_model(project.spec, **project.kw()))
    assert assets["icon-shield"]["state"] == "removed"
    assert assets["icon-shield"]["previous"]["img"]


@needs_git
def test_a_spec_changed_since_the_build_is_noted(project):
    project.spec.write_text(SPEC.replace("a stack of gold coins", "a pile of coins"))
    coin = by_name(gallery_page.build_model(project.spec, **project.kw()))["coin"]
    assert coin["notes"] == ["changed: prompt"]
    assert coin["prompt"] == "a stack of gold coins"  # what the pictures were made from


def test_without_git_every_asset_is_new_and_nothing_breaks(tmp_path):
    p = make_project(tmp_path, git=False)

    def no_git(args, cwd):
        raise FileNotFoundError("git")

    data = gallery_page.build_model(p.spec, git=no_git, **p.kw())
    assert {a["state"] for a in data["assets"]} == {"new"}
    assert "git is not installed" in data["base"]["note"]
    assert data["base"]["found"] is False
    page = gallery_page.write_gallery(p.spec, git=no_git, **p.kw())
    assert page.is_file()


def test_outside_a_repository_every_asset_is_new(tmp_path):
    p = make_project(tmp_path, git=False)
    data = gallery_page.build_model(p.spec, **p.kw())
    assert {a["state"] for a in data["assets"]} == {"new"}
    assert data["base"]["note"]


def test_prompts_cannot_break_out_of_the_page(tmp_path):
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)> & <!-- \\u2028"
    spec = SPEC.replace('prompt: "a stack of gold coins"', "prompt: " + json.dumps(evil))
    p = make_project(tmp_path, spec=spec, git=False)
    html = gallery_page.write_gallery(p.spec, base_rev=None, **p.kw()).read_text()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert html.count("</script>") == 2  # the data block and the page's script
    assert by_name(page_data(html))["coin"]["prompt"] == evil


def test_the_csp_allows_exactly_the_page_s_own_style_and_script():
    html = gallery_page.render_page({"assets": [], "counts": {}, "base": {"found": False, "note": "", "rev": None}})
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    script = re.findall(r"<script>(.*?)</script>", html, re.S)[-1]

    def h(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"style-src {h(style)};" in csp
    assert f"script-src {h(script)};" in csp
    assert "connect-src 'none'" in csp  # the static page talks to nobody
    assert "default-src 'none'" in csp


def test_review_mode_embeds_the_token_and_the_static_page_does_not(tmp_path):
    p = make_project(tmp_path, git=False)
    model = gallery_page.build_model(p.spec, base_rev=None, **p.kw())
    assert page_data(gallery_page.render_page(model, review={"token": "tok-123"}))["review"] == {"token": "tok-123"}
    assert page_data(gallery_page.render_page(model))["review"] is None


def test_pictures_not_in_the_cache_are_marked_and_outputs_come_from_the_tree(tmp_path):
    p = make_project(tmp_path, git=False)
    data = gallery_page.build_model(p.spec, base_rev=None, cache_dir=tmp_path / "empty", env={})
    sword = by_name(data)["icon-sword"]
    assert [c["img"] for c in sword["candidates"]] == [None, None, None]
    # The output file on disk still matches the lock, so it is copied from there.
    assert sword["outputs"][0]["files"][0]["img"]


def test_old_pictures_are_pruned_and_other_files_kept(tmp_path):
    p = make_project(tmp_path, git=False)
    img = p.gallery / "img"
    img.mkdir(parents=True)
    stale = img / ("0" * 64 + ".png")
    stale.write_bytes(b"old")
    keep = img / "notes.txt"
    keep.write_text("mine")
    gallery_page.write_gallery(p.spec, base_rev=None, **p.kw())
    assert not stale.exists()
    assert keep.exists()


def test_cli_gallery_prints_a_file_url(tmp_path):
    p = make_project(tmp_path, git=False)
    out, err = io.StringIO(), io.StringIO()
    code = main(["gallery", "-f", str(p.spec), "--cache-dir", str(p.cache)], stdout=out, stderr=err)
    assert code == 0
    url = out.getvalue().strip()
    assert url.startswith("file://") and url.endswith("/proj/.recraft-build/gallery/index.html")


def test_big_candidates_show_as_small_thumbnails_linking_to_the_full_picture(tmp_path):
    from PIL import Image

    project = make_project(tmp_path)
    page = gallery_page.write_gallery(project.spec, **project.kw())
    data = page_data(page.read_text())
    cand = by_name(data)["icon-sword"]["candidates"][0]
    assert cand["thumb"] != cand["img"] and ".t" in cand["thumb"]
    with Image.open(page.parent / cand["thumb"]) as thumb, Image.open(page.parent / cand["img"]) as full:
        assert max(thumb.size) == gallery_page.THUMB_SIZE < max(full.size)
        assert thumb.size[0] * full.size[1] == pytest.approx(thumb.size[1] * full.size[0], rel=0.02)
    # thumbnails are the gallery's own files: kept while shown, pruned like the rest
    assert (page.parent / cand["thumb"]).stat().st_size < (page.parent / cand["img"]).stat().st_size


# -- where the gallery goes, and how it is written (issue 12) -------------------------------------
def test_the_gallery_is_written_beside_the_spec_never_into_the_published_output_folder(tmp_path):
    p = make_project(tmp_path, git=False)
    page = gallery_page.write_gallery(p.spec, base_rev=None, **p.kw())
    assert page == p.gallery / "index.html" and page.is_file()
    assert any((p.gallery / "img").iterdir())
    # copying out/ to a CDN publishes only the outputs: no candidate, no prompt
    assert not (p.out / "gallery").exists()
    published = b"".join(f.read_bytes() for f in p.out.rglob("*") if f.is_file())
    assert b"flat game icon" not in published
    # the local folder keeps itself out of git
    assert (p.root / ".recraft-build" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_gallery_dir_chooses_the_folder(tmp_path):
    p = make_project(tmp_path, git=False)
    chosen = tmp_path / "review" / "page"
    page = gallery_page.write_gallery(p.spec, gallery_dir=chosen, base_rev=None, **p.kw())
    assert page == chosen / "index.html" and page.is_file()
    imgs = every_img(page_data(page.read_text()))
    assert imgs and all((chosen / rel).is_file() for rel in imgs)
    assert not (p.root / ".recraft-build").exists() and not (p.out / "gallery").exists()
    out, err = io.StringIO(), io.StringIO()
    code = main(["gallery", "-f", str(p.spec), "--cache-dir", str(p.cache), "--gallery-dir", str(tmp_path / "g2")],
                stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().strip() == (tmp_path / "g2" / "index.html").resolve().as_uri()


def test_an_old_gallery_in_the_output_folder_is_pointed_out(tmp_path):
    p = make_project(tmp_path, git=False)
    old = p.out / "gallery"
    old.mkdir()
    (old / "index.html").write_text("<html>an old gallery</html>")
    warnings = []
    gallery_page.write_gallery(p.spec, base_rev=None, warn=warnings.append, **p.kw())
    assert len(warnings) == 1 and str(old) in warnings[0]
    assert (old / "index.html").exists()  # the user's to delete
    # no warning when that folder is the one asked for
    warnings.clear()
    gallery_page.write_gallery(p.spec, gallery_dir=old, base_rev=None, warn=warnings.append, **p.kw())
    assert warnings == []


@pytest.mark.parametrize("link", ["out/gallery", ".recraft-build", ".recraft-build/gallery", ".recraft-build/gallery/img"])
def test_writes_never_follow_a_symlinked_folder(tmp_path, link):
    p = make_project(tmp_path, git=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = p.root / link
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(elsewhere, target_is_directory=True)
    options = {"gallery_dir": where} if link == "out/gallery" else {}
    with pytest.raises(OutputError, match="symbolic link") as caught:
        gallery_page.write_gallery(p.spec, base_rev=None, **options, **p.kw())
    assert str(where) in str(caught.value)
    assert list(elsewhere.iterdir()) == []
    # the command line says so, without a traceback
    args = ["--gallery-dir", str(where)] if options else []
    out, err = io.StringIO(), io.StringIO()
    code = main(["gallery", "-f", str(p.spec), "--cache-dir", str(p.cache), *args], stdout=out, stderr=err)
    assert code != 0 and str(where) in err.getvalue() and "Traceback" not in err.getvalue()
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_picture_is_replaced_not_written_through(tmp_path):
    p = make_project(tmp_path, git=False)
    data = gallery_page.build_model(p.spec, base_rev=None, **p.kw())
    name = by_name(data)["coin"]["candidates"][0]["img"]  # img/<sha>.<ext>
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    picture = p.gallery / name
    picture.unlink()
    picture.symlink_to(victim)
    gallery_page.write_gallery(p.spec, base_rev=None, **p.kw())
    assert victim.read_text() == "keep me"
    assert not picture.is_symlink()
    assert hashlib.sha256(picture.read_bytes()).hexdigest() == picture.name.split(".")[0]


def test_the_gallery_s_files_honour_the_umask(tmp_path):
    p = make_project(tmp_path, git=False)
    old = os.umask(0o022)
    try:
        gallery_page.write_gallery(p.spec, base_rev=None, **p.kw())
    finally:
        os.umask(old)
    files = [f for f in (p.root / ".recraft-build").rglob("*") if f.is_file()]
    assert len(files) > 3  # the page, .gitignore, pictures and thumbnails
    assert {f.relative_to(p.root).as_posix(): oct(f.stat().st_mode & 0o777) for f in files} == {
        f.relative_to(p.root).as_posix(): "0o644" for f in files
    }
    folders = [p.root / ".recraft-build", p.gallery, p.gallery / "img"]
    assert [oct(d.stat().st_mode & 0o777) for d in folders] == ["0o755"] * 3


def test_the_page_s_markup_style_and_script_ship_in_the_package(tmp_path):
    # what the running package reads ...
    assets = importlib.resources.files("recraft_build.review") / "assets"
    for name in ("page.html", "page.css", "page.js"):
        assert (assets / name).is_file(), name
    html = gallery_page.render_page({"assets": [], "counts": {}, "base": {"found": False, "note": "", "rev": None}})
    assert (assets / "page.js").read_text(encoding="utf-8") in html
    # ... and what a wheel (`pip install .`) holds: setuptools' build_py, the step that
    # puts packages and their package-data into the wheel, run offline on a copy of the tree
    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    shutil.copytree(root / "recraft_build", src / "recraft_build", ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    built = tmp_path / "lib" / "recraft_build" / "review" / "assets"
    assert sorted(f.name for f in built.iterdir()) == ["page.css", "page.html", "page.js"]


def test_a_child_sits_beside_its_parent_and_is_not_shown_as_changed(tmp_path, monkeypatch):
    from recraft_build import api
    from recraft_build.review.page import build_model

    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    spec = tmp_path / "assets.yaml"
    spec.write_text(
        "version: 1\nassets:\n"
        "  - name: knight\n    prompt: a knight\n    output: knight.png\n"
        "  - name: banner\n    prompt: a banner\n    output: banner.png\n"
        "  - name: knight-night\n    image: {asset: knight}\n    strength: 0.4\n"
        "    prompt: the knight at night\n    output: knight-night.png\n"
    )
    cache = tmp_path / "cache"
    assert not api.build(spec, cache_dir=cache).failed
    data = build_model(spec, cache_dir=cache, base_rev=None, gallery_dir=tmp_path / "g")
    names = [a["name"] for a in data["assets"]]
    assert names == ["knight", "knight-night", "banner"]
    child = next(a for a in data["assets"] if a["name"] == "knight-night")
    assert not any("changed" in n for n in child.get("notes", [])), child.get("notes")
