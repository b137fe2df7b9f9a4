"""The placeholder honours input pictures: recraft_build.providers.placeholder_ops."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import RequestRejected
from recraft_build.providers.placeholder import PlaceholderProvider
from recraft_build.steps.images import svg_info


def picture(size=(400, 300)) -> Picture:
    img = Image.new("RGB", size, (250, 250, 250))
    img.paste((200, 30, 30), (100, 75, 300, 225))  # a red subject on a light background
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png")


def mask(size=(400, 300), box=(0, 0, 200, 300)) -> Picture:
    img = Image.new("L", size, 0)
    img.paste(255, box)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png")


def req(operation="image_to_image", **kw) -> GenerationRequest:
    return GenerationRequest(model="recraftv3", prompt="at night", operation=operation, **kw)


def make(request, image=None, mask_picture=None) -> list[Image.Image]:
    result = PlaceholderProvider().generate_from_image(request, image or picture(), mask=mask_picture, asset="a")
    assert result.credits == 0
    return [Image.open(io.BytesIO(p.data)).convert("RGB") for p in result.pictures]


def test_the_same_request_and_input_give_the_same_bytes():
    p = PlaceholderProvider()
    one = p.generate_from_image(req(strength=0.4, n=2), picture(), asset="a").pictures
    two = p.generate_from_image(req(strength=0.4, n=2), picture(), asset="a").pictures
    assert [x.data for x in one] == [x.data for x in two]
    assert one[0].data != one[1].data  # candidates differ
    other = p.generate_from_image(req(strength=0.4), picture((400, 301)), asset="a").pictures
    assert other[0].data != one[0].data  # another input, another picture


def test_a_child_shows_its_parent():
    (tinted,) = make(req(strength=0.2))
    assert tinted.size == (400, 300)
    r, g, b = tinted.getpixel((200, 150))
    assert r > g and r > b  # still the red subject, tinted
    (forest,) = make(req("replace_background"))
    assert forest.getpixel((200, 150)) == (200, 30, 30)  # the subject is kept
    assert forest.getpixel((60, 150)) != (250, 250, 250)  # the background is not
    (painted,) = make(req("inpaint"), mask_picture=mask())
    assert painted.getpixel((250, 150)) == (200, 30, 30)  # outside the mask: the input
    assert painted.getpixel((150, 150)) != (200, 30, 30)  # inside: redrawn
    first, second = make(req("variate", n=2))
    assert first.getpixel((200, 150)) != (200, 30, 30) and first.tobytes() != second.tobytes()
    (resized,) = make(req("variate", size="1365x1024"))
    assert resized.size == (1365, 1024)


def test_the_label_names_the_operation_and_the_input():
    result = PlaceholderProvider().generate_from_image(req(strength=0.5), picture(), asset="a")
    assert result.pictures[0].meta["made_from"].startswith("image_to_image of ")


def test_a_vector_request_gives_an_svg_that_embeds_the_picture():
    result = PlaceholderProvider().generate_from_image(req(strength=0.5, style="vector_illustration"), picture(),
                                                       asset="a")
    svg = result.pictures[0]
    assert svg.is_svg and b"data:image/png;base64," in svg.data
    assert svg_info(svg.data).width == 400  # parses, and passes the SVG safety checks


def test_inputs_it_cannot_draw_from_are_rejected():
    with pytest.raises(RequestRejected, match="mask is 100x100"):
        make(req("inpaint"), mask_picture=mask((100, 100), (0, 0, 50, 50)))
    with pytest.raises(RequestRejected, match="SVG"):
        make(req(), image=Picture(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"))
