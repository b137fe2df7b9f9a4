"""manifest.json, content-hashed names and the TypeScript module: recraft_build.engine.manifests.

Offline (placeholder provider), through the real command line. The TypeScript module is
compiled with ``tsc --noEmit`` (typescript from npm; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clirun import offline_project, run_cli
from recraft_build.engine.manifests import hashed_path, output_scale

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
manifest: {typescript: src/assets.ts}
atlases:
  - {path: sprites/enemies, from: "enemy-*"}
assets:
  - name: "enemy-{{ kind }}"
    matrix:
      kind: [goblin, slime]
      include: [{kind: goblin, tier: 2}]
    tags: [enemy, "kind-{{ kind }}"]
    prompt: "a {{ kind }} enemy sprite"
    outputs:
      - path: "enemies/{{ kind }}.png"
        scales: [1, 2]
        steps: [{resize: {width: 32}}]
  - name: hero
    prompt: "wide banner at dusk"
    size: 1820x1024
    outputs:
      - path: img/hero.webp
      - path: favicon/
        favicon: true
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    return offline_project(tmp_path, monkeypatch, SPEC)


cli = run_cli


def build() -> str:
    code, _, err = cli("build")
    assert code == 0, err
    return err


def manifest(project: Path) -> dict:
    return json.loads((project / "out" / "manifest.json").read_text())


def test_hashed_path_and_scale_rules():
    d = "3f2a9c1e" + "0" * 56
    assert hashed_path("img/hero.webp", d) == "img/hero.3f2a9c1e.webp"
    assert hashed_path("hero.tar.png", d) == "hero.tar.3f2a9c1e.png"
    assert hashed_path("noext", d) == "noext.3f2a9c1e"
    assert output_scale("icons/x@2x.png") == 2 and output_scale("x@1.5x.png") == 1.5
    assert output_scale("icons/x.png") == 1


def test_manifest_lists_tags_matrix_pick_scale_and_atlas_frame(project):
    build()
    data = manifest(project)
    goblin = data["assets"]["enemy-goblin"]
    assert goblin["tags"] == ["enemy", "kind-goblin"]
    assert goblin["matrix"] == {"kind": "goblin", "tier": 2}
    assert goblin["pick"] == 0
    files = {f["logical"]: f for f in goblin["outputs"]}
    assert set(files) == {"enemies/goblin.png", "enemies/goblin@2x.png"}
    one, two = files["enemies/goblin.png"], files["enemies/goblin@2x.png"]
    assert one["path"] == "enemies/goblin.png" and one["scale"] == 1 and two["scale"] == 2
    atlas_json = json.loads((project / "out" / one["atlas"]["json"]).read_text())
    frame = atlas_json["frames"][one["atlas"]["frame"]]["frame"]
    assert one["atlas"]["atlas"] == "sprites/enemies" and one["atlas"]["image"] == "sprites/enemies.png"
    assert [frame[k] for k in "xywh"] == [one["atlas"][k] for k in "xywh"]
    assert two["atlas"]["json"] == "sprites/enemies@2x.json"
    assert data["assets"]["hero"]["tags"] == [] and data["assets"]["hero"]["matrix"] == {}
    assert data["files"]["enemies/goblin.png"] == "enemies/goblin.png"
    assert data["files"]["sprites/enemies.png"] == "sprites/enemies.png"
    assert {f["path"] for f in data["atlases"]["sprites/enemies"]["files"]} == {
        "sprites/enemies.png", "sprites/enemies.json", "sprites/enemies@2x.png", "sprites/enemies@2x.json"}


def test_a_tag_change_alone_rewrites_the_manifest(project):
    build()
    (project / "assets.yaml").write_text(SPEC.replace('"kind-{{ kind }}"', '"type-{{ kind }}"'))
    build()
    assert manifest(project)["assets"]["enemy-slime"]["tags"] == ["enemy", "type-slime"]
    assert '"type-slime"' in (project / "src" / "assets.ts").read_text()


def test_hashed_names_are_written_mapped_and_kept_by_clean_and_status(project):
    (project / "assets.yaml").write_text(SPEC.replace("manifest: {", "manifest: {hashed_names: true, "))
    build()
    out = project / "out"
    data = manifest(project)
    hero = data["assets"]["hero"]["outputs"]
    webp = next(f for f in hero if f["logical"] == "img/hero.webp")
    assert webp["path"] == hashed_path("img/hero.webp", webp["sha256"])
    assert (out / webp["path"]).exists() and not (out / "img/hero.webp").exists()
    assert data["files"]["img/hero.webp"] == webp["path"]
    # A favicon set keeps its names (browsers ask for favicon.ico by name).
    assert (out / "favicon/favicon.ico").exists()
    # Atlas pages are hashed by content; their JSON names the hashed page.
    page = data["files"]["sprites/enemies.png"]
    assert page != "sprites/enemies.png" and (out / page).exists()
    doc = json.loads((out / data["files"]["sprites/enemies.json"]).read_text())
    assert doc["meta"]["image"] == page.rsplit("/", 1)[-1]
    # The lock keeps logical names: toggling the option never changes it.
    lock = json.loads((project / "assets.lock").read_text())
    assert lock["assets"]["hero"]["outputs"][0]["files"][0]["path"] == "img/hero.webp"
    # No-op, status and clean agree with the hashed names.
    stamp = (out / webp["path"]).stat().st_mtime_ns
    code, text, _ = cli("build", "--json")
    assert code == 0 and {a["status"] for a in json.loads(text)["assets"]} == {"up-to-date"}
    assert (out / webp["path"]).stat().st_mtime_ns == stamp
    # build --json says which file each logical output went to
    listed = {o["path"]: o["file"] for a in json.loads(text)["assets"] for o in a["outputs"]}
    assert listed["img/hero.webp"] == webp["path"] and listed["favicon/favicon.ico"] == "favicon/favicon.ico"
    code, text, _ = cli("status")
    assert "stale" not in text
    code, text, _ = cli("clean")
    assert "removed 0 file(s)" in text


def test_turning_hashed_names_on_and_off_rewrites_files_and_clean_removes_the_old(project):
    build()
    out = project / "out"
    (project / "assets.yaml").write_text(SPEC.replace("manifest: {", "manifest: {hashed_names: true, "))
    code, text, err = cli("build", "--json")
    assert code == 0, err
    hero = json.loads(text)["assets"][-1]
    assert hero["name"] == "hero" and hero["status"] == "restored"
    code, text, _ = cli("clean")
    assert "removed img/hero.webp" in text and "removed sprites/enemies.png" in text
    hashed = manifest(project)["files"]["img/hero.webp"]
    (project / "assets.yaml").write_text(SPEC)
    build()
    assert manifest(project)["files"]["img/hero.webp"] == "img/hero.webp"
    assert (out / "img/hero.webp").exists()
    code, text, _ = cli("clean")
    assert f"removed {hashed}" in text


TS_USE = """\
import { assets, asset, atlases, AssetName } from "./assets";

const src: string = assets["enemy-goblin"].src;
const big: number | null = asset("enemy-slime").files["enemies/slime@2x.png"].width;
const frame = assets["enemy-goblin"].frame;
const x: number = frame ? frame.x : 0;
const sheet: string = atlases["sprites/enemies"].json;
const names: AssetName[] = ["hero", "enemy-slime"];
export const used = [src, big, x, sheet, names];
"""


def tsc(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("tsc")
    if exe is None:
        pytest.skip("tsc is not installed (npm install -g typescript; .ci/run installs it)")
    return subprocess.run([exe, "--noEmit", "--strict", "--target", "es2017", *files], cwd=project,
                          capture_output=True, text=True, timeout=300)


def test_the_typescript_module_compiles_and_a_removed_asset_is_a_compile_error(project):
    build()
    module = project / "src" / "assets.ts"
    text = module.read_text()
    assert 'readonly "enemy-goblin": Asset;' in text and 'readonly "hero": Asset;' in text
    (project / "src" / "use.ts").write_text(TS_USE)
    done = tsc(project, "src/use.ts")
    assert done.returncode == 0, done.stdout + done.stderr
    # A key that is not an asset does not compile (index and function forms).
    (project / "src" / "wrong.ts").write_text(
        'import { assets, asset } from "./assets";\n'
        'export const a = assets["enemy-orc"].src;\n'
        'export const b = asset("enemy-orc").src;\n'
    )
    done = tsc(project, "src/wrong.ts")
    assert done.returncode != 0
    assert "enemy-orc" in done.stdout and done.stdout.count("error TS") == 2
    # Remove the asset from the spec: code that still uses it stops compiling.
    (project / "assets.yaml").write_text(SPEC.replace("kind: [goblin, slime]", "kind: [slime]")
                                         .replace("include: [{kind: goblin, tier: 2}]", "include: []"))
    build()
    assert '"enemy-goblin"' not in module.read_text()
    done = tsc(project, "src/use.ts")
    assert done.returncode != 0 and "enemy-goblin" in done.stdout


def test_public_path_prefixes_every_src(project):
    (project / "assets.yaml").write_text(SPEC.replace("manifest: {", "manifest: {public_path: /static/, "))
    build()
    text = (project / "src" / "assets.ts").read_text()
    assert '"src": "/static/img/hero.webp"' in text
    assert '"json": "/static/sprites/enemies.json"' in text


def test_a_deleted_module_is_written_again_by_a_no_op_build(project):
    build()
    module = project / "src" / "assets.ts"
    text = module.read_text()
    module.unlink()
    build()
    assert module.read_text() == text


@pytest.mark.parametrize(("path", "message"), [
    ("../assets.ts", "contains '..'"),
    ("/tmp/assets.ts", "is absolute"),
    ("src/assets.js", "does not end in .ts"),
])
def test_typescript_paths_outside_the_spec_folder_are_refused(project, path, message):
    (project / "assets.yaml").write_text(SPEC.replace("typescript: src/assets.ts", f"typescript: {path}"))
    code, _, err = cli("validate")
    assert code == 3 and message in err and "manifest.typescript" in err


def test_a_symlink_leading_out_of_the_spec_folder_is_refused(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.symlink(elsewhere, project / "src")
    code, _, err = cli("validate")
    assert code == 3 and "leaves the spec's folder" in err
    assert not list(elsewhere.iterdir())


def test_the_module_is_not_written_through_a_symlink(project, tmp_path_factory):
    build()
    module = project / "src" / "assets.ts"
    module.unlink()
    # Pointing outside the spec's folder: refused when the spec is loaded.
    outside = tmp_path_factory.mktemp("victim") / "file.ts"
    outside.write_text("keep me")
    os.symlink(outside, module)
    code, _, err = cli("build")
    assert code == 3 and "leaves the spec's folder" in err
    # Pointing inside it: the file is not written through the link.
    module.unlink()
    inside = project / "notes.ts"
    inside.write_text("keep me too")
    os.symlink(inside, module)
    code, _, err = cli("build")
    assert code == 1 and "is a symlink" in err
    assert outside.read_text() == "keep me" and inside.read_text() == "keep me too"
