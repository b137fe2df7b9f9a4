"""Input pictures in the spec: recraft_build.spec.inputs (image, operation, strength, mask)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from recraft_build.domain import FILE_MODEL
from recraft_build.engine import keys
from recraft_build.errors import SpecError
from recraft_build.spec.loader import parse_spec

HEAD = """\
version: 1
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024, n: 2,
           controls: {colors: ["#112233"]}}
assets:
  - {name: knight, prompt: a knight, output: knight.png}
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "art").mkdir()
    Image.new("RGB", (300, 300), (200, 30, 30)).save(tmp_path / "art" / "sketch.png")
    Image.new("L", (300, 300), 0).save(tmp_path / "art" / "mask.png")
    (tmp_path / "art" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8" viewBox="0 0 8 8"/>')
    (tmp_path / "art" / "notes.txt").write_text("not a picture")
    return tmp_path


def load(base: Path, assets: str):
    return parse_spec(HEAD + textwrap.indent(textwrap.dedent(assets), "  "), "assets.yaml", base_dir=base)


def by_name(spec):
    return {a.name: a for a in spec.assets}


def errors(base: Path, assets: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(base, assets)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_an_asset_that_is_a_file_takes_nothing_from_defaults(base):
    spec = load(base, """\
      - name: sketch
        image: {file: art/sketch.png}
        steps: [trim]
        output: sketch.png
      - {name: logo, image: {file: art/logo.svg}, output: logo.svg}
    """)
    sketch = by_name(spec)["sketch"]
    assert sketch.from_file and sketch.image.file == "art/sketch.png"
    assert sketch.request.model == FILE_MODEL and sketch.request.prompt == ""
    assert sketch.request.size is None and sketch.request.n == 1 and sketch.request.controls is None
    assert [s.name for s in sketch.steps] == ["trim"]
    # an SVG file is a vector picture: written as .svg without a vectorize step
    assert by_name(spec)["logo"].outputs[0].format == "svg"


def test_a_file_asset_refuses_its_own_generation_fields(base):
    out = errors(base, """\
      - {name: sketch, image: {file: art/sketch.png}, size: 1024x1024, n: 2, output: s.png}
    """)
    assert out == ["assets[1].size: a picture from a file takes no size",
                   "assets[1].n: a picture from a file takes no n"]


def test_an_operation_takes_the_defaults_it_can_use_and_leaves_the_others(base):
    spec = load(base, """\
      - name: night
        image: {asset: knight}
        strength: 1
        prompt: at night
        output: night.png
      - {name: forest, image: {asset: knight}, operation: replace_background, prompt: a forest, output: f.png}
      - {name: more, image: {asset: knight}, operation: variate, output: more.png}
    """)
    night, forest, more = (by_name(spec)[n] for n in ("night", "forest", "more"))
    assert night.request.operation == "image_to_image"
    assert night.request.strength == 1.0 and isinstance(night.request.strength, float)
    # image_to_image keeps its input's size, takes style, n and controls
    assert night.request.size is None and night.request.style == "digital_illustration"
    assert night.request.n == 2 and night.request.controls == {"colors": ["#112233"]}
    # replace_background takes no controls
    assert forest.request.controls is None and forest.request.operation == "replace_background"
    # variate takes size, n and seed, no style or prompt
    assert more.request.size == "1024x1024" and more.request.style is None and more.request.prompt == ""


def test_strength_written_as_an_integer_gives_the_same_key(base):
    one = by_name(load(base, "  - {name: c, image: {asset: knight}, strength: 1, prompt: x, output: c.png}\n"))["c"]
    other = by_name(load(base, "  - {name: c, image: {asset: knight}, strength: 1.0, prompt: x, output: c.png}\n"))["c"]
    assert keys.generation_key("recraft", one.request) == keys.generation_key("recraft", other.request)


def test_operation_rules(base):
    out = errors(base, """\
      - {name: a, operation: inpaint, prompt: x, output: a.png}
      - {name: b, image: {asset: knight}, prompt: x, output: b.png}
      - {name: c, image: {asset: knight}, operation: variate, prompt: x, output: c.png}
      - {name: d, image: {asset: knight}, operation: inpaint, prompt: x, output: d.png}
      - {name: e, image: {asset: knight}, strength: 0.2, mask: {file: art/mask.png}, prompt: x, output: e.png}
      - {name: f, image: {asset: knight}, operation: inpaint, output: f.png, mask: {file: art/mask.png}}
      - {name: g, image: {asset: knight}, operation: variate, negative_prompt: blur, output: g.png}
      - {name: h, image: {asset: knight}, operation: replace_background, prompt: x, model: recraftv4, style: null, output: h.png}
      - {name: i, image: {asset: knight}, prompt: x, model: flux-kontext-pro, strength: 0.5, style: null, output: i.png}
    """)
    assert out == [
        "assets[1].operation: operation needs an input picture",
        "assets[2]: image_to_image on recraftv3 needs strength",
        "assets[3].prompt: operation variate takes no prompt",
        "assets[4]: operation inpaint needs a mask",
        "assets[5].mask: operation image_to_image on recraftv3 takes no mask",
        "assets[6]: operation inpaint needs a prompt",
        "assets[7].negative_prompt: operation variate on recraftv3 takes no negative_prompt",
        "assets[8].operation: model recraftv4 does not run operation replace_background",
        "assets[9].strength: operation image_to_image on flux-kontext-pro takes no strength",
    ]


def test_an_asset_made_from_another_asset_needs_a_prompt(base):
    (line,) = errors(base, "  - {name: a, image: {asset: knight}, output: a.png}\n")
    assert line == "assets[1].image: an asset made from another asset needs a prompt"


def test_input_files_stay_inside_the_spec_folder_and_are_pictures(base, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    Image.new("RGB", (300, 300)).save(outside / "secret.png")
    os.symlink(outside / "secret.png", base / "art" / "link.png")
    os.symlink(base / "art" / "sketch.png", base / "art" / "inside.png")
    out = errors(base, """\
      - {name: a, image: {file: ../x.png}, output: a.png}
      - {name: b, image: {file: /etc/passwd.png}, output: b.png}
      - {name: c, image: {file: art/missing.png}, output: c.png}
      - {name: d, image: {file: art/link.png}, output: d.png}
      - {name: e, image: {file: art/notes.txt}, output: e.png}
      - {name: f, image: {file: art/logo.svg}, strength: 0.3, prompt: x, output: f.png}
      - {name: g, image: {file: art/inside.png}, output: g.png}
    """)
    assert out == [
        "assets[1].image.file: file '../x.png' contains '..'",
        "assets[2].image.file: file '/etc/passwd.png' is absolute",
        "assets[3].image.file: picture file not found: art/missing.png",
        "assets[4].image.file: file 'art/link.png' leaves the spec's folder (a link?)",
        "assets[5].image.file: file 'art/notes.txt' is not a png, jpg, webp or svg picture",
        "assets[6].image.file: file 'art/logo.svg' is not a png, jpg or webp picture",
    ]


def test_image_takes_exactly_one_source(base):
    (line,) = errors(base, "  - {name: a, image: {asset: knight, file: art/sketch.png}, prompt: x, output: a.png}\n")
    assert line == "assets[1].image: give only one of asset or file"


def test_flux_models(base):
    spec = load(base, """\
      - name: banner
        model: flux-1.1-pro
        style: null              # the defaults are for Recraft's models
        controls: null
        prompt: a painted banner
        aspect_ratio: "16:9"
        output: b.png
    """)
    banner = by_name(spec)["banner"]
    assert banner.request.model == "flux-1.1-pro" and banner.request.aspect_ratio == "16:9"
    out = errors(base, """\
      - {name: a, model: flux-1.1-pro-ultra, style: null, controls: null, prompt: x, aspect_ratio: "21:9", seed: 7, output: a.png}
      - {name: b, model: flux-1.1-pro, controls: null, prompt: x, aspect_ratio: "16:9", n: 1, output: b.png}
    """)
    assert sorted(out) == [
        "assets[1].seed: model flux-1.1-pro-ultra makes one picture per call: a seed with n: 2 would repeat it",
        # a style from defaults is placed there, naming the asset it is wrong for
        "defaults.style: model flux-1.1-pro takes no style (asset 'b')",
    ]
