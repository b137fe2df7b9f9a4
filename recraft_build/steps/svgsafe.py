"""The one rule for active content in SVG: refused wherever an SVG enters.

An SVG is a document, not just a picture: opened from disk or linked from a page, a
browser runs its scripts, event attributes and ``javascript:`` links, and loads what
it references. Generated art needs none of that, so every SVG recraft-build keeps
(a provider's download, a step's result such as vectorize, an export) is checked
here, and one with active content is **refused** (never cached, never written), the
same way a ``<script>`` always was. Refusing rather than stripping keeps the bytes
that are cached and locked exactly the bytes the provider sent.

Refused:

* elements that run code or embed documents: ``script``, ``foreignObject``,
  ``handler`` and ``listener`` (SVG Tiny / XML Events), ``iframe``, ``embed``,
  ``object``, ``frame``, ``applet``, media that loads (``audio``, ``video``), and any
  element in the XHTML namespace;
* every event attribute (a name starting with ``on``: ``onload``, ``onclick``,
  ``onbegin``...);
* any reference (``href`` or ``xlink:href`` on any element) other than a fragment
  (``#id``) or an embedded raster picture (``data:image/png|jpeg|gif|webp``): no
  ``javascript:`` link, no external file or URL, no nested SVG or HTML data URI;
* animations (``set``, ``animate``, ``animateTransform``, ``animateMotion``,
  ``animateColor``) that target a reference or an event attribute;
* ``javascript:``/``vbscript:`` anywhere in an attribute value, and CSS (a
  ``style`` attribute or element, a presentation attribute) with ``url(...)`` other
  than a fragment or embedded raster, ``@import``, ``expression(`` or bindings;
* processing instructions (``<?xml-stylesheet href=...?>`` loads a stylesheet).

DOCTYPE and entity declarations are refused by the parsers that call this module
(:func:`recraft_build.steps.images.svg_info`, and :func:`check_svg` here).
"""

from __future__ import annotations

import re
from typing import Mapping
from xml.parsers import expat

__all__ = ["SvgGuard", "UnsafeSvg", "check_svg"]

XHTML_NS = "http://www.w3.org/1999/xhtml"

_REFUSED_ELEMENTS = frozenset(
    {
        "script", "foreignobject", "handler", "listener", "iframe", "embed", "object",
        "frame", "frameset", "applet", "audio", "video",
    }
)
_ANIMATIONS = frozenset({"set", "animate", "animatetransform", "animatemotion", "animatecolor"})
# What a reference may be: a fragment, or a raster picture embedded as a data: URI.
_SAFE_REF_RE = re.compile(r"^(?:#.*|data:image/(?:png|jpeg|jpg|gif|webp)[;,].*)$", re.IGNORECASE | re.DOTALL)
# Whitespace and control characters browsers ignore inside a URL scheme ("java\tscript:").
_IGNORED_RE = re.compile(r"[\x00-\x20\x7f]+")
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:")
_URL_RE = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_CSS_REFUSED = ("@import", "expression(", "-moz-binding", "behavior:")
_MAX_SHOWN = 80


class UnsafeSvg(ValueError):
    """The SVG has active content; the message says what (and how to fix it)."""


def _shown(value: str) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "...")


def _local(name: str) -> tuple[str, str]:
    """(namespace, local name) of an expat name ``"uri local"`` or ``"local"``."""
    uri, _, local = name.rpartition(" ")
    return uri, local


def _check_css(css: str, where: str) -> None:
    squeezed = _IGNORED_RE.sub("", css).lower()
    for word in _CSS_REFUSED:
        if word in squeezed:
            raise UnsafeSvg(f"{where} uses {word!r} in CSS, which is refused")
    if any(s in squeezed for s in _SCRIPT_SCHEMES):
        raise UnsafeSvg(f"{where} has a javascript: URL, which is refused")
    if "url(" in squeezed:
        for match in _URL_RE.finditer(css):
            target = match.group(2).strip()
            if not _SAFE_REF_RE.match(target):
                raise UnsafeSvg(
                    f"{where} references {_shown(target)} in url(); external files are refused "
                    "(only #id and embedded data:image/... pictures)"
                )


class SvgGuard:
    """Expat callbacks that raise :class:`UnsafeSvg` on active content.

    A parser created with ``namespace_separator=" "`` calls :meth:`start`,
    :meth:`end`, :meth:`text` and :meth:`processing_instruction` (see :meth:`attach`).
    """

    def __init__(self) -> None:
        self._style_depth = 0
        self._css: list[str] = []

    def attach(self, parser: "expat.XMLParserType") -> None:
        """Install every callback but the start handler (the caller's, which calls :meth:`start`)."""
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.text
        parser.ProcessingInstructionHandler = self.processing_instruction

    def start(self, name: str, attrs: Mapping[str, str]) -> None:
        uri, local = _local(name)
        tag = local.lower()
        if uri == XHTML_NS:
            raise UnsafeSvg(f"it embeds an HTML <{local}> element, which is refused")
        if tag in _REFUSED_ELEMENTS:
            raise UnsafeSvg(f"it contains a <{local}> element, which is refused (active content)")
        for key, value in attrs.items():
            _, attr = _local(key)
            lowered = attr.lower()
            if lowered.startswith("on"):
                raise UnsafeSvg(f"<{local}> has an event attribute {attr}=, which is refused (active content)")
            if lowered == "href":
                if not _SAFE_REF_RE.match(value.strip()):
                    raise UnsafeSvg(
                        f"<{local}> references {_shown(value)}; links and external files are refused "
                        "(embed pictures as data:image/... URIs; use #id for references inside the SVG)"
                    )
                continue
            squeezed = _IGNORED_RE.sub("", value).lower()
            if any(s in squeezed for s in _SCRIPT_SCHEMES):
                raise UnsafeSvg(f"<{local}> has a javascript: URL in {attr}=, which is refused")
            if "url(" in squeezed or lowered == "style":
                _check_css(value, f"<{local}> {attr}=")
        if tag in _ANIMATIONS:
            target = _local((attrs.get("attributeName") or "").replace(":", " "))[1].lower()
            if target == "href" or target.startswith("on"):
                raise UnsafeSvg(
                    f"<{local}> animates {attrs.get('attributeName')!r}, which is refused (it could "
                    "turn a reference into a link that runs code)"
                )
        if tag == "style":
            self._style_depth += 1

    def end(self, name: str) -> None:
        if self._style_depth and _local(name)[1].lower() == "style":
            self._style_depth -= 1
            css, self._css = "".join(self._css), []
            _check_css(css, "<style>")

    def text(self, data: str) -> None:
        if self._style_depth:
            self._css.append(data)

    def processing_instruction(self, target: str, data: str) -> None:
        raise UnsafeSvg(f"it has a <?{target} ...?> processing instruction, which is refused")


def check_svg(data: bytes) -> None:
    """Raise :class:`UnsafeSvg` if ``data`` has active content (or a DOCTYPE/entity).

    A document that does not parse is left to the caller's own parse to report.
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    guard = SvgGuard()

    def refuse_doctype(*_args: object) -> None:
        raise UnsafeSvg("it declares a DOCTYPE, which is refused (entities can expand or load files)")

    guard.attach(parser)
    parser.StartElementHandler = guard.start
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return
