"""The lock file's entries, typed: what each approved asset pins, checked on load.

:class:`~recraft_build.engine.lock.Lock` handles the file (atomic writes, merging with
other writers); this module is its content. One :class:`LockedAsset` per asset::

    generation: LockedGeneration   key, family, provider, request, candidates, pick, credits, roll
    steps:      (LockedStep, ...)  the asset's own chain: step, key, sha256
    outputs:    (LockedOutput, ...) path, key (of the final export), steps, files

Every value is frozen, so entries are shared without copying. ``from_json`` checks the
shape of what a pull request may have put in the lock (digests are 64 hex digits,
paths stay inside the output tree, the pick is in range) and raises
:class:`~recraft_build.jsonshape.ShapeError` naming the field; ``to_json`` gives back
the exact object an entry was read from when it is unchanged, so upgrading the tool
never rewrites entries nobody touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable, Iterator, Mapping

from recraft_build.cache.records import Candidate
from recraft_build.jsonshape import Fields, ShapeError

__all__ = [
    "Candidate",
    "LockedAsset",
    "LockedFile",
    "LockedGeneration",
    "LockedOutput",
    "LockedStep",
    "LockedStyle",
    "check_relpath",
]


def check_relpath(value: str, where: str) -> str:
    """``value`` if it is a relative path inside the output tree, else ShapeError."""
    p = PurePosixPath(value)
    if (
        not value
        or p.is_absolute()
        or "\\" in value
        or any(part in ("..", ".") for part in value.split("/"))
        or "\x00" in value
        or (len(value) > 1 and value[1] == ":")
    ):
        raise ShapeError(where, f"must be a relative path inside the output folder, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class LockedGeneration:
    """The generation an asset's outputs are made from, and which candidate is used."""

    key: str
    family: str
    provider: str | None
    request: Mapping[str, Any]
    candidates: tuple[Candidate, ...]
    pick: int = 0
    credits: float | None = None
    roll: int = 0
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> "LockedGeneration":
        f = Fields(data, where)
        cands = tuple(Candidate.from_json(c, f"{f.at('candidates')}[{i}]") for i, c in enumerate(f.list("candidates")))
        if not cands:
            raise ShapeError(f.at("candidates"), "is empty: an entry pins at least one picture")
        pick = f.int("pick", optional=True, default=0)
        if pick >= len(cands):
            raise ShapeError(f.at("pick"), f"is {pick}, but there are {len(cands)} candidate(s)")
        return cls(
            f.digest("key"), f.str("family"), f.str("provider", optional=True), f.mapping("request"), cands,
            pick, f.number("credits"), f.int("roll", optional=True, default=0), data,
        )

    @property
    def picked(self) -> Candidate | None:
        """The candidate in use (None when there are none)."""
        return self.candidates[self.pick] if 0 <= self.pick < len(self.candidates) else None

    def replace(self, **changes: Any) -> "LockedGeneration":
        """A changed copy (no longer tied to the JSON it was read from)."""
        return dataclasses.replace(self, _json=None, **changes)

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        out: dict[str, Any] = {
            "key": self.key,
            "family": self.family,
            "provider": self.provider,
            "credits": self.credits,
            "request": dict(self.request),
            "candidates": [c.to_json() for c in self.candidates],
            "pick": self.pick,
        }
        if self.roll:
            out["roll"] = self.roll
        return out


@dataclass(frozen=True, slots=True)
class LockedStep:
    """One step of a chain: its key and the digest of what it made."""

    step: str
    key: str
    sha256: str
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> "LockedStep":
        f = Fields(data, where)
        return cls(f.str("step"), f.digest("key"), f.digest("sha256"), data)

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        return {"step": self.step, "key": self.key, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class LockedFile:
    """One file written to the output tree, with the digest the lock pins."""

    path: str
    sha256: str
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> "LockedFile":
        f = Fields(data, where)
        return cls(
            check_relpath(f.str("path"), f.at("path")), f.digest("sha256"), f.int("bytes", optional=True),
            f.str("format", optional=True), f.int("width", optional=True), f.int("height", optional=True), data,
        )

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        return {
            "path": self.path, "sha256": self.sha256, "bytes": self.bytes, "format": self.format,
            "width": self.width, "height": self.height,
        }


@dataclass(frozen=True, slots=True)
class LockedOutput:
    """One spec output: the key of its final export, its own steps, and its files."""

    path: str
    key: str
    steps: tuple[LockedStep, ...]
    files: tuple[LockedFile, ...]
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> "LockedOutput":
        f = Fields(data, where)
        return cls(
            check_relpath(f.str("path"), f.at("path")),
            f.digest("key"),
            tuple(LockedStep.from_json(s, f"{f.at('steps')}[{i}]") for i, s in enumerate(f.list("steps"))),
            tuple(LockedFile.from_json(x, f"{f.at('files')}[{i}]") for i, x in enumerate(f.list("files"))),
            data,
        )

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        return {
            "path": self.path, "key": self.key, "steps": [s.to_json() for s in self.steps],
            "files": [x.to_json() for x in self.files],
        }


@dataclass(frozen=True, slots=True)
class LockedAsset:
    """Everything the lock pins for one asset."""

    generation: LockedGeneration
    steps: tuple[LockedStep, ...] = ()
    outputs: tuple[LockedOutput, ...] = ()
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "LockedAsset":
        f = Fields(data, where)
        return cls(
            LockedGeneration.from_json(f.data.get("generation"), f.at("generation")),
            tuple(LockedStep.from_json(s, f"{f.at('steps')}[{i}]") for i, s in enumerate(f.list("steps"))),
            tuple(LockedOutput.from_json(o, f"{f.at('outputs')}[{i}]") for i, o in enumerate(f.list("outputs"))),
            data,
        )

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return self._json  # type: ignore[return-value]
        return {
            "generation": self.generation.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "outputs": [o.to_json() for o in self.outputs],
        }

    def with_generation(self, generation: LockedGeneration) -> "LockedAsset":
        return LockedAsset(generation, self.steps, self.outputs)

    def output(self, path: str) -> LockedOutput | None:
        return next((o for o in self.outputs if o.path == path), None)

    def files(self) -> Iterator[LockedFile]:
        for o in self.outputs:
            yield from o.files

    def digests(self) -> Iterable[str]:
        """Every blob digest this entry pins (candidates, steps, files)."""
        for c in self.generation.candidates:
            yield c.sha256
        for s in self.steps:
            yield s.sha256
        for o in self.outputs:
            for s in o.steps:
                yield s.sha256
            for x in o.files:
                yield x.sha256

    def keys(self) -> Iterable[str]:
        """Every cache key this entry pins (generation, steps, exports)."""
        yield self.generation.key
        for s in self.steps:
            yield s.key
        for o in self.outputs:
            yield o.key
            for s in o.steps:
                yield s.key


@dataclass(frozen=True, slots=True)
class LockedStyle:
    """A custom style created once at the provider: its key and the provider's id."""

    key: str
    style_id: str
    provider: str | None = None
    credits: float | None = None
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "LockedStyle":
        f = Fields(data, where)
        return cls(f.digest("key"), f.str("style_id"), f.str("provider", optional=True), f.number("credits"), data)

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        out: dict[str, Any] = {"key": self.key, "style_id": self.style_id, "provider": self.provider}
        if self.credits is not None:
            out["credits"] = self.credits
        return out
