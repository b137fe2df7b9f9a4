"""The lock file's entries, typed: what each approved asset pins, checked on load.

:class:`~recraft_build.engine.lock.Lock` handles the file (atomic writes, merging with
other writers); this module is its content. One :class:`LockedAsset` per asset::

    generation: LockedGeneration   key, family, provider, request, candidates, pick, credits, roll
    steps:      (LockedStep, ...)  the asset's own chain: step, key, sha256
    outputs:    (LockedOutput, ...) path, key (of the final export), steps, files

Values are never changed once made (``replace`` makes a changed copy), so entries
are shared without copying; they are not ``frozen`` dataclasses only because those are
four times slower to construct, and a no-op build reads 10,000 of them. ``from_json`` checks the
shape of what a pull request may have put in the lock (digests are 64 hex digits,
paths stay inside the output tree, the pick is in range) and raises
:class:`~recraft_build.jsonshape.ShapeError` naming the field; ``to_json`` gives back
the exact object an entry was read from when it is unchanged, so upgrading the tool
never rewrites entries nobody touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from recraft_build.cache.records import Candidate
from recraft_build.jsonshape import Fields, ShapeError
from recraft_build.relpath import is_output_path

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


def relpath_ok(value: Any) -> bool:
    """True for a path an output may have (:func:`recraft_build.relpath.is_output_path`):
    relative, inside the output tree, no device names or temp-file names."""
    return is_output_path(value)


def check_relpath(value: str, where: str) -> str:
    """``value`` if it is a relative path inside the output tree, else ShapeError."""
    if not relpath_ok(value):
        raise ShapeError(where, f"must be a relative path inside the output folder, not {value!r}")
    return value


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
class LockedAsset:
    """Everything the lock pins for one asset."""

    generation: LockedGeneration
    steps: tuple[LockedStep, ...] = ()
    outputs: tuple[LockedOutput, ...] = ()
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "LockedAsset":
        # A lock of 10,000 assets is read by every no-op build: well-formed entries take
        # a fast path; anything unusual is checked field by field for a precise error.
        try:
            return _fast_asset(data)
        except _Unusual:
            return cls._checked(data, where)

    @classmethod
    def _checked(cls, data: Any, where: str) -> "LockedAsset":
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


@dataclass(slots=True)
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


# -- the fast path for well-formed entries -------------------------------------------------
# It accepts exactly what the checked path accepts (tests compare both on the same
# entries) and raises _Unusual on anything else, so errors always come from the checked path.


class _Unusual(Exception):
    pass


_HEX = frozenset("0123456789abcdef")


def _credits(value: Any) -> Any:
    if value is None:
        return None
    t = type(value)
    if t is int and value >= 0:
        return value
    if t is float and value == value and value >= 0:
        return value
    raise _Unusual


def _fast_step(x: Any) -> LockedStep:
    if type(x) is not dict:
        raise _Unusual
    step, key, sha = x.get("step"), x.get("key"), x.get("sha256")
    if not (type(step) is str and _isd(key) and _isd(sha)):
        raise _Unusual
    return LockedStep(step, key, sha, x)


def _isd(v: Any, _hex: frozenset[str] = _HEX) -> bool:
    return type(v) is str and len(v) == 64 and _hex.issuperset(v)


def _isl(v: Any) -> bool:
    return v is None or type(v) is list


def _isn(v: Any) -> bool:
    return v is None or (type(v) is int and v >= 0)


def _fast_asset(data: Any) -> LockedAsset:
    # Inlined on purpose: this runs for every entry of every lock a build reads.
    if type(data) is not dict:
        raise _Unusual
    g = data.get("generation")
    if type(g) is not dict:
        raise _Unusual
    raw_cands = g.get("candidates")
    if type(raw_cands) is not list or not raw_cands:
        raise _Unusual
    cands = []
    for c in raw_cands:
        if type(c) is not dict:
            raise _Unusual
        sha, mt, w, h, b, meta = (
            c.get("sha256"), c.get("media_type"), c.get("width"), c.get("height"), c.get("bytes"), c.get("meta")
        )
        if meta is None:
            meta = {}
        if not (
            _isd(sha) and (mt is None or type(mt) is str) and _isn(w) and _isn(h) and _isn(b) and type(meta) is dict
        ):
            raise _Unusual
        cands.append(Candidate(sha, mt, w, h, b, meta, c))
    pick, roll, key, family, provider, request = (
        g.get("pick"), g.get("roll"), g.get("key"), g.get("family"), g.get("provider"), g.get("request")
    )
    if request is None:
        request = {}
    if not (
        _isn(pick) and (pick or 0) < len(cands) and _isn(roll) and _isd(key) and type(family) is str
        and (provider is None or type(provider) is str) and type(request) is dict
    ):
        raise _Unusual
    gen = LockedGeneration(
        key, family, provider, request, tuple(cands), pick or 0, _credits(g.get("credits")), roll or 0, g,
    )
    outputs = []
    raw_outputs, raw_steps = data.get("outputs"), data.get("steps")
    if not (_isl(raw_outputs) and _isl(raw_steps)):
        raise _Unusual
    for o in raw_outputs or ():
        if type(o) is not dict:
            raise _Unusual
        path, okey, raw_files, raw_steps_o = o.get("path"), o.get("key"), o.get("files"), o.get("steps")
        if not (relpath_ok(path) and _isd(okey) and _isl(raw_files) and _isl(raw_steps_o)):
            raise _Unusual
        files = []
        for x in raw_files or ():
            if type(x) is not dict:
                raise _Unusual
            fp, fsha, fb, ff, fw, fh = (
                x.get("path"), x.get("sha256"), x.get("bytes"), x.get("format"), x.get("width"), x.get("height")
            )
            if not (relpath_ok(fp) and _isd(fsha) and _isn(fb) and (ff is None or type(ff) is str) and _isn(fw)
                    and _isn(fh)):
                raise _Unusual
            files.append(LockedFile(fp, fsha, fb, ff, fw, fh, x))
        outputs.append(LockedOutput(path, okey, tuple(map(_fast_step, raw_steps_o or ())), tuple(files), o))
    return LockedAsset(gen, tuple(map(_fast_step, raw_steps or ())), tuple(outputs), data)
