"""Tests for recraft_build.steps.registry: the engine's entry point to steps."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from recraft_build.domain import Picture
from recraft_build.errors import RequestRejected, StepError
from recraft_build.providers.base import OPERATIONS, GenerationResult, Provider, TransformResult
from recraft_build.steps import registry
from recraft_build.steps.catalog import STEP_NAMES, scale_params
from recraft_build.steps.images import picture_size
from synthetic_pictures import as_picture, make_icon

SVG = Picture(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 20">'
              b'<rect width="40" height="20" fill="#123456"/></svg>', "image/svg+xml")


class FakeProvider(Provider):
    """Answers tool operations with fixed pictures and counts the calls."""

    name = "fake"
    family = "fake"

    def __init__(self, *, paid: bool = True, operations=OPERATIONS, result: Picture | None = None,
                 credits: float | None = 10):
        self.paid = paid
        self.operations = set(operations)
        self.result = result
        self.credits = credits
        self.calls: list[tuple[str, dict]] = []

    def generate(self, request, *, asset):  # pragma: no cover - not used by steps
        return GenerationResult(pictures=[])

    def supports(self, operation):
        return operation in self.operations

    def transform(self, operation, picture, params, *, asset):
        self.calls.append((operation, dict(params)))
        if self.result is not None:
            return TransformResult(self.result, self.credits)
        if operation == "vectorize":
            return TransformResult(SVG, self.credits)
        img = Image.open(io.BytesIO(picture.data)).convert("RGBA")
        if operation.endswith("upscale"):
            img = img.resize((img.width * 2, img.height * 2))
        else:
            img.putpixel((0, 0), (0, 0, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "WEBP", lossless=True)
        return TransformResult(Picture(buf.getvalue(), "image/webp", {"image_id": "abc"}), self.credits)


def icon() -> Picture:
    return make_icon("white", 1, 96, codec="png")[0]


# --------------------------------------------------------------------------- engines


def test_step_versions_cover_every_catalogued_step():
    assert set(registry.STEP_VERSIONS) == set(STEP_NAMES)
    assert all(isinstance(v, int) and v >= 1 for v in registry.STEP_VERSIONS.values())
    assert isinstance(registry.EXPORT_VERSION, int)


@pytest.mark.parametrize(
    ("name", "params", "provider", "engine"),
    [("remove_background", {}, None, "local"),
     # auto is local wherever a local engine exists, whoever the provider is (issue 11)
     ("remove_background", {}, FakeProvider(), "local"),
     ("remove_background", {"engine": "provider"}, FakeProvider(), "provider"),
     ("remove_background", {"engine": "auto"}, FakeProvider(operations=()), "local"),
     ("remove_background", {"engine": "local"}, FakeProvider(), "local"),
     ("vectorize", {"engine": "provider"}, None, "provider"),
     ("upscale", {}, FakeProvider(paid=False), "provider"),
     ("upscale", {"mode": "creative"}, FakeProvider(operations={"crisp_upscale"}), "local"),
     ("upscale", {}, None, "local"),
     ("resize", {"width": 1}, FakeProvider(), "local")],
)
def test_engine_for(name, params, provider, engine):
    assert registry.engine_for(name, params, provider) == engine


def test_provider_engine_calls_the_provider_once_without_the_engine_param():
    fake = FakeProvider()
    out, credits = registry.run_step("remove_background", {"engine": "provider", "tolerance": 5},
                                     icon(), provider=fake, asset="hero")
    assert fake.calls == [("remove_background", {"tolerance": 5})]
    assert credits == 10
    # The provider's WebP comes back as a lossless PNG intermediate, metadata kept.
    assert out.media_type == "image/png" and out.data.startswith(b"\x89PNG")
    assert out.meta == {"image_id": "abc"}


def test_provider_upscale_and_vectorize():
    fake = FakeProvider()
    up, _ = registry.run_step("upscale", {"mode": "creative"}, icon(), provider=fake, asset="a")
    assert picture_size(up) == (192, 192)
    vec, _ = registry.run_step("vectorize", {"engine": "provider"}, icon(), provider=fake, asset="a")
    assert vec.is_svg
    assert [c[0] for c in fake.calls] == ["creative_upscale", "vectorize"]


def test_local_engine_makes_no_provider_call():
    fake = FakeProvider()
    pic = icon()
    cut, credits = registry.run_step("remove_background", {"engine": "local"}, pic, provider=fake, asset="a")
    resized, _ = registry.run_step("resize", {"width": 48}, cut, provider=fake, asset="a")
    svg, _ = registry.run_step("vectorize", {"engine": "local"}, cut, provider=fake, asset="a")
    assert fake.calls == [] and credits is None
    assert cut.media_type == "image/png" and svg.media_type == "image/svg+xml"
    assert picture_size(resized) == (48, 48)


def test_svg_input_is_sent_to_the_provider_as_png():
    fake = FakeProvider()
    out, _ = registry.run_step("upscale", {}, SVG, provider=fake, asset="a")
    assert picture_size(out) == (80, 40)
    assert fake.calls == [("crisp_upscale", {})]


def test_provider_svg_without_viewbox_gets_one():
    bare = Picture(b'<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"/>', "image/svg+xml")
    fake = FakeProvider(result=bare)
    out, _ = registry.run_step("vectorize", {"engine": "provider"}, icon(), provider=fake, asset="a")
    assert b'viewBox="0 0 30 20"' in out.data
    registry.check_step_output("vectorize", {"engine": "provider"}, icon(), out, asset="a")


def test_provider_errors_pass_through_unchanged():
    class Refusing(FakeProvider):
        def transform(self, operation, picture, params, *, asset):
            raise RequestRejected("too small", provider="fake", status=422, asset=asset)

    with pytest.raises(RequestRejected) as info:
        registry.run_step("vectorize", {"engine": "provider"}, icon(), provider=Refusing(), asset="logo")
    assert info.value.status == 422


@pytest.mark.parametrize(
    ("name", "params", "picture", "provider", "message"),
    [("vectorize", {"engine": "local"}, SVG, None, "already an SVG"),
     ("vectorize", {"engine": "provider"}, SVG, FakeProvider(), "already an SVG"),
     ("resize", {"width": 0}, None, None, "at least 1"),
     ("crop", {"box": [0, 0, 500, 500]}, None, None, "outside the 96x96 picture"),
     ("upscale", {}, None, None, "no provider is active"),
     ("upscale", {"engine": "local"}, None, FakeProvider(), "does not offer it"),
     ("vectorize", {"engine": "provider"}, None, None, "none is active"),
     ("vectorize", {"engine": "provider"}, None, FakeProvider(operations=()), "cannot run vectorize"),
     ("resize", {"width": 5, "engine": "provider"}, None, None, "no provider engine"),
     ("trim", {"engine": "cloud"}, None, None, "engine must be"),
     ("blur", {}, None, None, "unknown step 'blur'")],
)
def test_steps_that_cannot_apply_name_asset_and_step(name, params, picture, provider, message):
    with pytest.raises(StepError, match=message) as info:
        registry.run_step(name, params, picture or icon(), provider=provider, asset="icons/sword")
    assert info.value.asset == "icons/sword" and info.value.step == name
    assert str(info.value).startswith(f"asset 'icons/sword', step {name}: ")


def test_results_are_deterministic():
    pic = icon()
    for name, params in [("remove_background", {}), ("vectorize", {}), ("trim", {"margin": 2}),
                         ("pad", {"aspect": "2:1"})]:
        a, _ = registry.run_step(name, params, pic, provider=None, asset="a")
        b, _ = registry.run_step(name, params, pic, provider=None, asset="a")
        assert a.data == b.data, name


# --------------------------------------------------------------------------- checks


def test_checks_pass_for_real_step_results():
    pic = icon()
    for name, params in [("remove_background", {"engine": "local"}), ("vectorize", {}),
                         ("resize", {"width": 30, "height": 20, "fit": "cover"}), ("crop", {"aspect": "3:1"}),
                         ("pad", {"margin": 3}), ("trim", {})]:
        out, _ = registry.run_step(name, params, pic, provider=None, asset="a")
        registry.check_step_output(name, params, pic, out, asset="a")
    out, _ = registry.run_step("resize", {"width": 80}, SVG, provider=None, asset="a")
    registry.check_step_output("resize", {"width": 80}, SVG, out, asset="a")


def _png(size, mode="RGB") -> Picture:
    return as_picture(Image.new(mode, size, (10, 20, 30, 255)[: len(mode)]))


@pytest.mark.parametrize(
    ("name", "params", "after", "message"),
    [("resize", {"width": 50}, _png((50, 49)), "50x49 picture instead of 50x50"),
     ("pad", {"margin": 1}, _png((96, 96)), "instead of 98x98"),
     ("crop", {"aspect": "2:1"}, _png((96, 96)), "instead of 96x48"),
     ("remove_background", {}, _png((96, 96)), "no transparent pixel"),
     ("remove_background", {}, _png((96, 96), "RGBA"), "no transparent pixel"),
     ("vectorize", {}, _png((96, 96)), "not an SVG"),
     ("vectorize", {}, Picture(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"), "viewBox"),
     ("vectorize", {}, Picture(b"<svg", "image/svg+xml"), "does not parse"),
     ("trim", {}, Picture(_png((5, 5)).data, "image/webp"), "labelled image/webp"),
     ("trim", {}, Picture(b"\x89PNG\r\n\x1a\nbroken", "image/png"), "cannot be decoded"),
     ("upscale", {}, _png((50, 50)), "shrank")],
)
def test_failing_checks_name_the_step(name, params, after, message):
    with pytest.raises(StepError, match=message) as info:
        registry.check_step_output(name, params, _png((96, 96)), after, asset="hero")
    assert info.value.asset == "hero" and info.value.step == name


def test_bad_provider_result_fails_its_check():
    fake = FakeProvider(result=_png((96, 96)))  # "removed" background, but opaque
    out, _ = registry.run_step("remove_background", {"engine": "provider"}, icon(), provider=fake, asset="a")
    with pytest.raises(StepError, match="no transparent pixel"):
        registry.check_step_output("remove_background", {}, icon(), out, asset="a")


# --------------------------------------------------------------------------- export


def test_export_and_favicon_name_the_asset():
    data = registry.export(icon(), "webp", {"quality": 80}, asset="a")
    assert data[:4] == b"RIFF"
    with pytest.raises(StepError, match="vectorize") as info:
        registry.export(icon(), "svg", {}, asset="banner")
    assert info.value.asset == "banner" and info.value.step == "export svg"
    files = registry.favicon(icon(), {}, asset="site")
    assert "favicon.ico" in files
    with pytest.raises(StepError) as info:
        registry.favicon(Picture(b"junk", "image/png"), {}, asset="site")
    assert info.value.asset == "site" and info.value.step == "favicon"


def test_scaled_chain_is_crisp_from_the_source():
    # @2x of "resize width 24" is a resize to 48 of the same input, not an upscale of 24.
    pic = icon()
    one, _ = registry.run_step("resize", {"width": 24}, pic, provider=None, asset="a")
    two, _ = registry.run_step("resize", scale_params("resize", {"width": 24}, 2), pic,
                               provider=None, asset="a")
    assert picture_size(one) == (24, 24) and picture_size(two) == (48, 48)


def test_transparent_icon_chain_end_to_end():
    """The game-icon example: cut out, 1x/2x PNGs and an SVG version."""
    pic = icon()
    cut, _ = registry.run_step("remove_background", {}, pic, provider=None, asset="icon-sword")
    registry.check_step_output("remove_background", {}, pic, cut, asset="icon-sword")
    for factor in (1, 2):
        params = scale_params("resize", {"width": 32}, factor)
        out, _ = registry.run_step("resize", params, cut, provider=None, asset="icon-sword")
        registry.check_step_output("resize", params, cut, out, asset="icon-sword")
        png = Image.open(io.BytesIO(registry.export(out, "png", {"optimize": True}, asset="icon-sword")))
        assert png.size == (32 * factor, 32 * factor) and png.mode == "RGBA"
        assert png.getpixel((0, 0))[3] == 0
    svg, _ = registry.run_step("vectorize", {}, cut, provider=None, asset="icon-sword")
    data = registry.export(svg, "svg", {"optimize": True}, asset="icon-sword")
    assert b"viewBox" in data
    draw_check = Image.open(io.BytesIO(registry.export(Picture(data, "image/svg+xml"), "png", {}, asset="x")))
    assert draw_check.getpixel((0, 0))[3] == 0  # the traced icon keeps a clear background
