"""Sprite atlases end to end, offline (placeholder provider): recraft_build.engine.atlas.

Each test builds a small spec through the real command line and checks what a game
would load: pages, TexturePacker JSON, CSS; that frames lie inside their page, never
overlap, and hold exactly the source output's pixels; and that atlases are rebuilt
only when a frame changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from clirun import offline_project, run_cli

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
atlases:
  - path: sprites/icons
    from: "icon-*"
    trim: true
    extrude: 1
    padding: 2
    css: true
  - path: sprites/gems
    from: [gem-red, "gem-b*"]
    format: array
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield, potion, bow, key]}
    prompt: "flat game icon of a {{ item }}"
    steps: [remove_background]
    outputs:
      - path: "icons/{{ item }}.png"
        scales: [1, 2]
        steps: [{resize: {width: 48, height: 64, fit: contain}}]
  - name: "gem-{{ color }}"
    matrix: {color: [red, blue, black]}
    prompt: "a {{ color }} gem"
    outputs:
      - path: "gems/{{ color }}.webp"
        steps: [{resize: {width: 40}}]
      - path: "gems/{{ color }}.png"
        steps: [{resize: {width: 32}}]
  - name: hero
    prompt: "wide banner at dusk"
    size: 1820x1024
    output: hero.webp
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    return offline_project(tmp_path, monkeypatch, SPEC)


cli = run_cli


def build(expect: int = 0) -> str:
    code, _, err = cli("build")
    assert code == expect, err
    return err


def rgba(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGBA")


def frames_of(doc: dict) -> dict[str, dict]:
    """Frames by name, from JSON (Hash) or JSON (Array)."""
    frames = doc["frames"]
    return dict(frames) if isinstance(frames, dict) else {f["filename"]: f for f in frames}


def check_atlas_json(out: Path, json_rel: str, sources: dict[str, str], extrude: int = 0) -> dict[str, dict]:
    """Check one atlas page: every frame inside the page, no two overlapping, and the
    pixels of each equal its source output's (trimmed region), extrusion included."""
    doc = json.loads((out / json_rel).read_text())
    folder = (out / json_rel).parent
    page = rgba(folder / doc["meta"]["image"])
    assert [page.width, page.height] == [doc["meta"]["size"]["w"], doc["meta"]["size"]["h"]]
    frames = frames_of(doc)
    rects = []
    for name, f in frames.items():
        r = f["frame"]
        assert f["rotated"] is False
        assert r["x"] >= extrude and r["y"] >= extrude
        assert r["x"] + r["w"] + extrude <= page.width and r["y"] + r["h"] + extrude <= page.height
        rects.append((r["x"] - extrude, r["y"] - extrude, r["w"] + 2 * extrude, r["h"] + 2 * extrude))
        src = rgba(out / sources[name])
        assert [src.width, src.height] == [f["sourceSize"]["w"], f["sourceSize"]["h"]]
        ss = f["spriteSourceSize"]
        assert (ss["w"], ss["h"]) == (r["w"], r["h"])
        want = src.crop((ss["x"], ss["y"], ss["x"] + ss["w"], ss["y"] + ss["h"]))
        got = page.crop((r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"]))
        assert got.tobytes() == want.tobytes(), name
        if f["trimmed"]:
            assert (ss["w"], ss["h"]) != (src.width, src.height)
        if extrude:
            # The ring around the frame repeats its edge pixels.
            top = page.crop((r["x"], r["y"] - 1, r["x"] + r["w"], r["y"]))
            assert top.tobytes() == got.crop((0, 0, r["w"], 1)).tobytes()
            left = page.crop((r["x"] - 1, r["y"], r["x"], r["y"] + r["h"]))
            assert left.tobytes() == got.crop((0, 0, 1, r["h"])).tobytes()
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0]
                    or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]), (a, b)
    return frames


def test_atlases_hold_the_source_pixels_at_every_scale(project):
    err = build()
    out = project / "out"
    assert "atlas sprites/icons: 5 frame(s)" in err
    items = ["sword", "shield", "potion", "bow", "key"]
    one = check_atlas_json(out, "sprites/icons.json", {f"icon-{i}": f"icons/{i}.png" for i in items}, extrude=1)
    two = check_atlas_json(out, "sprites/icons@2x.json", {f"icon-{i}": f"icons/{i}@2x.png" for i in items},
                           extrude=1)
    assert set(one) == set(two) == {f"icon-{i}" for i in items}
    doc = json.loads((out / "sprites/icons@2x.json").read_text())
    assert doc["meta"]["image"] == "icons@2x.png" and doc["meta"]["scale"] == "2"
    assert doc["meta"]["app"] == "recraft-build" and doc["meta"]["format"] == "RGBA8888"
    assert "related_multi_packs" not in doc["meta"]  # one page
    assert any(f["trimmed"] for f in one.values())  # the placeholder art has clear borders
    # The png output of each gem is its frame (not the webp), in a JSON (Array).
    gems = check_atlas_json(out, "sprites/gems.json", {f"gem-{c}": f"gems/{c}.png" for c in ("red", "blue", "black")})
    assert isinstance(json.loads((out / "sprites/gems.json").read_text())["frames"], list)
    assert list(gems) == ["gem-red", "gem-blue", "gem-black"]


def test_css_sprite_sheet_has_a_class_per_frame_and_2x_pages(project):
    build()
    css = (project / "out" / "sprites/icons.css").read_text()
    doc = json.loads((project / "out" / "sprites/icons.json").read_text())
    sword = doc["frames"]["icon-sword"]["frame"]
    assert (f'.icons-icon-sword {{ background-image: url("icons.png"); background-position: -{sword["x"]}px '
            f'-{sword["y"]}px; background-repeat: no-repeat; width: {sword["w"]}px; height: {sword["h"]}px; }}') in css
    assert "@media (min-resolution: 2dppx)" in css and 'url("icons@2x.png")' in css
    assert css.count(".icons-icon-") == 10


def test_an_unchanged_build_does_not_rewrite_the_atlas(project):
    build()
    out = project / "out"
    files = sorted(p for p in (out / "sprites").iterdir())
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in files + [out / "manifest.json"]}
    err = build()
    assert "atlas" not in err
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in before} == before
    code, text, _ = cli("status")
    assert "ok         atlas sprites/icons" in text and "ok         atlas sprites/gems" in text


def test_changing_one_frame_rebuilds_only_its_atlas(project):
    build()
    out = project / "out"
    icons = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "sprites").glob("icons*")}
    gems_before = (out / "sprites/gems.png").read_bytes()
    (project / "assets.yaml").write_text(SPEC.replace('prompt: "a {{ color }} gem"',
                                                      'prompt: "a shiny {{ color }} gem"'))
    code, text, _ = cli("status")
    assert "stale      atlas sprites/gems" in text and "ok         atlas sprites/icons" in text
    err = build()
    assert "atlas sprites/gems" in err and "atlas sprites/icons" not in err
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in icons} == icons
    assert (out / "sprites/gems.png").read_bytes() != gems_before
    check_atlas_json(out, "sprites/gems.json", {f"gem-{c}": f"gems/{c}.png" for c in ("red", "blue", "black")})


def test_a_deleted_page_is_written_back_from_the_cache(project):
    build()
    out = project / "out"
    page = (out / "sprites/icons@2x.png").read_bytes()
    (out / "sprites/icons@2x.png").unlink()
    code, text, _ = cli("status")
    assert "stale      atlas sprites/icons: atlas file missing or edited: sprites/icons@2x.png" in text
    err = build()
    assert "written back from the cache" in err
    assert (out / "sprites/icons@2x.png").read_bytes() == page


def test_frames_over_more_pages_are_linked_as_a_multipack(project):
    spec = SPEC.replace("    css: true\n", "    css: true\n    max_size: 96\n")
    (project / "assets.yaml").write_text(spec)
    build()
    out = project / "out"
    items = ["sword", "shield", "potion", "bow", "key"]
    names: list[str] = []
    jsons = sorted(p.name for p in (out / "sprites").glob("icons*.json") if "@2x" not in p.name)
    assert jsons[0] == "icons-1.json" and "icons.json" in jsons and len(jsons) >= 2
    for j in jsons:
        doc = json.loads((out / "sprites" / j).read_text())
        assert doc["meta"]["size"]["w"] <= 96 and doc["meta"]["size"]["h"] <= 96
        assert sorted(doc["meta"]["related_multi_packs"]) == sorted(x for x in jsons if x != j)
        names += check_atlas_json(out, f"sprites/{j}", {f"icon-{i}": f"icons/{i}.png" for i in items}, extrude=1)
    assert sorted(names) == sorted(f"icon-{i}" for i in items)


def test_a_frame_larger_than_max_size_fails_the_build_with_the_atlas_named(project):
    (project / "assets.yaml").write_text(SPEC.replace("    css: true\n", "    css: true\n    max_size: 40\n"))
    code, _, err = cli("build")
    assert code == 1
    assert "atlas 'sprites/icons'" in err and "larger than max_size 40" in err
    assert (project / "assets.lock").exists()  # the pictures are saved all the same
    assert (project / "out" / "sprites/gems.png").exists()


def test_an_atlas_waits_for_frames_not_built_yet(project):
    code, _, err = cli("build", "hero")
    assert code == 0, err
    assert "atlas sprites/icons not written: waiting for 'icon-sword', 'icon-shield', 'icon-potion' and 2 more" in err
    assert not (project / "out" / "sprites").exists()


def test_clean_keeps_atlas_files_and_removes_stale_pages(project):
    (project / "assets.yaml").write_text(SPEC.replace("    css: true\n", "    css: true\n    max_size: 96\n"))
    build()
    out = project / "out"
    assert (out / "sprites/icons-1.png").exists()
    (project / "assets.yaml").write_text(SPEC)  # one page again
    build()
    code, text, _ = cli("clean")
    assert code == 0
    assert "removed sprites/icons-1.png" in text and "removed sprites/icons-1.json" in text
    for name in ("icons.png", "icons.json", "icons@2x.png", "icons.css", "gems.png", "gems.json"):
        assert (out / "sprites" / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["path"] for f in manifest["atlases"]["sprites/icons"]["files"]} == {
        "sprites/icons.png", "sprites/icons.json", "sprites/icons@2x.png", "sprites/icons@2x.json",
        "sprites/icons.css"}


def test_clean_without_a_manifest_keeps_every_atlas_file(project):
    build()
    out = project / "out"
    (out / "manifest.json").unlink()
    code, text, _ = cli("clean")
    assert code == 0 and "removed 0 file(s)" in text
    assert (out / "sprites/icons.png").exists()


def test_an_atlas_dropped_from_the_spec_is_cleaned(project):
    build()
    spec = SPEC.replace("  - path: sprites/gems\n    from: [gem-red, \"gem-b*\"]\n    format: array\n", "")
    (project / "assets.yaml").write_text(spec)
    build()
    code, text, _ = cli("clean")
    assert "removed sprites/gems.png" in text and "removed sprites/gems.json" in text
    assert "sprites/gems" not in json.loads((project / "out" / "manifest.json").read_text())["atlases"]


@pytest.mark.parametrize(
    ("atlas", "message"),
    [
        ("{path: sprites/x, from: nothing-*}", "'nothing-*' matches no asset"),
        ("{path: sprites/x, from: hero, scales: [2]}", "asset 'hero' has no output at scale 2"),
        ("{path: gems/red, from: hero}", "would write gems/red.png, an output of asset 'gem-red'"),
        ("{path: sprites/x.png, from: hero}", "has an extension"),
        ("{path: ../x, from: hero}", "contains '..'"),
        ("{path: manifest, from: hero}", "recraft-build's own file"),
        ("{path: sprites/icons, from: hero}", "is also atlases[0]'s"),
        ("{path: sprites/x, from: hero, max_size: 1000, power_of_two: true}", "not a power of two"),
        ("{path: sprites/x, from: hero, padding: -1}", "padding"),
        ("{path: sprites/x, form: hero}", "form"),
    ],
)
def test_atlas_spec_problems_are_placed(project, atlas, message):
    (project / "assets.yaml").write_text(SPEC.replace("atlases:\n", f"atlases:\n  - {atlas}\n", 1)
                                         .replace("  - path: sprites/icons\n", "  - path: sprites/icons\n", 1))
    code, _, err = cli("validate")
    assert code == 3
    assert message in err
    assert "assets.yaml:" in err


def test_an_asset_without_raster_output_cannot_be_a_frame(project):
    spec = SPEC + """\
  - name: logo
    prompt: a logo
    style: vector_illustration
    output: logo.svg
"""
    (project / "assets.yaml").write_text(spec.replace("    format: array\n", "    format: array\n"
                                                      "  - {path: sprites/logo, from: logo}\n"))
    code, _, err = cli("validate")
    assert code == 3 and "asset 'logo' has no raster output" in err
