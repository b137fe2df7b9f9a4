"""The data the modules hand each other: a loaded spec, its assets, pictures.

These are plain frozen dataclasses with no behaviour beyond small derived values, so
that ``spec`` (which makes them), ``keys``/``plan`` (which read them) and ``executor``
(which runs them) agree on one shape. Everything here is already validated and
rendered: templates are expanded, defaults merged, paths checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "FILE_MODEL",
    "IMAGE_OPERATIONS",
    "Asset",
    "AtlasFrame",
    "AtlasSpec",
    "GenerationRequest",
    "ManifestSpec",
    "ImageInput",
    "OutputSpec",
    "Picture",
    "ProviderProfile",
    "Spec",
    "StepSpec",
    "StyleSpec",
    "VECTOR_STYLES",
    "Where",
    "media_type_for_format",
    "model_maker",
    "sniff_media_type",
]

#: Styles whose pictures come back as SVG (recraft-api.md 1.4).
VECTOR_STYLES = frozenset({"vector_illustration", "icon"})

#: What an asset with an input picture does with it (``operation:`` in the spec), in
#: the order the docs list them. ``image_to_image`` is the default when ``image`` is set.
IMAGE_OPERATIONS = ("image_to_image", "replace_background", "generate_background", "inpaint", "variate")

#: The ``model`` (and ``operation``) of an asset whose picture is a file of the project
#: (``image: {file: ...}`` with no prompt): no model makes it, nothing is paid.
FILE_MODEL = "file"


def model_maker(model: str) -> str:
    """Whose model ``model`` is: ``bfl`` for Black Forest Labs' FLUX models (``flux-*``),
    ``file`` for a picture from a file, else ``recraft``. Providers decide from this which
    models they can run (``providers.capabilities``); ``spec.tables`` agrees (tested)."""
    if model.startswith("flux-"):
        return "bfl"
    if model == FILE_MODEL:
        return "file"
    return "recraft"

_MEDIA_TYPES = {
    "png": "image/png",
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
    "ico": "image/x-icon",
}


def sniff_media_type(data: bytes) -> str | None:
    """The media type the first bytes say, or None: png, webp, jpeg or svg+xml."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith((b"<?xml", b"<svg", b"<!--")) and (b"<svg" in data[:4096] or b":svg" in data[:4096]):
        return "image/svg+xml"
    return None


def media_type_for_format(fmt: str, default: str | None = None) -> str:
    """``png`` -> ``image/png``; for a format we do not write, ``default`` if given,
    else KeyError."""
    found = _MEDIA_TYPES.get(fmt.lower())
    if found is None:
        if default is None:
            raise KeyError(fmt)
        return default
    return found


@dataclass(frozen=True)
class Where:
    """A place in a spec file: 1-based line and column (0 = unknown) and field path."""

    file: str
    line: int = 0
    col: int = 0
    path: str = ""

    def __str__(self) -> str:
        loc = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{loc}: {self.path}" if self.path else loc


@dataclass(frozen=True)
class StepSpec:
    """One post-processing step as written in the spec.

    ``name`` is the canonical step name (``resize``); ``params`` are the parameters as
    written (validated by the schema, defaults *not* filled in, so that keys only
    change when the spec changes or the step's implementation version is bumped).
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    where: Where | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class OutputSpec:
    """One file an asset writes, relative to the output folder (posix separators).

    ``format`` follows the extension: png, webp, jpg, svg or ico. ``steps`` run after
    the asset's own steps. ``options`` holds encoder options (``quality``,
    ``lossless``, ``strip_metadata``). ``scales`` (e.g. ``(1, 2, 3)``) asks for one
    file per scale (``name.png``, ``name@2x.png``...); ``favicon`` asks for a favicon
    set written into the folder ``path`` names.
    """

    path: str
    format: str
    steps: tuple[StepSpec, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    scales: tuple[float, ...] = ()
    favicon: bool = False
    where: Where | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything that determines a generated picture (and nothing that does not).

    ``controls`` is normalised: ``colors`` is a list of ``#rrggbb`` strings,
    ``background_color`` a ``#rrggbb`` string, plus ``artistic_level`` and
    ``no_text``. ``style_ref`` names a custom style from the spec's ``styles:``
    section (resolved to a provider ``style_id`` at build time); ``style_id`` is an
    id the user wrote directly. At most one of ``style``, ``style_id``, ``style_ref``
    is set (validation guarantees it).
    """

    model: str
    prompt: str
    negative_prompt: str | None = None
    style: str | None = None
    substyle: str | None = None
    style_id: str | None = None
    style_ref: str | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    n: int = 1
    seed: int | None = None
    controls: Mapping[str, Any] | None = None
    text_layout: tuple[Mapping[str, Any], ...] | None = None
    # An asset made from another picture (``image:`` in the spec). ``operation`` is one of
    # IMAGE_OPERATIONS (or FILE_MODEL for a picture that is a file); ``image`` and ``mask``
    # are the sha256 digests of the input pictures, filled in by the planner once they
    # are known (the loader leaves them None: a parent's pick is not known at load time).
    operation: str | None = None
    image: str | None = None
    mask: str | None = None
    strength: float | None = None

    @property
    def vector(self) -> bool:
        """True when the picture comes back as SVG (vector style or ``*_vector`` model)."""
        return (self.style in VECTOR_STYLES) or self.model.endswith("_vector")

    def width_height(self) -> tuple[int, int]:
        """Pixel size of the picture: from ``size``, else from ``aspect_ratio`` at ~1 MP."""
        if self.size:
            w, _, h = self.size.partition("x")
            return int(w), int(h)
        if self.aspect_ratio:
            a, _, b = self.aspect_ratio.partition(":")
            ra, rb = float(a), float(b)
            scale = (1024 * 1024 / (ra * rb)) ** 0.5
            return max(1, round(ra * scale)), max(1, round(rb * scale))
        return 1024, 1024


@dataclass(frozen=True)
class ImageInput:
    """Where an input picture comes from: exactly one of ``asset`` (the name of another
    asset: its picked picture, as the lock records it) or ``file`` (a path relative to
    the spec's folder, checked to stay inside it; hashed by content)."""

    asset: str | None = None
    file: str | None = None
    where: Where | None = field(default=None, compare=False, hash=False)

    def __str__(self) -> str:
        return f"asset {self.asset!r}" if self.asset is not None else f"file {self.file}"


@dataclass(frozen=True)
class StyleSpec:
    """A custom style declared in the spec's ``styles:`` section.

    ``references`` are paths relative to the spec's folder, checked to exist.
    """

    name: str
    base_style: str
    references: tuple[str, ...]
    where: Where | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class ProviderProfile:
    """A named way to reach a provider (``providers:`` in the spec).

    ``protocol`` is ``recraft`` or ``replicate``; ``auth`` is ``bearer`` or ``raw``;
    ``token_env`` names the environment variable that holds the token (never the
    token itself). ``options`` holds rate limits, timeouts and the like.
    """

    name: str
    protocol: str
    base_url: str | None = None
    auth: str = "bearer"
    token_env: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Asset:
    """One rendered asset: its name, what to generate, its steps and outputs.

    ``image`` and ``mask`` are its input pictures (``None`` for a picture made from a
    prompt alone). An asset whose ``request.operation`` is :data:`FILE_MODEL` *is* the
    picture of its ``image`` file: no provider makes it.
    """

    name: str
    request: GenerationRequest
    steps: tuple[StepSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    where: Where | None = field(default=None, compare=False, hash=False)
    matrix: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: ``tags:`` as rendered: labels for the manifest and the TypeScript module, never keyed.
    tags: tuple[str, ...] = field(default=(), compare=False, hash=False)
    image: ImageInput | None = None
    mask: ImageInput | None = None
    #: Where some fields were written (``negative_prompt``, ``controls``, ``model``...:
    #: the asset's own line or the ``defaults:`` line it inherits), for problems that
    #: point at the field rather than the asset. Shared by a matrix's assets.
    places: Mapping[str, Where] = field(default_factory=dict, compare=False, hash=False)

    @property
    def from_file(self) -> bool:
        """True when the asset's picture is its ``image`` file itself (no generation)."""
        return self.request.operation == FILE_MODEL

    def inputs(self) -> tuple[ImageInput, ...]:
        """Its input pictures (image, then mask), those given."""
        return tuple(i for i in (self.image, self.mask) if i is not None)

    def parents(self) -> tuple[str, ...]:
        """The assets whose picked pictures this one is made from (graph edges)."""
        return tuple(dict.fromkeys(i.asset for i in self.inputs() if i.asset is not None))


@dataclass(frozen=True)
class AtlasFrame:
    """One frame of an atlas: an asset, and its raster output file at each scale
    (``{1.0: "icons/sword.png", 2.0: "icons/sword@2x.png"}``, logical output paths)."""

    name: str
    files: Mapping[float, str]


@dataclass(frozen=True)
class AtlasSpec:
    """An ``atlases:`` entry, resolved: the frames it packs and how.

    ``path`` is relative to the output folder, without extension (``sprites/enemies``
    writes ``sprites/enemies.png`` and ``.json``). ``scales`` are the scales written
    (``2.0`` gives ``sprites/enemies@2x.png``); every frame has a file at each.
    ``format`` is ``hash`` or ``array`` (TexturePacker's JSON (Hash) / JSON (Array)).
    """

    path: str
    frames: tuple[AtlasFrame, ...]
    scales: tuple[float, ...] = (1.0,)
    max_size: int = 2048
    padding: int = 2
    extrude: int = 0
    trim: bool = False
    power_of_two: bool = False
    format: str = "hash"
    css: bool = False
    where: Where | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class ManifestSpec:
    """The ``manifest:`` section: content-hashed file names, a TypeScript module.

    ``typescript`` is relative to the spec's folder (checked to stay inside it);
    ``public_path`` prefixes every ``src`` in the TypeScript module.
    """

    hashed_names: bool = False
    typescript: str | None = None
    public_path: str = ""
    where: Where | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Spec:
    """A loaded, validated, expanded spec.

    ``path`` is the spec file; ``output_dir`` is as written (relative to the spec's
    folder) or None; ``assets`` are in spec order with unique names.
    """

    path: Path
    version: int
    assets: tuple[Asset, ...]
    output_dir: str | None = None
    styles: Mapping[str, StyleSpec] = field(default_factory=dict)
    providers: Mapping[str, ProviderProfile] = field(default_factory=dict)
    atlases: tuple[AtlasSpec, ...] = ()
    manifest: ManifestSpec = field(default_factory=ManifestSpec)

    @property
    def lock_path(self) -> Path:
        """``assets.yaml`` -> ``assets.lock`` beside it."""
        return self.path.with_suffix(".lock")

    def default_output_dir(self) -> Path:
        """The spec's ``output_dir`` (relative to the spec), else ``build/`` beside it."""
        return self.path.parent / (self.output_dir or "build")


@dataclass(frozen=True)
class Picture:
    """An image as bytes plus what it is.

    ``media_type`` is one of image/png, image/webp, image/jpeg, image/svg+xml.
    ``meta`` holds provider metadata worth keeping (``image_id``...), never a token.

    ``pixels`` (not compared, not shown) is an optional shortcut: the decoded image
    (a ``PIL.Image.Image``, never modified) that ``data`` decodes to, set only by code
    that encoded ``data`` from it losslessly, with no EXIF orientation and no colour
    profile in ``data`` (the placeholder, ``steps.images.to_picture``), so that
    ``steps.images.decode`` and ``picture_size`` need not decode ``data`` again.
    The bytes stay the truth: they are what is hashed, stored and written.
    """

    data: bytes
    media_type: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    pixels: Any = field(default=None, compare=False, repr=False)

    @property
    def is_svg(self) -> bool:
        return self.media_type == "image/svg+xml"
