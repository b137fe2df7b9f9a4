"""Input pictures: the project's picture files, and handing pictures to the provider.

An asset may take a picture as input (``image:`` / ``mask:`` in the spec): a file of
the project, or another asset's picked picture. Both reach the provider the same way:
by sha256 through the cache. This module

* reads and hashes the files (:func:`read_sources`, once per command, by the session),
  so the planner knows their digests and the build can put their bytes in the cache
  (:func:`store_sources`) before anything needs them;
* wraps the provider (:class:`InputPictures`) so that a request made from pictures
  (``request.operation``, with ``request.image``/``request.mask`` digests) reaches the
  provider's ``generate_from_image`` with the pictures themselves, read from the cache.
  The executor calls ``generate`` as for any request: the budget, the store-first rule
  and the key lock apply unchanged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from recraft_build.cache.records import Candidate
from recraft_build.domain import FILE_MODEL, Asset, GenerationRequest, Picture, Spec, sniff_media_type
from recraft_build.engine import keys
from recraft_build.errors import Problem, RequestRejected, SpecError, StoreError

__all__ = ["InputPictures", "SourcePicture", "read_sources", "store_sources"]


@dataclass(frozen=True)
class SourcePicture:
    """A picture file of the project, as read now: where, its digest and what it is."""

    path: str
    sha256: str
    media_type: str
    width: int | None
    height: int | None
    size: int

    def candidate(self) -> Candidate:
        """The file as the one candidate of an asset whose picture it is."""
        return Candidate(self.sha256, self.media_type, self.width, self.height, self.size, {})


def _file_inputs(assets: Iterable[Asset]) -> dict[str, Any]:
    """path -> the first ImageInput naming it (for placing a problem)."""
    out: dict[str, Any] = {}
    for a in assets:
        for inp in a.inputs():
            if inp.file is not None:
                out.setdefault(inp.file, inp)
    return out


def read_sources(spec: Spec) -> dict[str, SourcePicture]:
    """Every picture file the spec's assets take, read and hashed (SpecError, placed at
    the field, for a file that cannot be read or is not a picture)."""
    base = spec.path.parent
    out: dict[str, SourcePicture] = {}
    problems: list[Problem] = []
    for path, inp in _file_inputs(spec.assets).items():
        w = inp.where
        place = (w.file, w.line, w.col, w.path) if w is not None else (str(spec.path), 0, 0, "")
        try:
            data = (base / path).read_bytes()
        except OSError as exc:
            problems.append(Problem(*place, f"cannot read {path}: {exc.strerror or exc}", "check the file"))
            continue
        media = sniff_media_type(data)
        if media is None:
            problems.append(Problem(*place, f"{path} is not a PNG, JPG, WEBP or SVG picture",
                                    "check the file's content (its name says picture, its bytes do not)"))
            continue
        width = height = None
        if media != "image/svg+xml":
            try:
                from PIL import Image

                with Image.open(io.BytesIO(data)) as im:
                    width, height = im.size
            except Exception as exc:  # Pillow raises many kinds for a broken file
                problems.append(Problem(*place, f"{path} cannot be decoded: {exc}", "check the file"))
                continue
        out[path] = SourcePicture(path, keys.digest_bytes(data), media, width, height, len(data))
    if problems:
        raise SpecError(problems)
    return out


def store_sources(store: Any, base: Path, sources: Mapping[str, SourcePicture]) -> None:
    """Put each file's bytes in the cache (unless there already), checking they are still
    what was planned: a file edited between planning and building is an error, not a
    silent change of an input."""
    for src in sources.values():
        if store.has_blob(src.sha256):
            continue
        data = (base / src.path).read_bytes()
        if keys.digest_bytes(data) != src.sha256:
            raise SpecError([Problem(str(base / src.path), 0, 0, "", f"{src.path} changed while the build ran",
                                     "run the build again")])
        store.put_blob(data)


class InputPictures:
    """A provider that also takes requests made from pictures (see the module docstring).

    Everything but ``generate`` is the wrapped provider's (attributes included).
    """

    def __init__(self, provider: Any, store: Any):
        self._inner = provider
        self._store = store
        self.name, self.family, self.paid = provider.name, provider.family, provider.paid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, request: GenerationRequest, *, asset: str) -> Any:
        """``request`` as the provider takes it: a plain request goes through as is; one
        made from pictures goes to ``generate_from_image`` with the pictures."""
        if request.operation is None:
            return self._inner.generate(request, asset=asset)
        if request.operation == FILE_MODEL:
            # Only when the cache lost the file's bytes mid-build: nothing to generate.
            raise StoreError(f"asset {asset!r}: its picture file left the cache during the build; run it again")
        method = getattr(self._inner, "generate_from_image", None)
        if method is None:
            raise RequestRejected(
                f"provider {self.name} cannot make a picture from another picture ({request.operation})",
                provider=self.name, asset=asset,
            )
        image = self._picture(request.image, "input picture", asset)
        mask = self._picture(request.mask, "mask", asset) if request.mask else None
        return method(request, image, mask=mask, asset=asset)

    def _picture(self, digest: str | None, what: str, asset: str) -> Picture:
        if not digest:
            raise StoreError(f"asset {asset!r}: its {what} is not known yet (this is a bug: please report it)")
        data = self._store.get_blob(digest)
        if data is None:
            raise StoreError(
                f"asset {asset!r}: its {what} {digest[:12]} is in no cache (restore it from a remote "
                "cache, or build the asset it comes from first)"
            )
        return Picture(data, sniff_media_type(data) or "application/octet-stream")
