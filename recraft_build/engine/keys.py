"""The only place a cache key is computed.

A key is the sha256 of the canonical JSON of a small versioned dict. Canonical means:
sorted keys, no insignificant white space, UTF-8, no NaN (the package's one codec,
:mod:`recraft_build.cache.codec`), and ``None`` values dropped
(so adding a new optional field to a request does not change the keys of requests that
do not use it). Golden-digest tests pin every key kind: a change here is a reviewed
decision, because it re-generates (re-pays for) every picture.

What goes in, and what never does:

* A **generation key** holds the model family (``recraft`` vs ``placeholder``, so a
  stand-in picture is never mistaken for a real one), the model, the rendered prompt and
  every parameter that changes the picture, plus a style's own key when the asset uses a
  custom style. Never a token, an output path, a timeout, a base URL or the provider's
  profile name: the official API and a proxy of the same model share the cache.
* A **step key** holds the step's name, its parameters (with ``engine`` resolved), its
  implementation version, the family when a provider runs it, and the sha256 of its
  input picture. So changing a resize never re-generates, and a step's cache hit is
  known as soon as its input's digest is (from the lock or the store).
* A **style key** holds the family, the base style and the digests of the reference files.
* An asset **made from another picture** (``image:``) has a generation key like any
  other, whose request also holds the operation, its ``strength`` and the sha256 of the
  input picture and mask (``request_fields``): the digest of the parent's *picked
  picture*, never the parent's key. So a new pick or re-roll of the parent changes the
  child's key, and nothing about the child can change the parent's.
* A **file key** holds the sha256 of a file that is itself an asset's picture
  (``image: {file: ...}`` with no prompt): moving or renaming the file changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

from recraft_build.cache import codec
from recraft_build.domain import GenerationRequest

__all__ = [
    "KEY_VERSION",
    "atlas_key",
    "canonical_json",
    "digest_bytes",
    "file_key",
    "generation_key",
    "key_of",
    "request_fields",
    "step_key",
    "style_key",
]

#: Bumped only when the shape of every key changes (and so every picture is re-made).
KEY_VERSION = 1


def _drop_none(value: Any) -> Any:
    # Exact type checks first: this runs for every asset of a no-op build, and
    # isinstance() against the Mapping ABC is an order of magnitude slower.
    t = type(value)
    if t is str or t is int or t is float or t is bool:
        return value
    if t is dict or isinstance(value, Mapping):
        return {str(k): _drop_none(v) for k, v in value.items() if v is not None}
    if t is list or t is tuple:
        return [_drop_none(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` with ``None`` values dropped (see module
    docstring; the encoding itself is :func:`recraft_build.cache.codec.canonical_json`)."""
    return codec.canonical_json(_drop_none(value))


def digest_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data`` (the blob address in the store)."""
    return hashlib.sha256(data).hexdigest()


def key_of(kind: str, payload: Mapping[str, Any], *, clean: bool = False) -> str:
    """The key of a versioned ``payload`` of ``kind``.

    ``clean`` promises the payload holds no ``None`` anywhere (it skips that pass; the
    digest is the same either way).
    """
    body = {"v": KEY_VERSION, "kind": kind, **payload}
    return digest_bytes(codec.canonical_json(body if clean else _drop_none(body)))


def request_fields(
    request: GenerationRequest, *, style_key: str | None = None
) -> dict[str, Any]:
    """The fields of ``request`` that determine its picture, as plain JSON data.

    This is what a generation key hashes (with the family) and what the lock records
    so that ``status`` can say which field changed. ``None`` fields are left out.
    """
    fields: dict[str, Any] = {"model": request.model, "prompt": request.prompt, "n": request.n}
    for name, value in (
        ("negative_prompt", request.negative_prompt),
        ("style", request.style),
        ("substyle", request.substyle),
        ("style_id", request.style_id),
        ("custom_style", style_key),
        ("size", request.size),
        ("aspect_ratio", request.aspect_ratio),
        ("seed", request.seed),
        # Made from other pictures: absent (None) for every other request, so their keys
        # are unchanged.
        ("operation", request.operation),
        ("strength", request.strength),
        ("image", request.image),
        ("mask", request.mask),
    ):
        if value is not None:
            fields[name] = value
    if request.controls:
        fields["controls"] = _drop_none(dict(request.controls))
    if request.text_layout:
        fields["text_layout"] = [_drop_none(dict(t)) for t in request.text_layout]
    return fields


def generation_key(
    family: str, request: GenerationRequest, *, style_key: str | None = None, roll: int = 0
) -> str:
    """Key of a generation request made by a provider of ``family``.

    ``style_key`` is the key of the custom style the request uses (``request.style_ref``),
    so changing a reference picture re-generates the assets that use the style.
    ``roll`` counts re-rolls (``recraft-build reroll``): 0 leaves the key as if absent,
    each re-roll asks for a fresh candidate set of the same request.
    """
    payload = {"family": family, **request_fields(request, style_key=style_key)}
    if roll:
        payload["roll"] = int(roll)
    return key_of("generate", payload, clean=True)


def file_key(digest: str) -> str:
    """Key of an asset whose picture is a file of the project with this sha256."""
    return key_of("file", {"sha256": digest}, clean=True)


def step_key(
    name: str,
    params: Mapping[str, Any],
    version: int,
    input_digest: str,
    *,
    family: str | None = None,
) -> str:
    """Key of running step ``name`` (implementation ``version``) on the input blob.

    ``family`` is set only when a provider runs the step (``engine: provider``).
    """
    payload: dict[str, Any] = {
        "step": name,
        "params": _drop_none(dict(params)),
        "impl": version,
        "input": input_digest,
    }
    if family is not None:
        payload["family"] = family
    return key_of("step", payload, clean=True)


def style_key(family: str, base_style: str, reference_digests: Sequence[str]) -> str:
    """Key of a custom style made from reference files (order matters: it is the spec's)."""
    return key_of(
        "style",
        {"family": family, "style": base_style, "references": list(reference_digests)},
    )


def atlas_key(params: Mapping[str, Any], version: int, frames: Sequence[tuple[str, str]]) -> str:
    """Key of one atlas at one scale: its parameters (path, scale, packing and format
    options), the packer's implementation ``version`` and each frame's ``(name, sha256
    of its file)``, in the order packed. An atlas is rebuilt exactly when one of these
    changes; a no-op build finds it up to date without decoding a frame.
    """
    return key_of(
        "atlas",
        {"params": _drop_none(dict(params)), "impl": version, "frames": [[n, d] for n, d in frames]},
    )
