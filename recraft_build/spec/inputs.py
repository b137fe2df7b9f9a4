"""Assets made from other pictures: ``image``, ``operation``, ``strength`` and ``mask``.

An asset is one of three kinds:

* made from its **prompt** alone (no ``image``): as always;
* a **picture file** (``image: {file: PATH}`` with no prompt and no operation): no model
  makes it, so every field that describes a generation (``model``, ``style``, ``size``,
  ``n``...) is an error on the asset and left out when it comes from ``defaults``; its
  steps and outputs post-process the file like any picture;
* an **operation** on an input picture (``image`` with a prompt, or an ``operation``):
  the model must run the operation (``tables.ModelInfo.image_operations``), the asset
  may set only the fields that operation takes, and fields from ``defaults`` it does
  not take are left out (defaults describe text-to-image requests: a ``size`` default
  means nothing to an operation that keeps its input's size).

:func:`prepare_inputs` decides the kind of an asset as written (before matrix
expansion); :func:`render_inputs` renders its ``image``/``mask`` templates for one
combination and checks a file path (relative, inside the spec's folder through
symlinks, a picture file that exists). Whether an ``{asset: NAME}`` names an asset,
and whether the assets form a cycle, is checked once every asset is expanded
(:mod:`recraft_build.spec.graph`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping

from recraft_build.domain import ImageInput, Where
from recraft_build.spec import tables
from recraft_build.spec.merging import MERGED_FIELDS, Source
from recraft_build.spec.outputs import relative_path_problem
from recraft_build.spec.problems import Path as DocPath, ProblemLog

__all__ = ["FILE_EXTENSIONS", "InputMode", "RASTER_EXTENSIONS", "prepare_inputs", "render_inputs"]

#: Fields that describe a generation (everything merged from defaults but steps).
_GENERATION_FIELDS = tuple(k for k in MERGED_FIELDS if k != "steps")
#: Picture files an operation can take (recraft-api.md 1.7: PNG, JPG, WEBP).
RASTER_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
#: Files an asset can *be* (post-processing an SVG works too).
FILE_EXTENSIONS = RASTER_EXTENSIONS | {".svg"}


@dataclass(frozen=True)
class InputMode:
    """How an asset that takes an input picture is made (``Source.inputs``).

    ``kind`` is ``file`` (the picture is the file) or ``operation``; ``image`` and
    ``mask`` are the mappings as written (``{asset: ...}`` or ``{file: ...}``, templates);
    ``vector_file`` says a ``file`` asset's picture is an SVG.
    """

    kind: str
    operation: str | None
    image: Mapping[str, str]
    mask: Mapping[str, str] | None = None
    strength: float | None = None
    vector_file: bool = False

    @property
    def from_file(self) -> bool:
        return self.kind == "file"


def prepare_inputs(log: ProblemLog, s: Source) -> bool:
    """Decide how asset ``s`` is made; set ``s.inputs``; leave out the fields from
    ``defaults`` that its kind does not take and report its own ones. Returns True for
    a picture file (no model or style to check). Sets ``s.ok`` False when a problem
    makes expanding it pointless."""
    raw, dropped, base = s.asset.fields, s.asset.dropped, s.asset.path
    image = raw.get("image")
    if not isinstance(image, dict):
        if "image" in dropped:
            s.ok = False  # the schema refused it: what the asset is stays unknown
            return False
        for key in ("operation", "strength", "mask"):
            if key in raw:
                log.add(base + (key,), f"{key} needs an input picture",
                        "add image: {asset: NAME} or image: {file: PATH}, or remove it")
        return False
    if dropped & {"operation", "prompt", "mask", "strength"}:
        s.ok = False  # refused by the schema, already reported: the kind is unknown
        return False
    op, mask, strength = raw.get("operation"), raw.get("mask"), raw.get("strength")
    prompted = "prompt" in raw
    if op is None and not prompted:
        return _prepare_file(log, s, image)
    op = op or "image_to_image"
    info = s.model
    takes = info.image_operations.get(op)
    if takes is None:
        runs = sorted(m for m, i in tables.MODELS.items() if op in i.image_operations)
        where = base + ("operation",) if "operation" in raw else s.origins.get("model", base)
        log.add(where, f"model {info.name} does not run operation {op}",
                f"models that do: {', '.join(runs)}" if runs else "")
        s.ok = False
        return False
    if op in tables.PROMPTED_OPERATIONS and not prompted:
        log.add(base, f"operation {op} needs a prompt", "say what to draw: prompt: ...")
    if op not in tables.PROMPTED_OPERATIONS and prompted:
        log.add(base + ("prompt",), f"operation {op} takes no prompt", "remove the prompt")
    if op in tables.MASKED_OPERATIONS and mask is None:
        log.add(base, f"operation {op} needs a mask",
                "mask: {file: PATH}: a black and white picture the size of the input, "
                "white where the model redraws")
    if op == "image_to_image" and info.needs_strength and strength is None:
        log.add(base, f"image_to_image on {info.name} needs strength",
                "strength: 0.4 (0 keeps the picture, 1 changes it most)")
    for key in ("strength", "mask"):
        if key in raw and key not in takes:
            log.add(base + (key,), f"operation {op} on {info.name} takes no {key}", "remove it")
    for key in _GENERATION_FIELDS:
        if key == "model" or key in takes or key not in s.fields:
            continue
        origin = s.origins.get(key, base)
        if origin[:2] == base:
            log.add(origin, f"operation {op} on {info.name} takes no {key}", "remove it")
        del s.fields[key]  # from defaults: they describe text-to-image requests
    s.inputs = InputMode("operation", op, image, mask,
                         float(strength) if strength is not None else None)
    return False


def _prepare_file(log: ProblemLog, s: Source, image: Mapping[str, str]) -> bool:
    base = s.asset.path
    if "asset" in image:
        log.add(base + ("image",), "an asset made from another asset needs a prompt",
                "say what to draw (prompt: ...), or operation: variate")
        s.ok = False
        return False
    for key in _GENERATION_FIELDS + ("strength", "mask"):
        if key in s.asset.fields:
            log.add(base + (key,), f"a picture from a file takes no {key}",
                    "remove it: the file is the picture (add a prompt to have a model redraw it)")
        s.fields.pop(key, None)  # from defaults: nothing to generate
    source = str(image.get("file", ""))
    s.inputs = InputMode("file", None, image, vector_file=source.lower().endswith(".svg"))
    return True


def render_inputs(
    s: Source,
    render: Callable[[str, Where], str | None],
    add: Callable[[DocPath, str, str], None],
    where: Callable[[DocPath], Where],
    base_dir: Path,
) -> tuple[ImageInput | None, ImageInput | None, bool]:
    """``(image, mask, ok)`` of one combination of ``s``: each template rendered
    (``render(source, where)`` gives None on a problem it recorded) and each file path
    checked (``add(path, message, hint)`` records a problem of this combination)."""
    mode: InputMode = s.inputs
    out: list[ImageInput | None] = []
    ok = True
    for key, raw in (("image", mode.image), ("mask", mode.mask)):
        if raw is None:
            out.append(None)
            continue
        kind = "asset" if "asset" in raw else "file"
        path = s.asset.path + (key, kind)
        at = where(path)
        value = render(str(raw[kind]), at)
        if value is None:
            ok = False
            out.append(None)
            continue
        value = value.strip()
        if kind == "asset":
            out.append(ImageInput(asset=value, where=at))
            continue
        problem = _file_problem(value, base_dir, any_kind=mode.from_file and key == "image")
        if problem is not None:
            add(path, *problem)
            ok = False
            out.append(None)
            continue
        if mode.from_file and value.lower().endswith(".svg") != mode.vector_file:
            add(path, f"file {value!r}: whether the picture is an SVG must not depend on the matrix",
                "give every combination the same kind of file")
            ok = False
        out.append(ImageInput(file=value, where=at))
    return out[0], out[1], ok


def _file_problem(value: str, base_dir: Path, *, any_kind: bool) -> tuple[str, str] | None:
    """Why ``value`` is not a usable picture file of the project, or None."""
    problem = relative_path_problem(value)
    if problem is not None:
        return f"file {value!r} {problem[0]}", "write a path relative to the spec's folder"
    suffix = PurePosixPath(value).suffix.lower()
    allowed = FILE_EXTENSIONS if any_kind else RASTER_EXTENSIONS
    if suffix not in allowed:
        kinds = "png, jpg, webp or svg" if any_kind else "png, jpg or webp"
        return (f"file {value!r} is not a {kinds} picture",
                "models take PNG, JPG or WEBP pictures" if not any_kind else "use a picture file")
    base = base_dir.resolve()
    try:
        full = (base / value).resolve()
        inside = full.is_relative_to(base)
        exists = inside and full.is_file()
    except (OSError, RuntimeError) as exc:  # a link loop, a permission
        return f"file {value!r} cannot be read: {exc}", "check the file and its permissions"
    if not inside:
        return (f"file {value!r} leaves the spec's folder (a link?)",
                "keep input pictures inside the spec's folder")
    if not exists:
        return f"picture file not found: {value}", f"paths are relative to the spec's folder ({base_dir})"
    return None

