"""Active content in SVG is refused by one rule, wherever an SVG enters.

Each hostile SVG is refused by the steps' parser (``svg_info``, which exports and step
results go through), by the download check, and as a provider step's result (a
provider's vectorize); harmless references stay accepted.
"""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.providers.base import TransformResult
from recraft_build.providers.download import PictureCheckError, check_picture
from recraft_build.steps import registry
from recraft_build.steps.images import svg_info
from recraft_build.steps.svgsafe import UnsafeSvg, check_svg

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10"'


def svg(body: str, root_attrs: str = "", prolog: str = "") -> bytes:
    return f'{prolog}<svg {NS} {root_attrs}>{body}</svg>'.encode()


HOSTILE = {
    "root onload": svg("<rect/>", 'onload="alert(1)"'),
    "onclick": svg('<rect width="5" height="5" onclick="alert(1)"/>'),
    "upper-case event": svg('<rect ONMOUSEOVER="alert(1)"/>'),
    "javascript href": svg('<a href="javascript:alert(1)"><rect/></a>'),
    "javascript xlink:href": svg('<a xlink:href="javascript:alert(1)"><rect/></a>'),
    "javascript with a tab": svg('<a href=" java&#9;script:alert(1)"><rect/></a>'),
    "http link": svg('<a href="https://evil.example/"><rect/></a>'),
    "foreignObject": svg('<foreignObject width="5" height="5"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'),
    "onbegin": svg('<rect><animate attributeName="x" dur="1s" onbegin="alert(1)"/></rect>'),
    "set href": svg('<a><set attributeName="href" to="#x"/><rect/></a>'),
    "animate xlink:href": svg('<a><animate attributeName="xlink:href" values="#a;#b" dur="1s"/><rect/></a>'),
    "set to javascript": svg('<a><set attributeName="x" to="javascript:alert(1)"/><rect/></a>'),
    "external image": svg('<image href="https://evil.example/x.png" width="1" height="1"/>'),
    "local file image": svg('<image xlink:href="/etc/passwd.png" width="1" height="1"/>'),
    "external use": svg('<use href="other.svg#a"/>'),
    "nested svg data": svg('<image href="data:image/svg+xml;base64,PHN2Zy8+" width="1" height="1"/>'),
    "html data": svg('<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"><rect/></a>'),
    "css url in style": svg('<rect style="fill:url(https://evil.example/p.svg#g)"/>'),
    "css url in fill": svg('<rect fill="url(http://evil.example/p.svg#g)"/>'),
    "css import": svg("<style>@import url(https://evil.example/x.css);</style><rect/>"),
    "css url in style element": svg("<style><![CDATA[rect{fill:url('//evil.example/g.svg#a')}]]></style><rect/>"),
    "stylesheet PI": svg("<rect/>", prolog='<?xml-stylesheet href="https://evil.example/x.css"?>'),
    "script": svg("<script>alert(1)</script>"),
    "html iframe": svg('<iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example"/>'),
    "handler": svg('<handler type="application/ecmascript">alert(1)</handler>'),
}

HARMLESS = {
    "fragment fill": svg('<defs><linearGradient id="g"/></defs><rect fill="url(#g)" width="5" height="5"/>'),
    "quoted fragment in style": svg("<rect style=\"fill: url('#g')\"/>"),
    "use fragment": svg('<defs><rect id="a"/></defs><use href="#a"/><use xlink:href="#a"/>'),
    "embedded png": svg('<image href="data:image/png;base64,AAAA" width="1" height="1"/>'),
    "style element": svg("<style>.a{fill:#f00;stroke:url(#g)}</style><rect class=\"a\"/>"),
    "opacity animation": svg('<rect><animate attributeName="opacity" values="0;1" dur="1s"/></rect>'),
    "text mentioning javascript": svg("<text>javascript: is refused in attributes only</text>"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_active_content_is_refused_everywhere(name: str) -> None:
    data = HOSTILE[name]
    with pytest.raises(UnsafeSvg):
        check_svg(data)
    with pytest.raises(StepError, match="refused"):
        svg_info(data)
    with pytest.raises(PictureCheckError, match="refused"):
        check_picture(data)


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_harmless_references_are_accepted(name: str) -> None:
    data = HARMLESS[name]
    check_svg(data)
    assert svg_info(data).viewbox == (0, 0, 10, 10)
    assert check_picture(data) == (data, "image/svg+xml")


class _VectorizingProvider:
    """A provider whose vectorize answers with a fixed SVG (as a compromised API might)."""

    name = "stub"
    family = "recraft"
    paid = True

    def __init__(self, answer: bytes):
        self.answer = answer

    def supports(self, operation: str) -> bool:
        return operation == "vectorize"

    def transform(self, operation: str, picture: Picture, params: Mapping[str, Any], *, asset: str) -> TransformResult:
        return TransformResult(picture=Picture(self.answer, "image/svg+xml"), credits=10)


def _png() -> Picture:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png")


@pytest.mark.parametrize("name", ["root onload", "javascript href", "foreignObject", "onbegin"])
def test_a_provider_vectorize_with_active_content_is_refused(name: str) -> None:
    provider = _VectorizingProvider(HOSTILE[name])
    with pytest.raises(StepError, match="refused"):
        registry.run_step("vectorize", {"engine": "provider"}, _png(), provider=provider, asset="logo")


def test_a_clean_provider_vectorize_passes() -> None:
    provider = _VectorizingProvider(HARMLESS["fragment fill"])
    picture, credits = registry.run_step("vectorize", {"engine": "provider"}, _png(), provider=provider, asset="logo")
    assert picture.is_svg and credits == 10


def test_local_vectorize_output_is_checked_by_the_same_rule() -> None:
    """vtracer's SVG goes through parse_svg -> svg_info, so it meets the same rule."""
    picture, _ = registry.run_step("vectorize", {"engine": "local"}, _png(), provider=None, asset="logo")
    check_svg(picture.data)
    assert svg_info(picture.data).viewbox is not None
