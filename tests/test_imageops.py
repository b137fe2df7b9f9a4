"""Image operations at the provider boundary: recraft_build.providers.imageops, the
Recraft and Replicate ``generate_from_image`` methods, FLUX inputs (providers.flux) and
what each protocol can run (providers.capabilities)."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from fakeserver import FakeServer, local_client
from recraft_build.domain import Asset, GenerationRequest, Picture, Where
from recraft_build.errors import RequestRejected
from recraft_build.providers import imageops
from recraft_build.providers.capabilities import CAPABILITIES, ProviderInfo, refusals
from recraft_build.providers.flux import flux_input
from recraft_build.providers.recraft import RecraftProvider
from recraft_build.providers.replicate import ReplicateProvider, replicate_input, replicate_model


def png(size=(512, 512), mode="RGB", colour=(10, 20, 30)) -> Picture:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode != "L" else colour[0]).save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png")


def req(**kw) -> GenerationRequest:
    base = dict(model="recraftv3", prompt="at night", operation="image_to_image", strength=0.4, image="a" * 64)
    base.update(kw)
    return GenerationRequest(**base)


# -- inputs and masks ------------------------------------------------------------------------

def test_inputs_are_checked_against_the_api_limits():
    assert imageops.check_input(png((300, 400)), "inpaint") == (300, 400)
    with pytest.raises(imageops.InputProblem, match="256-4096"):
        imageops.check_input(png((100, 400)), "inpaint")
    with pytest.raises(imageops.InputProblem, match="SVG"):
        imageops.check_input(Picture(b"<svg/>", "image/svg+xml"), "inpaint")
    with pytest.raises(imageops.InputProblem, match="does not decode"):
        imageops.check_input(Picture(b"\x89PNG broken", "image/png"), "inpaint")


def test_a_mask_is_made_pure_black_and_white_and_must_match_the_size():
    soft = Image.new("L", (300, 300), 0)
    soft.paste(200, (0, 0, 150, 300))
    soft.paste(100, (150, 0, 300, 300))
    buf = io.BytesIO()
    soft.save(buf, "PNG")
    fixed = imageops.normalise_mask(Picture(buf.getvalue(), "image/png"), (300, 300))
    with Image.open(io.BytesIO(fixed.data)) as im:
        assert im.mode == "L" and sorted(c for _, c in im.getcolors()) == [0, 255]
        assert im.getpixel((10, 10)) == 255 and im.getpixel((200, 10)) == 0
    transparent = png((300, 300), mode="RGBA", colour=(255, 255, 255, 0))
    with Image.open(io.BytesIO(imageops.normalise_mask(transparent, (300, 300)).data)) as im:
        assert im.getpixel((5, 5)) == 0  # transparent counts as black: kept
    with pytest.raises(imageops.InputProblem, match="same size"):
        imageops.normalise_mask(png((300, 200)), (300, 300))


def test_variate_size_is_the_requests_or_the_nearest_to_the_input():
    assert imageops.variate_size(req(operation="variate", size="1365x1024"), (500, 500)) == "1365x1024"
    assert imageops.variate_size(req(operation="variate", aspect_ratio="16:9"), (500, 500)) == "1820x1024"
    assert imageops.variate_size(req(operation="variate"), (1000, 1000)) == "1024x1024"
    assert imageops.variate_size(req(operation="variate"), (1600, 900)) == "1820x1024"


def test_each_endpoint_gets_only_its_fields():
    body = {"prompt": "p", "model": "recraftv3", "n": 2, "response_format": "url", "style": "digital_illustration",
            "size": "1024x1024", "controls": {"colors": [{"rgb": [1, 2, 3]}]}, "random_seed": 9}
    i2i = imageops.recraft_image_form(req(n=2), body, (512, 512))
    assert i2i["strength"] == "0.4" and json.loads(i2i["controls"]) == {"colors": [{"rgb": [1, 2, 3]}]}
    assert "size" not in i2i and i2i["random_seed"] == "9"
    bg = imageops.recraft_image_form(req(operation="replace_background", strength=None), body, (512, 512))
    assert "controls" not in bg and "strength" not in bg and bg["prompt"] == "p"
    more = imageops.recraft_image_form(req(operation="variate", prompt="", strength=None), body, (512, 512))
    assert set(more) == {"n", "response_format", "size", "random_seed"}


# -- the Recraft provider ----------------------------------------------------------------------

@pytest.fixture
def client():
    with local_client() as c:
        yield c


def recraft(server: FakeServer, client: httpx.Client) -> RecraftProvider:
    return RecraftProvider(base_url=server.recraft_base, token=server.token, client=client, allow_http=True)


def test_recraft_runs_an_operation_for_n_pictures(client):
    with FakeServer() as server:
        result = recraft(server, client).generate_from_image(req(n=2), png(), asset="night")
        assert len(result.pictures) == 2 and result.credits == 80.0
        (sent,) = server.bodies["edit"]
        assert sent["op"] == "image_to_image" and sent["files"] == ["image"]
        assert sent["fields"]["strength"] == "0.4" and sent["fields"]["model"] == "recraftv3"


def test_recraft_refuses_bad_inputs_before_any_call(client):
    with FakeServer() as server:
        p = recraft(server, client)
        with pytest.raises(RequestRejected, match="256-4096"):
            p.generate_from_image(req(), png((64, 64)), asset="a")
        with pytest.raises(RequestRejected, match="needs a mask"):
            p.generate_from_image(req(operation="inpaint", strength=None), png(), asset="a")
        with pytest.raises(RequestRejected, match="same size"):
            p.generate_from_image(req(operation="inpaint", strength=None), png(), mask=png((300, 300)), asset="a")
        assert server.paid_calls == 0 and server.counts["requests"] == 0


# -- FLUX through Replicate -----------------------------------------------------------------------

def test_flux_requests_map_to_black_forest_labs_models():
    banner = GenerationRequest(model="flux-1.1-pro-ultra", prompt="a harbour", aspect_ratio="21:9", seed=3)
    assert replicate_model(banner) == "black-forest-labs/flux-1.1-pro-ultra"
    assert replicate_input(banner) == {"prompt": "a harbour", "output_format": "png", "aspect_ratio": "21:9", "seed": 3}
    kontext = req(model="flux-kontext-max", strength=None)
    inp = flux_input(kontext, png())
    assert inp["aspect_ratio"] == "match_input_image" and inp["input_image"].startswith("data:image/png;base64,")


def test_replicate_runs_kontext_and_refuses_other_operations(client):
    with FakeServer() as server:
        p = ReplicateProvider(base_url=server.replicate_base, token=server.token, client=client, allow_http=True,
                              wait_seconds=5)
        result = p.generate_from_image(req(model="flux-kontext-pro", strength=None, n=2), png(), asset="a")
        assert len(result.pictures) == 2 and result.credits is None
        assert [b["model"] for b in server.bodies["create"]] == ["black-forest-labs/flux-kontext-pro"] * 2
        with pytest.raises(RequestRejected, match="image_to_image with flux-kontext"):
            p.generate_from_image(req(operation="inpaint", strength=None), png(), asset="a")
        assert server.counts["creates"] == 2


# -- capabilities: the one place ------------------------------------------------------------------

def asset(name: str, request: GenerationRequest) -> Asset:
    return Asset(name, request, where=Where("assets.yaml", 7, 5, "assets[2]"))


def test_what_each_protocol_runs():
    flux = GenerationRequest(model="flux-1.1-pro", prompt="p", seed=4)
    assert CAPABILITIES["recraft"].cannot_run(flux)[0][0] == "model"
    assert CAPABILITIES["replicate"].cannot_run(flux) == []
    assert CAPABILITIES["replicate"].refused_fields(flux) == []  # FLUX takes a seed
    assert CAPABILITIES["replicate"].refused_fields(GenerationRequest(model="recraftv3", prompt="p", seed=4)) == ["seed"]
    assert CAPABILITIES["replicate"].cannot_run(req(model="flux-kontext-pro", strength=None)) == []
    assert CAPABILITIES["replicate"].cannot_run(req())[0][0] == "operation"
    assert CAPABILITIES["recraft"].cannot_run(req(operation="variate")) == []
    assert CAPABILITIES["placeholder"].cannot_run(req(operation="inpaint")) == []
    assert CAPABILITIES["recraft"].cannot_run(GenerationRequest(model="file", prompt="", operation="file")) == []


def test_refusals_are_placed_at_the_asset():
    problems = refusals([asset("glow", req())], ProviderInfo.of("replicate", "replicate"), "assets.yaml")
    (p,) = problems
    assert (p.file, p.line, p.col, p.path) == ("assets.yaml", 7, 5, "assets[2].operation")
    assert "cannot run operation image_to_image on model recraftv3" in p.message
