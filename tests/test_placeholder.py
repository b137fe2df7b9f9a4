"""Tests for recraft_build.providers.placeholder: offline, deterministic, marked pictures."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import resvg_py
from PIL import Image

from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import RequestRejected
from recraft_build.providers.base import OPERATIONS
from recraft_build.providers.placeholder import PlaceholderProvider

PROMPT = "flat game icon of a sword in a cozy fantasy village, plain white background"


def _request(**kw) -> GenerationRequest:
    kw.setdefault("model", "recraftv3")
    kw.setdefault("prompt", PROMPT)
    return GenerationRequest(**kw)


def _generate(**kw) -> list[Picture]:
    return list(PlaceholderProvider().generate(_request(**kw), asset="icon-sword").pictures)


def _rgb(picture: Picture) -> Image.Image:
    image = Image.open(io.BytesIO(picture.data))
    assert image.format == "PNG"
    return image.convert("RGB")


def _border_uniformity(image: Image.Image, fraction: float = 0.03) -> float:
    """Share of the pixels in an outer strip equal to the top-left corner pixel."""
    w, h = image.size
    band = max(1, int(min(w, h) * fraction))
    corner = image.getpixel((0, 0))
    px = image.load()
    same = total = 0
    for y in range(h):
        xs = range(w) if (y < band or y >= h - band) else [*range(band), *range(w - band, w)]
        for x in xs:
            total += 1
            same += px[x, y] == corner
    return same / total


def test_provider_identity() -> None:
    provider = PlaceholderProvider()
    assert provider.name == "placeholder"
    assert PlaceholderProvider(name="offline").name == "offline"
    assert provider.family == "placeholder"
    assert provider.paid is False
    assert not any(provider.supports(op) for op in OPERATIONS)


def test_transform_is_refused_so_steps_run_locally() -> None:
    picture = _generate()[0]
    with pytest.raises(RequestRejected, match="not supported"):
        PlaceholderProvider().transform("remove_background", picture, {}, asset="a")


def test_same_request_same_bytes() -> None:
    first = _generate(n=2)
    second = PlaceholderProvider().generate(_request(n=2), asset="another-name").pictures
    assert [p.data for p in first] == [p.data for p in second]
    assert [p.meta for p in first] == [p.meta for p in second]


def test_same_bytes_in_a_fresh_interpreter() -> None:
    # Catches anything seeded from the process (hash randomisation, time, ids).
    code = (
        "import hashlib;"
        "from recraft_build.domain import GenerationRequest as G;"
        "from recraft_build.providers.placeholder import PlaceholderProvider as P;"
        f"r = G(model='recraftv3', prompt={PROMPT!r}, n=2, controls={{'colors': ['#112233']}});"
        "print(' '.join(hashlib.sha256(p.data).hexdigest() for p in P().generate(r, asset='x').pictures))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.split()
    here = [
        hashlib.sha256(p.data).hexdigest()
        for p in _generate(n=2, controls={"colors": ["#112233"]})
    ]
    assert out == here


def test_request_changes_change_the_picture() -> None:
    base = _generate()[0].data
    assert _generate(prompt=PROMPT + " at dusk")[0].data != base
    assert _generate(model="recraftv2")[0].data != base
    assert _generate(seed=7)[0].data != base
    assert _generate(substyle="pixel_art")[0].data != base


def test_more_candidates_keep_the_first_ones() -> None:
    one = _generate(n=1)
    three = _generate(n=3)
    assert three[0].data == one[0].data


@pytest.mark.parametrize(
    "kw, size",
    [
        ({}, (1024, 1024)),
        ({"size": "1820x1024"}, (1820, 1024)),
        ({"size": "1024x1820"}, (1024, 1820)),
        ({"size": "64x64"}, (64, 64)),
        ({"aspect_ratio": "16:9"}, _request(aspect_ratio="16:9").width_height()),
    ],
)
def test_raster_has_the_requested_size(kw: dict, size: tuple[int, int]) -> None:
    (picture,) = _generate(**kw)
    assert picture.media_type == "image/png"
    assert not picture.is_svg
    assert _rgb(picture).size == size


def test_n_candidates_differ_visibly() -> None:
    pictures = _generate(n=6)
    assert len(pictures) == 6
    assert len({p.data for p in pictures}) == 6
    centres = [_rgb(p).getpixel((512, 512)) for p in pictures]
    assert len(set(centres)) == 6  # each candidate's object has its own colour
    seeds = [p.meta["seed"] for p in pictures]
    assert len(set(seeds)) == 6


def test_picture_is_marked_not_blank_and_has_a_plain_border() -> None:
    (picture,) = _generate(size="1024x768")
    image = _rgb(picture)
    assert picture.meta["placeholder"] is True
    int(picture.meta["seed"], 16)
    assert _border_uniformity(image) >= 0.99
    corner = image.getpixel((0, 0))
    centre = image.getpixel((512, 384))
    assert centre != corner  # a central object on the background
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) >= 3
    background_share = max(count for count, _ in colours) / (1024 * 768)
    assert 0.3 < background_share < 0.95
    # Text is drawn in the top band (the PLACEHOLDER mark) and the bottom band (the prompt).
    top = image.crop((0, 0, 1024, 140))
    bottom = image.crop((0, 600, 1024, 768))
    assert len(top.getcolors(maxcolors=1 << 16) or []) >= 2
    assert len(bottom.getcolors(maxcolors=1 << 16) or []) >= 2
    assert b"placeholder" in picture.data.lower()  # PNG text chunk says so too


def test_light_plain_background_by_default() -> None:
    for picture in _generate(n=3):
        image = _rgb(picture)
        r, g, b = image.getpixel((0, 0))
        assert min(r, g, b) >= 200
        assert _border_uniformity(image) >= 0.99


def test_controls_colours_are_used() -> None:
    pictures = _generate(
        n=2, controls={"colors": ["#ef233c", "#2b2d42"], "background_color": "#ffffff"}
    )
    first, second = (_rgb(p) for p in pictures)
    assert first.getpixel((0, 0)) == (255, 255, 255)
    assert first.getpixel((512, 512)) == (0xEF, 0x23, 0x3C)
    assert second.getpixel((512, 512)) == (0x2B, 0x2D, 0x42)


def test_dark_background_still_shows_the_object() -> None:
    (picture,) = _generate(controls={"background_color": "#000000", "colors": ["#000000"]})
    image = _rgb(picture)
    assert image.getpixel((0, 0)) == (0, 0, 0)
    assert image.getpixel((512, 512)) != (0, 0, 0)


@pytest.mark.parametrize("key", ["#ff00ff", "#00ff00"])
def test_a_key_background_is_honoured_and_keys_out_cleanly(key) -> None:
    # remove_background {key: auto} asks for a key colour: the offline preview draws on
    # it, with objects clear of the key and its shadows, so keying them out leaves
    # the object whole (colours near the key would be taken for background).
    import numpy as np

    from recraft_build.steps.background import remove_background
    from recraft_build.steps.keycolor import hex_rgb, key_distance

    pictures = _generate(n=6, size="256x256", controls={"background_color": key,
                                                        "colors": ["#c020c0", "#20c040"]})
    for picture in pictures:
        image = _rgb(picture)
        assert image.getpixel((0, 0)) == hex_rgb(key)
        colours = {c for _, c in image.getcolors(maxcolors=16)}
        assert all(key_distance(c, hex_rgb(key)) >= 100 for c in colours if c != hex_rgb(key))
        cut = np.asarray(remove_background(image, {"key": key}))
        assert cut[128, 128, 3] == 255 and cut[0, 0, 3] == 0


def test_vector_request_gives_svg_with_viewbox() -> None:
    pictures = _generate(style="vector_illustration", size="1820x1024", prompt="a <shield> & potion", n=2)
    assert len({p.data for p in pictures}) == 2
    for picture in pictures:
        assert picture.media_type == "image/svg+xml" and picture.is_svg
        root = ET.fromstring(picture.data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("viewBox") == "0 0 1820 1024"
        text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
        assert "PLACEHOLDER" in text
        assert "a <shield> & potion" in text
        png = bytes(resvg_py.svg_to_bytes(svg_string=picture.data.decode("utf-8")))
        assert Image.open(io.BytesIO(png)).size == (1820, 1024)


def test_vector_model_gives_svg() -> None:
    (picture,) = _generate(model="recraftv4_vector")
    assert picture.is_svg
    assert _generate(model="recraftv4_vector")[0].data == picture.data


def test_long_prompt_is_wrapped_and_cut() -> None:
    long_prompt = " ".join(["word"] * 300) + " " + "x" * 400
    (svg,) = _generate(prompt=long_prompt, style="icon")
    root = ET.fromstring(svg.data)
    lines = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert len(lines) <= 5  # title, at most three prompt lines, footer
    assert any(line.endswith("…") for line in lines)
    (png,) = _generate(prompt=long_prompt)
    assert _border_uniformity(_rgb(png)) >= 0.99


def test_odd_prompts_do_not_break_it() -> None:
    for prompt in ["", "épée ☃ 剣", "a" * 2000, "line\nbreaks\tand  spaces"]:
        (picture,) = _generate(prompt=prompt)
        assert _rgb(picture).size == (1024, 1024)


@pytest.mark.parametrize("kw", [{"size": "0x10"}, {"size": "99999x10"}, {"size": "axb"}, {"n": 0}])
def test_impossible_requests_are_rejected(kw: dict) -> None:
    with pytest.raises(RequestRejected) as err:
        _generate(**kw)
    assert "icon-sword" in str(err.value)
    assert err.value.provider == "placeholder"


def test_result_costs_nothing() -> None:
    result = PlaceholderProvider().generate(_request(n=2), asset="a")
    assert result.credits == 0
    assert len(result.pictures) == 2


# -- speed without new bytes ---------------------------------------------------------


def _drawn_in_one_pass(request: GenerationRequest, index: int) -> bytes:
    """The picture as the provider drew it before the fixed layer was cached: every
    shape and text drawn in order on one image (the reference for the bytes)."""
    from PIL import ImageDraw, PngImagePlugin

    from recraft_build.providers import placeholder as ph

    width, height = request.width_height()
    base = ph._request_seed(request)
    seed_hex = ph._candidate_seed(base, index)[:8].hex()
    look, lay = ph._look(request, base, index), ph._layout(width, height)
    image = Image.new("P", (width, height), ph._BG)
    image.putpalette([*look.background, *look.fill, *look.edge, *look.ink])
    draw = ImageDraw.Draw(image)
    cx, cy, r = lay.cx, lay.cy, lay.radius
    outline = max(1, round(r / 18))
    if look.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ph._FILL, outline=ph._EDGE, width=outline)
    elif look.shape == "rounded_square":
        s = r * 0.86
        draw.rounded_rectangle((cx - s, cy - s, cx + s, cy + s), radius=s * 0.25, fill=ph._FILL,
                               outline=ph._EDGE, width=outline)
    else:
        draw.polygon(ph._shape_points(look.shape, cx, cy, r), fill=ph._FILL, outline=ph._EDGE, width=outline)
    if lay.title_size:
        inner_w = lay.width - 2 * lay.margin
        ph._centered(draw, ph._TITLE, ph._font(lay.title_size), lay, lay.title_top, inner_w)
        body_font = ph._font(lay.body_size)
        y = lay.body_top
        for line in ph._wrap(request.prompt.split(), lambda t: body_font.getlength(t) <= inner_w, lay.max_lines):
            ph._centered(draw, line, body_font, lay, y, inner_w)
            y += lay.body_size * 1.25
        ph._centered(draw, f"candidate {index} · {width}x{height}", ph._font(lay.foot_size), lay, y, inner_w)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "recraft-build placeholder")
    info.add_text("Comment", f"PLACEHOLDER seed {seed_hex}: {request.prompt}")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1, optimize=False, pnginfo=info)
    return out.getvalue()


@pytest.mark.parametrize(
    "prompt,size",
    [
        (PROMPT, "1024x1024"),
        ("a game icon number i7", "1024x1024"),
        ("wide banner of a cozy fantasy village at dusk, " * 6, "1820x1024"),  # cut with an ellipsis
        ("x" * 300, "300x120"),  # one word wider than the line
        ("", "512x512"),
        ("tiny", "64x64"),  # no text at all
    ],
)
def test_pictures_keep_their_bytes_while_drawn_faster(prompt: str, size: str) -> None:
    # A lock pins a placeholder picture's digest: drawing the fixed parts once per
    # size and shape (and wrapping with fewer measures) must not move a byte, or every
    # --frozen build of a placeholder lock would start to fail.
    request = _request(prompt=prompt, size=size, n=6)
    for _round in range(2):  # the second round draws over the cached layers
        pictures = PlaceholderProvider().generate(request, asset="x").pictures
        assert [p.data for p in pictures] == [_drawn_in_one_pass(request, i) for i in range(6)]


def test_a_pictures_pixels_are_what_its_bytes_decode_to() -> None:
    # The executor hands these pixels to the first step instead of decoding the bytes
    # again: both must give the step the same picture.
    from recraft_build.steps.images import decode, picture_size

    for size in ("1024x1024", "1820x1024", "64x64"):
        for pic in _generate(size=size, n=6, controls={"colors": ["#ff0000", "#0000ff"]}):
            assert pic.pixels is not None
            bare = Picture(pic.data, pic.media_type)
            a, b = decode(pic), decode(bare)
            assert (a.mode, a.size, a.tobytes()) == (b.mode, b.size, b.tobytes())
            assert picture_size(pic) == picture_size(bare)
            assert a is not pic.pixels  # the caller may change what decode gives
