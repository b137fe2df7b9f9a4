"""The cache's action records, typed: what a key made, checked before the engine uses it.

The store keeps a JSON object under each key (the local cache, a team's HTTP server,
a bucket or a shared folder); this module is the one codec between that JSON and the
engine. Four kinds:

* :class:`GenerationRecord` (``kind: generate``): the candidate pictures a request made,
  what they cost and who made them;
* :class:`StepRecord` (``kind: step``): the picture one step made from its input;
* :class:`ExportRecord` (``kind: export | favicon``): the file(s) an output's final
  export wrote, by file name within the output (``""`` for the single file);
* :class:`StyleRecord` (``kind: style``): a custom style's provider id.

A record from a shared cache may be malformed or hostile: :func:`decode` checks every
field (digests are hex, names are plain file names) and :class:`RecordReader` turns a
bad record into a warned miss, as the store does for a corrupt blob. A record is never
trusted over the lock: the engine compares what it pins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, TypeVar, Union

from recraft_build.jsonshape import Fields, ShapeError

__all__ = [
    "Candidate",
    "ExportFile",
    "ExportRecord",
    "GenerationRecord",
    "Record",
    "RecordReader",
    "StepOutput",
    "StepRecord",
    "StyleRecord",
    "decode",
]

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(slots=True)
class Candidate:
    """One candidate picture of a generation (its blob is ``sha256`` in the cache)."""

    sha256: str
    media_type: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    _json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Candidate":
        f = Fields(data, where)
        return cls(
            f.digest("sha256"), f.str("media_type", optional=True), f.int("width", optional=True),
            f.int("height", optional=True), f.int("bytes", optional=True), f.mapping("meta"), data,
        )

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return dict(self._json)
        return {
            "sha256": self.sha256, "media_type": self.media_type, "width": self.width,
            "height": self.height, "bytes": self.bytes, "meta": dict(self.meta),
        }


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    candidates: tuple[Candidate, ...]
    provider: str | None = None
    family: str | None = None
    credits: float | None = None
    credits_estimated: bool | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    kind = "generate"

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "GenerationRecord":
        f = Fields(data, where)
        cands = tuple(Candidate.from_json(c, f"{f.at('candidates')}[{i}]") for i, c in enumerate(f.list("candidates")))
        if not cands:
            raise ShapeError(f.at("candidates"), "is empty")
        return cls(
            cands, f.str("provider", optional=True), f.str("family", optional=True), f.number("credits"),
            f.bool("credits_estimated"), f.mapping("meta"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "candidates": [c.to_json() for c in self.candidates],
            "credits": self.credits,
            "credits_estimated": self.credits_estimated,
            "provider": self.provider,
            "family": self.family,
            "meta": dict(self.meta),
        }


@dataclass(frozen=True, slots=True)
class StepOutput:
    sha256: str
    media_type: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: str
    output: StepOutput
    credits: float | None = None

    kind = "step"

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "StepRecord":
        f = Fields(data, where)
        o = Fields(f.data.get("output"), f.at("output"))
        out = StepOutput(
            o.digest("sha256"), o.str("media_type", optional=True), o.int("width", optional=True),
            o.int("height", optional=True), o.int("bytes", optional=True),
        )
        return cls(f.str("step"), out, f.number("credits"))

    def to_json(self) -> dict[str, Any]:
        o = self.output
        return {
            "kind": self.kind,
            "step": self.step,
            "output": {
                "sha256": o.sha256, "media_type": o.media_type, "width": o.width, "height": o.height,
                "bytes": o.bytes,
            },
            "credits": self.credits,
        }


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file of an export: ``name`` is ``""`` for an ordinary output's single file, or
    a plain file name within a favicon set's folder (``favicon.ico``)."""

    name: str
    sha256: str
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "sha256": self.sha256, "bytes": self.bytes, "format": self.format,
            "width": self.width, "height": self.height,
        }


@dataclass(frozen=True, slots=True)
class ExportRecord:
    kind: str  # "export" | "favicon" | "atlas"
    files: tuple[ExportFile, ...]

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "ExportRecord":
        f = Fields(data, where)
        kind = f.str("kind")
        files = []
        for i, item in enumerate(f.list("files")):
            x = Fields(item, f"{f.at('files')}[{i}]")
            name = x.str("name")
            if name and not _FILE_NAME.fullmatch(name):
                raise ShapeError(x.at("name"), f"must be a plain file name, not {name!r}")
            files.append(
                ExportFile(
                    name, x.digest("sha256"), x.int("bytes", optional=True), x.str("format", optional=True),
                    x.int("width", optional=True), x.int("height", optional=True),
                )
            )
        if not files:
            raise ShapeError(f.at("files"), "is empty")
        names = [x.name for x in files]
        if len(set(names)) != len(names):
            raise ShapeError(f.at("files"), "names a file twice")
        if kind == "export" and names != [""]:
            raise ShapeError(f.at("files"), "an export record holds exactly one unnamed file")
        return cls(kind, tuple(files))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": [x.to_json() for x in self.files]}


@dataclass(frozen=True, slots=True)
class StyleRecord:
    style_id: str
    provider: str | None = None
    credits: float | None = None

    kind = "style"

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "StyleRecord":
        f = Fields(data, where)
        return cls(f.str("style_id"), f.str("provider", optional=True), f.number("credits"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "style_id": self.style_id, "provider": self.provider}
        if self.credits is not None:
            out["credits"] = self.credits
        return out


Record = Union[GenerationRecord, StepRecord, ExportRecord, StyleRecord]
R = TypeVar("R", GenerationRecord, StepRecord, ExportRecord, StyleRecord)

_BY_KIND: Mapping[str, Any] = {
    "generate": GenerationRecord,
    "step": StepRecord,
    "export": ExportRecord,
    "favicon": ExportRecord,
    "atlas": ExportRecord,  # a sprite atlas's pages, JSON and CSS (engine.atlas)
    "style": StyleRecord,
}


def decode(data: Any) -> Record:
    """The typed record of a stored JSON object; ShapeError when it is malformed."""
    f = Fields(data, "")
    kind = f.data.get("kind")
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ShapeError("kind", f"unknown record kind {kind!r}")
    return cls.from_json(data, "")


class _RawRecords(Protocol):
    def get_record(self, key: str) -> Any: ...


class RecordReader:
    """Typed, shape-checked reads of a store's records.

    A missing record is None; a malformed one, or one of another kind than asked for,
    is reported through ``warn`` once and read as None (a miss: the engine recomputes,
    or for a generation the plan says so), never an exception. ``memo`` keeps what was
    read (for the planner, which asks for each key once per plan and never sees writes).
    """

    def __init__(self, store: _RawRecords, warn: Callable[[str], None] = lambda m: None, *, memo: bool = False):
        self._store = store
        self._warn = warn
        self._memo: dict[str, Any] | None = {} if memo else None

    def _get(self, key: str) -> Any:
        if self._memo is None:
            return self._decoded(key)
        if key not in self._memo:
            self._memo[key] = self._decoded(key)
        return self._memo[key]

    def _decoded(self, key: str) -> Record | None:
        raw = self._store.get_record(key)
        if raw is None:
            return None
        try:
            return decode(raw)
        except ShapeError as exc:
            self._warn(f"cache record {key[:12]} is malformed ({exc}); ignored")
            return None

    def _typed(self, key: str | None, cls: type[R]) -> R | None:
        if not key:
            return None
        rec = self._get(key)
        if rec is None:
            return None
        if not isinstance(rec, cls):
            self._warn(f"cache record {key[:12]} is a {type(rec).__name__}, not a {cls.__name__}; ignored")
            return None
        return rec

    def generation(self, key: str | None) -> GenerationRecord | None:
        return self._typed(key, GenerationRecord)

    def step(self, key: str | None) -> StepRecord | None:
        return self._typed(key, StepRecord)

    def export(self, key: str | None) -> ExportRecord | None:
        return self._typed(key, ExportRecord)

    def style(self, key: str | None) -> StyleRecord | None:
        return self._typed(key, StyleRecord)
