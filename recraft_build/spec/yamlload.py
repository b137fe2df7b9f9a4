"""Safe YAML loading that remembers where every value was written.

:func:`load_yaml` turns YAML text into plain Python data (dict, list, str, int,
float, bool, None) and a :class:`YamlDocument` that maps every value's *path*
(``("assets", 0, "outputs", 1, "path")``) to its 1-based line and column, so that a
schema error deep in the data can still say ``assets.yaml:14:9``.

Why not ``yaml.safe_load`` or ``yaml.compose``: the libyaml composer recurses in C
and crashed the interpreter (SIGSEGV) on 100,000 nested ``[``, and a 5-million item
list cost 1.4 GB of node objects (measured with PyYAML 6.0.3). Here we read the flat
event stream (libyaml's parser is a state machine, not recursive) and build values
with an explicit stack, checking every guard as we go:

* a file larger than ``max_bytes`` (10 MB) is refused before parsing;
* nesting deeper than ``max_depth`` is refused;
* aliases are *counted* by the size of what they repeat, and the document is refused
  as soon as the logical size passes ``max_nodes``: an alias bomb ("billion laughs")
  is refused in milliseconds, without expanding it. Aliased values are shared, not
  copied, so callers must treat the data as read-only;
* mapping keys must be strings; duplicate keys are refused naming both lines;
* only the standard tags (str, int, float, bool, null, seq, map) are accepted;
  ``!!python/object``, ``!!binary``, ``!!set``, custom ``!tags`` are refused;
* one document per file; non-finite numbers (``.inf``, ``.nan``) are refused.

Plain scalars are resolved by the YAML 1.2 core schema, the one the YAML language
server (editor help) uses: ``yes``/``no``/``on``/``off`` are strings, and so is
``16:9`` (YAML 1.1 would read it as the sexagesimal integer 969), so
``aspect_ratio: 16:9`` means what it says. Merge keys (``<<: *base``) are supported.

Every problem is raised as :class:`~recraft_build.errors.SpecError` with a
:class:`~recraft_build.errors.Problem` naming the file, line and column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from recraft_build.errors import Problem, SpecError, UsageError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlDocument",
    "format_path",
    "load_yaml",
    "read_spec_text",
]

#: Largest file accepted. A real spec is a few kilobytes; a 10,000-asset matrix is short.
MAX_BYTES = 10 * 1024 * 1024
#: Most values (counting every repetition an alias makes) accepted in one document.
#: A hand-written 5,000-asset list is about 100,000; this leaves ten times that.
MAX_NODES = 1_000_000
#: Deepest nesting accepted. A spec needs about 8 levels.
MAX_DEPTH = 100

_Path = tuple  # tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")} | {"!"}
_SEQ_TAGS = {_TAG + "seq", "!"}
_MAP_TAGS = {_TAG + "map", "!"}
_MERGE_KEY = "<<"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1023-core-schema).
_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT10_RE = re.compile(r"[-+]?[0-9]+\Z")
_INT8_RE = re.compile(r"0o[0-7]+\Z")
_INT16_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_NONFINITE_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z|\.(?:nan|NaN|NAN)\Z")
# Python refuses str -> int past 4300 digits (CVE-2020-10735); no spec needs 100.
_MAX_INT_DIGITS = 100


def format_path(path: tuple[Any, ...]) -> str:
    """``("assets", 2, "outputs", 0, "path")`` -> ``assets[2].outputs[0].path``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(("." if out else "") + str(part))
    return "".join(out)


@dataclass
class YamlDocument:
    """Loaded YAML data plus where each value was written.

    ``data`` is the document (None for an empty file). It may share objects where
    the YAML used aliases or merge keys: treat it as read-only.
    :meth:`position` and :meth:`key_position` give 1-based ``(line, col)`` for a
    path; a path that does not exist falls back to its nearest existing ancestor,
    and ``(0, 0)`` means unknown.
    """

    data: Any
    filename: str
    _values: dict[_Path, tuple[int, int]] = field(default_factory=dict, repr=False)
    _keys: dict[_Path, tuple[int, int]] = field(default_factory=dict, repr=False)
    # Alias and merge uses: a path inside repeated data -> where it was written.
    _redirects: dict[_Path, _Path] = field(default_factory=dict, repr=False)

    def _concrete(self, path: _Path) -> _Path:
        """Rewrite a path through aliases/merges to the place its value was written."""
        path = tuple(path)
        for _ in range(MAX_DEPTH * 4):  # each rewrite moves strictly earlier in the file
            for i in range(len(path), 0, -1):
                target = self._redirects.get(path[:i])
                if target is not None:
                    path = target + path[i:]
                    break
            else:
                return path
        return path

    def position(self, path: tuple[Any, ...]) -> tuple[int, int]:
        """Line and column of the value at ``path`` (or of its nearest ancestor)."""
        path = self._concrete(path)
        for i in range(len(path), -1, -1):
            pos = self._values.get(path[:i])
            if pos is not None:
                return pos
        return (0, 0)

    def key_position(self, path: tuple[Any, ...]) -> tuple[int, int]:
        """Line and column of the mapping *key* that ends ``path``.

        Falls back to :meth:`position` when the last element is not a key.
        """
        concrete = self._concrete(path)
        pos = self._keys.get(concrete)
        return pos if pos is not None else self.position(path)

    def problem(self, path: tuple[Any, ...], message: str, hint: str = "", *,
                at_key: bool = False) -> Problem:
        """A :class:`Problem` placed at ``path`` (at its key when ``at_key``)."""
        line, col = self.key_position(path) if at_key else self.position(path)
        return Problem(self.filename, line, col, format_path(tuple(path)), message, hint)


def read_spec_text(path: Path, *, display_name: str | None = None,
                   max_bytes: int = MAX_BYTES) -> str:
    """Read a spec file as text, refusing what cannot be a spec.

    A path that does not exist (or is a folder) raises
    :class:`~recraft_build.errors.UsageError`: it is a command-line mistake, like
    ``make -f missing``. A file that exists but cannot be read, is larger than
    ``max_bytes`` or is not UTF-8 raises :class:`~recraft_build.errors.SpecError`.
    """
    name = display_name if display_name is not None else str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise UsageError(
            f"spec file not found: {name} (pass -f SPEC, or run in the folder that holds it)"
        ) from exc
    except OSError as exc:
        raise SpecError([Problem(name, 0, 0, "", f"cannot read the spec: {exc.strerror or exc}",
                                 "check the path and its permissions")]) from exc
    if path.is_dir():
        raise UsageError(f"spec path is a folder, not a file: {name} (pass -f path/to/assets.yaml)")
    if size > max_bytes:
        raise SpecError([_too_big(name, size, max_bytes)])
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError([Problem(name, 0, 0, "", f"cannot read the spec: {exc.strerror or exc}",
                                 "check the path and its permissions")]) from exc
    if len(raw) > max_bytes:  # grew since stat, or a special file
        raise SpecError([_too_big(name, len(raw), max_bytes)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError([Problem(name, line, 0, "", "the spec is not UTF-8 text",
                                 "save the file as UTF-8")]) from exc


def _too_big(name: str, size: int, limit: int) -> Problem:
    return Problem(name, 0, 0, "", f"the spec is {size:,} bytes, over the {limit:,}-byte limit",
                   "split it, or use a matrix instead of listing every asset")


def load_yaml(
    text: str,
    filename: str,
    *,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
    max_bytes: int = MAX_BYTES,
) -> YamlDocument:
    """Parse one YAML document safely; raise SpecError on any problem (see module doc)."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise SpecError([_too_big(filename, len(text.encode("utf-8", "surrogatepass")),
                                  max_bytes)])
    builder = _Builder(filename, max_nodes=max_nodes, max_depth=max_depth)
    try:
        for event in _events(text):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        what = exc.problem or exc.context or "invalid YAML"
        context = f" {exc.context}" if exc.context and exc.problem else ""
        raise SpecError([Problem(filename, line, col, "", f"YAML syntax error: {what}{context}",
                                 "fix the YAML syntax here")]) from exc
    except yaml.YAMLError as exc:  # ReaderError (control characters) and friends
        line, col = _reader_position(exc, text)
        reason = getattr(exc, "reason", None) or str(exc)
        raise SpecError([Problem(filename, line, col, "", f"YAML error: {reason}",
                                 "remove the offending character")]) from exc
    except UnicodeError as exc:  # a lone surrogate cannot be handed to libyaml
        raise SpecError([Problem(filename, 0, 0, "", "the spec text is not valid Unicode",
                                 "save the file as UTF-8")]) from exc
    return builder.document()


def _events(text: str) -> Iterator[yaml.Event]:
    loader_cls = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    return yaml.parse(text, Loader=loader_cls)


def _reader_position(exc: yaml.YAMLError, text: str) -> tuple[int, int]:
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return (0, 0)
    # libyaml reports a byte offset, pure PyYAML a character offset; lines agree
    # for ASCII text and are close enough otherwise.
    prefix = text[:position]
    return (prefix.count("\n") + 1, position - (prefix.rfind("\n") + 1) + 1)


class _Frame:
    """An open sequence or mapping while its events arrive."""

    __slots__ = ("is_map", "value", "path", "anchor", "start_count", "key", "key_lines",
                 "merges")

    def __init__(self, is_map: bool, path: _Path, anchor: str | None, start_count: int):
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.path = path
        self.anchor = anchor
        self.start_count = start_count
        self.key: Any = _NO_KEY  # mapping: the key waiting for its value
        self.key_lines: dict[str, int] = {}
        self.merges: list[tuple[dict[str, Any], _Path]] = []


_NO_KEY = object()
_MERGE = object()


class _Builder:
    """Builds data and positions from parser events, enforcing the guards."""

    def __init__(self, filename: str, *, max_nodes: int, max_depth: int):
        self.filename = filename
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.stack: list[_Frame] = []
        self.count = 0
        # anchor -> (value, the path where it was written, logical size)
        self.anchors: dict[str, tuple[Any, _Path, int]] = {}
        self.open_anchors: set[str] = set()
        self.doc = YamlDocument(None, filename)
        self.documents = 0

    # -- helpers ---------------------------------------------------------------------
    def fail(self, event: yaml.Event, message: str, hint: str = "", path: _Path = ()) -> None:
        mark = event.start_mark
        raise SpecError([Problem(self.filename, mark.line + 1, mark.column + 1,
                                 format_path(path), message, hint)])

    def bump(self, event: yaml.Event, amount: int) -> None:
        self.count += amount
        if self.count > self.max_nodes:
            self.fail(event, f"the YAML holds more than {self.max_nodes:,} values, counting "
                      "every repetition an alias makes: too large for a spec (or an alias bomb)",
                      "use fewer aliases or a smaller spec; a matrix expands assets cheaply")

    def next_path(self, event: yaml.Event) -> _Path:
        """The path of the value that this event starts."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if not top.is_map:
            return top.path + (len(top.value),)
        if top.key is _NO_KEY:
            return ()  # a key, not a value; keys are not given paths
        if top.key is _MERGE:
            return top.path + (_MERGE_KEY,)
        return top.path + (top.key,)

    # -- event handling --------------------------------------------------------------
    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.scalar(event)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            self.start(event)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            self.end(event)
        elif isinstance(event, yaml.AliasEvent):
            self.alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.fail(event, "the file holds more than one YAML document",
                          "remove the second '---' (a spec is one document)")

    def expecting_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY

    def scalar(self, event: yaml.ScalarEvent) -> None:
        if self.expecting_key():
            self.mapping_key(event)
            return
        path = self.next_path(event)
        value = self.resolve_scalar(event, path)
        self.bump(event, 1)
        pos = (event.start_mark.line + 1, event.start_mark.column + 1)
        if event.anchor:
            self.anchors[event.anchor] = (value, path, 1)
        self.attach(event, value, path, pos)

    def mapping_key(self, event: yaml.ScalarEvent) -> None:
        top = self.stack[-1]
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        if event.anchor:
            self.fail(event, "anchors on mapping keys are not supported",
                      "put the anchor on the value instead", top.path)
        if event.tag is None and event.implicit[0] and event.value == _MERGE_KEY:
            top.key = _MERGE
            return
        key = self.resolve_scalar(event, top.path)
        if not isinstance(key, str):
            shown = event.value
            self.fail(event, f"mapping key {shown!r} is not a string",
                      f"quote it: \"{shown}\"", top.path)
        if key in top.key_lines:
            self.fail(event, f"duplicate key {key!r} (first written on line {top.key_lines[key]})",
                      "remove one of them", top.path + (key,))
        top.key_lines[key] = pos[0]
        top.key = key
        self.doc._keys[top.path + (key,)] = pos

    def start(self, event: yaml.Event) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        if self.expecting_key():
            self.fail(event, "mapping keys must be plain strings, not lists or mappings",
                      "write a plain key", self.stack[-1].path)
        allowed = _MAP_TAGS if is_map else _SEQ_TAGS
        path = self.next_path(event)
        if event.tag is not None and event.tag not in allowed:
            self.fail(event, f"YAML tag {_show_tag(event.tag)} is not allowed",
                      "a spec holds only plain strings, numbers, booleans, lists and mappings",
                      path)
        if len(self.stack) >= self.max_depth:
            self.fail(event, f"the YAML nests deeper than {self.max_depth} levels",
                      "flatten the structure")
        self.bump(event, 1)
        frame = _Frame(is_map, path, event.anchor, self.count)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.doc._values[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        self.stack.append(frame)

    def end(self, event: yaml.Event) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.is_map and frame.merges:
            value = self.apply_merges(frame)
        size = self.count - frame.start_count + 1
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.path, size)
        pos = self.doc._values[frame.path]
        self.attach(event, value, frame.path, pos, register=False)

    def alias(self, event: yaml.AliasEvent) -> None:
        if self.expecting_key():
            self.fail(event, "aliases cannot be mapping keys", "write the key out",
                      self.stack[-1].path)
        name = event.anchor
        path = self.next_path(event)
        if name in self.open_anchors:
            self.fail(event, f"alias *{name} refers to a value that contains it",
                      "recursive aliases are not allowed", path)
        if name not in self.anchors:
            self.fail(event, f"alias *{name} has no anchor &{name} before it",
                      f"define &{name} earlier in the file", path)
        value, source, size = self.anchors[name]
        self.bump(event, size)
        pos = (event.start_mark.line + 1, event.start_mark.column + 1)
        self.doc._redirects[path] = source
        self.attach(event, value, path, pos, register=False)

    def attach(self, event: yaml.Event, value: Any, path: _Path, pos: tuple[int, int],
               *, register: bool = True) -> None:
        """Put a finished value into its parent (or make it the document root)."""
        if register:
            self.doc._values[path] = pos
        if not self.stack:
            self.doc.data = value
            return
        top = self.stack[-1]
        if not top.is_map:
            top.value.append(value)
            return
        if top.key is _MERGE:
            self.add_merge(event, top, value, path)
        else:
            top.value[top.key] = value
        top.key = _NO_KEY

    def add_merge(self, event: yaml.Event, top: _Frame, value: Any, path: _Path) -> None:
        sources = value if isinstance(value, list) else [value]
        for i, source in enumerate(sources):
            if not isinstance(source, dict):
                self.fail(event, "a merge key (<<) takes a mapping or a list of mappings",
                          "write <<: *anchor, where &anchor is on a mapping", top.path)
            where = path if not isinstance(value, list) else path + (i,)
            top.merges.append((source, self.doc._redirects.get(where, where)))

    def apply_merges(self, frame: _Frame) -> dict[str, Any]:
        """YAML merge: explicit keys win; earlier merge sources win over later ones."""
        merged: dict[str, Any] = {}
        for source, source_path in frame.merges:
            for key, val in source.items():
                if key not in frame.value and key not in merged:
                    merged[key] = val
                    self.doc._redirects[frame.path + (key,)] = source_path + (key,)
        merged.update(frame.value)
        return merged

    def resolve_scalar(self, event: yaml.ScalarEvent, path: _Path) -> Any:
        text = event.value
        tag = event.tag
        if tag is not None and tag not in _SCALAR_TAGS:
            self.fail(event, f"YAML tag {_show_tag(tag)} is not allowed",
                      "a spec holds only plain strings, numbers, booleans, lists and mappings",
                      path)
        if tag is None and not event.implicit[0]:
            return text  # quoted or block scalar: always a string
        if tag in (_TAG + "str", "!"):
            return text
        if tag is None:
            return self.resolve_plain(event, text, path)
        value = self.resolve_plain(event, text, path)
        wanted = {_TAG + "int": int, _TAG + "float": float, _TAG + "bool": bool,
                  _TAG + "null": type(None)}[tag]
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not wanted:
            self.fail(event, f"{text!r} is not a valid {_show_tag(tag)}",
                      "remove the tag or fix the value", path)
        return value

    def resolve_plain(self, event: yaml.ScalarEvent, text: str, path: _Path) -> Any:
        """Resolve a plain scalar by the YAML 1.2 core schema."""
        if _NULL_RE.match(text):
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if _INT10_RE.match(text) or _INT8_RE.match(text) or _INT16_RE.match(text):
            digits = text.lstrip("+-")
            if len(digits) > _MAX_INT_DIGITS:
                self.fail(event, "number too large", "use a smaller number, or quote it", path)
            if digits.startswith("0o"):
                return int(text.replace("0o", ""), 8)
            if digits.startswith("0x"):
                return int(text, 16)
            return int(text, 10)
        if _FLOAT_RE.match(text):
            if len(text) > _MAX_INT_DIGITS * 4:
                self.fail(event, "number too long", "use a shorter number, or quote it", path)
            value = float(text)
            if not math.isfinite(value):
                self.fail(event, f"{text!r} is too large a number", "use a smaller one", path)
            return value
        if _NONFINITE_RE.match(text):
            self.fail(event, f"{text!r} is not a finite number",
                      "quote it if you meant text", path)
        return text

    def document(self) -> YamlDocument:
        return self.doc


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
