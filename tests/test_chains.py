"""Builds along the asset graph (engine.chains, engine.graphplan, engine.inputs), end to
end through the command line, against the local fake Recraft/Replicate server (which
counts paid calls) and offline with the placeholder.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fakeserver import FakeServer, use_fake_recraft
from recraft_build import api
from recraft_build.cli import main
from recraft_build.engine.results import NullReporter

TOKEN = "sk-chain-test-token"
ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: knight
    prompt: a knight
    n: 2
    output: knight.png
  - name: knight-night
    image: {asset: knight}
    strength: 0.4
    prompt: the knight at night
    output: night.png
  - name: poster
    image: {asset: knight-night}
    operation: replace_background
    prompt: a starry sky
    output: poster.png
  - name: dragon
    prompt: a dragon
    output: dragon.png
  - name: dragon-more
    image: {asset: dragon}
    operation: variate
    output: dragon-more.png
"""
CHILDREN_OF_KNIGHT = {"knight-night", "poster"}


def cli(*args: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    data = json.loads(out.getvalue()) if "--json" in args and out.getvalue().strip() else None
    return code, data, err.getvalue()


def statuses(data: dict) -> dict[str, str]:
    return {a["name"]: a["status"] for a in data["assets"]}


def lock(root: Path) -> dict:
    return json.loads((root / "assets.lock").read_text())["assets"]


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as s:
        yield s


@pytest.fixture
def project(tmp_path, monkeypatch, server):
    use_fake_recraft(monkeypatch, server, tmp_path / "cache")
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "assets.yaml").write_text(SPEC)
    return root


def test_a_chain_is_built_parents_first_and_a_child_records_its_input(project, server):
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert set(statuses(data).values()) == {"generated"}
    assert server.counts["generations"] == 2 and server.counts["edits"] == 3
    entries = lock(project)
    knight = entries["knight"]["generation"]
    night = entries["knight-night"]["generation"]
    # the child's key holds the digest of the parent's picked picture; the lock says which
    assert night["request"]["image"] == knight["candidates"][knight["pick"]]["sha256"]
    assert night["request"]["operation"] == "image_to_image" and night["request"]["strength"] == 0.4
    poster = entries["poster"]["generation"]
    assert poster["request"]["image"] == night["candidates"][0]["sha256"]
    # what the server received: the parent's picture, as a file
    edits = {e["fields"]["prompt"]: e for e in server.bodies["edit"] if "prompt" in e["fields"]}
    assert edits["the knight at night"]["op"] == "image_to_image"
    assert edits["the knight at night"]["files"] == ["image"]
    assert edits["the knight at night"]["fields"]["strength"] == "0.4"
    before = len(server.requests)
    code, data, _ = cli("build", "--json")
    assert code == 0 and set(statuses(data).values()) == {"up-to-date"}
    assert len(server.requests) == before  # a no-op build makes no call


def test_re_picking_the_parent_regenerates_exactly_its_children(project, server):
    assert cli("build")[0] == 0
    before = lock(project)
    paid = server.paid_calls
    code, _, err = cli("pick", "knight", "1")
    assert code == 0, err
    assert server.paid_calls == paid  # a pick is free

    code, data, err = cli("plan", "--json")
    planned = {a["name"]: a for a in data["assets"]}
    assert {n for n, a in planned.items() if a["status"] != "up-to-date"} == CHILDREN_OF_KNIGHT
    assert planned["knight-night"]["reasons"] == ["changed: image"]

    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert {n for n, s in statuses(data).items() if s == "generated"} == CHILDREN_OF_KNIGHT
    assert {n for n, s in statuses(data).items() if s == "up-to-date"} == {"knight", "dragon", "dragon-more"}
    assert server.paid_calls == paid + 2 and server.counts["generations"] == 2
    after = lock(project)
    for name in ("dragon", "dragon-more"):
        assert after[name] == before[name]
    knight = after["knight"]["generation"]
    assert after["knight-night"]["generation"]["request"]["image"] == knight["candidates"][1]["sha256"]


def test_editing_a_child_regenerates_it_and_what_is_made_from_it_never_its_parent(project, server):
    assert cli("build")[0] == 0
    before = lock(project)
    (project / "assets.yaml").write_text(SPEC.replace("prompt: a starry sky", "prompt: a red sky"))
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert {n for n, s in statuses(data).items() if s != "up-to-date"} == {"poster"}
    after = lock(project)
    assert {n for n in after if after[n] != before[n]} == {"poster"}

    (project / "assets.yaml").write_text(SPEC.replace("the knight at night", "the knight at dusk"))
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert {n for n, s in statuses(data).items() if s == "generated"} == {"knight-night", "poster"}
    assert lock(project)["knight"] == before["knight"]  # the parent is untouched


def test_a_parent_made_in_the_same_build_plans_its_children_after_it(project, server):
    code, data, err = cli("plan", "--json")
    assert code == 0, err
    assert [a["name"] for a in data["assets"]] == ["knight", "knight-night", "poster", "dragon", "dragon-more"]
    night = data["assets"][1]
    assert night["status"] == "generate" and night["key"] is None and night["after"] == ["knight"]
    assert night["inputs"] == {"image": {"asset": "knight"}} and night["operation"] == "image_to_image"
    assert night["credits"] == 40  # priced although its key is not known yet
    assert data["summary"]["credits"] == 80 + 40 * 4
    # --max-credits counts the children: refused before any call
    code, _, err = cli("build", "--max-credits", "100")
    assert code == 3 and "--max-credits" in err
    assert server.paid_calls == 0


def test_a_target_brings_in_what_it_is_made_from_that_is_not_up_to_date(project, server):
    code, data, err = cli("build", "poster", "--json")
    assert code == 0, err
    assert [a["name"] for a in data["assets"]] == ["knight", "knight-night", "poster"]
    assert server.counts["generations"] == 1  # the dragon was not built
    code, data, _ = cli("plan", "poster", "--json")
    assert [a["name"] for a in data["assets"]] == ["poster"]  # up-to-date parents stay out
    code, data, _ = cli("plan", "dragon-more", "--json")
    assert [(a["name"], a["status"]) for a in data["assets"]] == [("dragon", "generate"), ("dragon-more", "generate")]


def test_a_failed_parent_skips_its_children_and_the_other_branch_is_built(project, server):
    server.add_fault("generate", "status", status=422, body="prompt refused", times=1)
    code, data, err = cli("build", "--json", "--keep-going", "-j", "1")
    assert code == 1
    got = statuses(data)
    assert got["knight"] == "failed"
    assert got["knight-night"] == got["poster"] == "skipped"
    assert got["dragon"] == got["dragon-more"] == "generated"
    assert server.counts["edits"] == 1  # only the dragon's child was paid for


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def asset_started(self, name: str, status: str) -> None:
        self.events.append(("start", name))

    def asset_finished(self, result) -> None:
        self.events.append(("end", result.name))


def test_children_start_after_their_parents_finish_with_parallel_jobs(project, server):
    reporter = Recorder()
    result = api.build(project / "assets.yaml", jobs=4, reporter=reporter)
    assert not result.failed
    at = {event: i for i, event in enumerate(reporter.events)}
    for parent, child in (("knight", "knight-night"), ("knight-night", "poster"), ("dragon", "dragon-more")):
        assert at[("end", parent)] < at[("start", child)]


def test_frozen_restores_a_whole_chain_from_a_folder_remote_with_zero_paid_calls(project, server, tmp_path):
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    code, _, err = cli("build", "--remote-cache", str(shared))
    assert code == 0, err
    paid = server.paid_calls
    ci = tmp_path / "ci"
    ci.mkdir()
    shutil.copy(project / "assets.yaml", ci / "assets.yaml")
    shutil.copy(project / "assets.lock", ci / "assets.lock")
    code, data, err = cli("build", "-f", str(ci / "assets.yaml"), "--cache-dir", str(tmp_path / "ci-cache"),
                          "--remote-cache", shared.as_uri(), "--remote-cache-mode", "read", "--frozen", "--json")
    assert code == 0, err
    assert set(statuses(data).values()) == {"restored"}
    assert server.paid_calls == paid  # zero paid calls on the second machine
    for name in ("knight.png", "night.png", "poster.png", "dragon-more.png"):
        assert (ci / "out" / name).read_bytes() == (project / "out" / name).read_bytes()


def test_a_child_of_a_pinned_picture_in_no_cache_is_refused(project, server, tmp_path):
    assert cli("build")[0] == 0
    shutil.rmtree(tmp_path / "cache")  # the outputs stay, so the knight is up to date
    (project / "assets.yaml").write_text(SPEC.replace("the knight at night", "the knight at dawn"))
    paid = server.paid_calls
    code, _, err = cli("build")
    assert code == 3
    assert "knight (" in err and "no cache" in err
    assert server.paid_calls == paid


FILE_SPEC = """\
version: 1
output_dir: out
assets:
  - name: sketch
    image: {file: art/sketch.png}
    steps: [{resize: {width: 300}}]
    outputs:
      - path: sketch.png
      - path: sketch.webp
  - name: sketch-bg
    image: {asset: sketch}
    operation: generate_background
    mask: {file: art/mask.png}
    prompt: a stone wall
    output: sketch-bg.png
"""


def draw_sketch(path: Path, colour: tuple[int, int, int]) -> None:
    img = Image.new("RGB", (600, 400), (255, 255, 255))
    img.paste(colour, (150, 100, 450, 300))
    img.save(path)


def test_a_file_asset_builds_with_zero_calls_and_a_new_file_rebuilds_its_children(project, server):
    (project / "art").mkdir()
    draw_sketch(project / "art" / "sketch.png", (200, 40, 40))
    mask = Image.new("L", (600, 400), 255)
    mask.paste(60, (150, 100, 450, 300))  # soft gray: rounded to black before it is sent
    mask.save(project / "art" / "mask.png")
    (project / "assets.yaml").write_text(FILE_SPEC)
    code, data, err = cli("build", "sketch", "--json")
    assert code == 0, err
    assert statuses(data) == {"sketch": "restored"}
    assert server.counts["requests"] == 0  # not a single call
    with Image.open(project / "out" / "sketch.png") as im:
        assert im.size == (300, 200) and im.getpixel((150, 100))[:3] == (200, 40, 40)
    gen = lock(project)["sketch"]["generation"]
    assert gen["credits"] == 0 and gen["request"]["operation"] == "file"

    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert statuses(data) == {"sketch": "up-to-date", "sketch-bg": "generated"}
    (edit,) = server.bodies["edit"]
    assert edit["op"] == "generate_background" and edit["files"] == ["image", "mask"]

    draw_sketch(project / "art" / "sketch.png", (40, 40, 200))
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert statuses(data) == {"sketch": "restored", "sketch-bg": "generated"}
    assert server.counts["edits"] == 2 and server.counts["generations"] == 0


def test_every_recraft_operation_through_the_fake_server(project, server):
    (project / "art").mkdir()
    Image.new("L", (1024, 1024), 0).save(project / "art" / "mask.png")
    (project / "assets.yaml").write_text("""\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - {name: base, prompt: a castle, output: base.png}
  - {name: i2i, image: {asset: base}, strength: 0.7, n: 2, seed: 5, prompt: in snow, output: i2i.png}
  - {name: bg, image: {asset: base}, operation: replace_background, prompt: a desert, output: bg.png}
  - {name: gen-bg, image: {asset: base}, operation: generate_background, mask: {file: art/mask.png}, prompt: sea, output: gbg.png}
  - {name: paint, image: {asset: base}, operation: inpaint, mask: {file: art/mask.png}, prompt: a flag, output: paint.png}
  - {name: more, image: {asset: base}, operation: variate, aspect_ratio: "16:9", n: 3, output: more.png}
""")
    code, data, err = cli("build", "--json")
    assert code == 0, err
    sent = {e["op"]: e for e in server.bodies["edit"]}
    assert set(sent) == {"image_to_image", "replace_background", "generate_background", "inpaint", "variate"}
    assert sent["image_to_image"]["fields"]["n"] == "2" and sent["image_to_image"]["fields"]["random_seed"] == "5"
    assert sent["variate"]["fields"]["size"] == "1820x1024" and "prompt" not in sent["variate"]["fields"]
    assert "size" not in sent["replace_background"]["fields"]  # the picture keeps its input's size
    assert sent["inpaint"]["files"] == ["image", "mask"]
    assert data["summary"]["credits"] == 40 + 80 + 40 + 40 + 40 + 120
    gen = lock(project)
    assert len(gen["more"]["generation"]["candidates"]) == 3
    assert gen["more"]["generation"]["candidates"][0]["width"] == 1820


FLUX_SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: vector_illustration}
assets:
  - name: icon
    prompt: a flat shield icon
    aspect_ratio: "1:1"
    output: icon.svg
  - name: banner
    model: flux-1.1-pro
    style: null
    prompt: a painted banner of a harbour
    aspect_ratio: "16:9"
    output: banner.png
  - name: banner-night
    model: flux-kontext-pro
    style: null
    image: {asset: banner}
    prompt: the same harbour at night
    output: banner-night.png
"""


def test_flux_through_replicate_beside_recraft_icons(project, server, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN")
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.setenv("REPLICATE_API_BASE", server.replicate_base)
    (project / "assets.yaml").write_text(FLUX_SPEC)
    # Recraft's API runs no FLUX model: refused with the line, before any call
    code, _, err = cli("validate", "--provider", "recraft")
    assert code == 3
    assert "assets.yaml:10:12: assets[1].model: asset 'banner': provider recraft (recraft) cannot run model flux-1.1-pro" in err
    code, data, err = cli("build", "--provider", "replicate", "--json")
    assert code == 0, err
    created = {b["model"]: b["input"] for b in server.bodies["create"]}
    assert set(created) == {"recraft-ai/recraft-v3-svg", "black-forest-labs/flux-1.1-pro",
                            "black-forest-labs/flux-kontext-pro"}
    assert created["black-forest-labs/flux-1.1-pro"]["aspect_ratio"] == "16:9"
    kontext = created["black-forest-labs/flux-kontext-pro"]
    assert kontext["input_image"].startswith("data:image/") and kontext["aspect_ratio"] == "match_input_image"
    # Replicate reports no cost: counted at the table's figures (80 vector, 40 + 40)
    assert data["summary"]["credits"] == 160
    # Replicate runs no other image operation: refused before any call
    (project / "assets.yaml").write_text(FLUX_SPEC.replace(
        "    image: {asset: banner}\n", "    image: {asset: banner}\n").replace(
        "model: flux-kontext-pro", "model: recraftv3\n    operation: replace_background"))
    code, _, err = cli("plan", "--provider", "replicate")
    assert code == 3 and "cannot run operation replace_background on model recraftv3" in err


def test_the_character_art_example_builds_offline_with_pictures_made_from_the_parent(tmp_path, monkeypatch):
    for name in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN", "RECRAFT_BUILD_REMOTE_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "character-art", root)
    code, data, err = cli("build", "-f", str(root / "assets.yaml"), "--json")
    assert code == 0, err
    assert set(statuses(data).values()) == {"generated"}
    entries = lock(root)
    knight = entries["knight"]["generation"]["candidates"][0]["sha256"]
    for child in ("knight-night", "knight-forest", "knight-sticker"):
        gen = entries[child]["generation"]
        assert gen["request"]["image"] == knight
        # the placeholder says what it was made from
        assert gen["candidates"][0]["meta"]["made_from"].endswith(f"of {knight[:8]}")
    with Image.open(root / "build" / "characters" / "knight.png") as parent, \
            Image.open(root / "build" / "characters" / "knight-night.png") as child:
        assert parent.size == child.size and parent.convert("RGB").tobytes() != child.convert("RGB").tobytes()
    code, _, err = cli("pick", "-f", str(root / "assets.yaml"), "knight", "2")
    assert code == 0, err
    code, data, err = cli("build", "-f", str(root / "assets.yaml"), "--json")
    assert {n for n, s in statuses(data).items() if s == "generated"} == {"knight-night", "knight-forest",
                                                                          "knight-sticker"}
