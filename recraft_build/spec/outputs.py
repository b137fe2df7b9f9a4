"""Output paths: their checks, the output objects, and collisions across the spec.

An output path is rendered per matrix combination, then checked: relative and clean
(:func:`relative_path_problem`), storable on every system a team uses
(:func:`output_path_problem`: no Windows device names, not the tool's temp-file
prefix), with an extension that picks the format. Everything about an output that
does not depend on the combination (its steps, scales, options, the picture's kind)
is worked out once (:func:`plan_output`), so a 10,000-asset matrix checks it once.

Two outputs may not write the same file, across all assets: paths equal after case
folding and Unicode normalisation (NFC/NFD) are the same file on macOS and Windows.
A file may not be where another output needs a folder.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

from recraft_build.domain import OutputSpec, StepSpec, Where
from recraft_build.relpath import TEMP_PREFIX, output_path_problem, relative_path_problem
from recraft_build.spec.checks import parse_steps, step_kind
from recraft_build.spec.merging import UNKNOWN_KIND, CleanOutput, Source
from recraft_build.spec.problems import Path, ProblemLog
from recraft_build.steps.catalog import scale_params

__all__ = [
    "OUTPUT_FORMATS",
    "RESERVED_PREFIX",
    "OutputPlan",
    "Outputs",
    "output_path_problem",
    "plan_output",
    "relative_path_problem",
]

#: Output extension -> format.
OUTPUT_FORMATS: Mapping[str, str] = {
    "png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg", "svg": "svg",
}
#: Names starting with this are the tool's temporary files (written, then renamed; a
#: killed build's are swept away): an output named so would be removed as one.
#: (The path rules themselves are :mod:`recraft_build.relpath`'s.)
RESERVED_PREFIX = TEMP_PREFIX

#: Output options only a favicon set takes (``webmanifest`` fields, the ``url`` it is served at).
_FAVICON_OPTIONS = ("webmanifest", "url")


def same_file_key(path: str) -> str:
    """What two paths share when they are the same file on some system: case and
    Unicode normalisation folded (Unicode's canonical caseless match)."""
    if path.isascii():
        return path.lower()  # (the same, faster: most paths are ASCII)
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())


@dataclass(frozen=True)
class OutputPlan:
    """One output as written, with everything that is the same for every combination.

    ``variants`` holds ``(path suffix, steps)`` per scale (one ``("", steps)`` when
    there are no scales). ``ok`` is False when the output has a problem already
    reported (it then yields no OutputSpec).
    """

    source: str
    path: Path
    path_field: Path
    where: Where
    field_where: Where
    options: Mapping[str, Any]
    favicon: bool
    kind: str
    variants: tuple[tuple[str, tuple[StepSpec, ...]], ...]
    ok: bool


def plan_output(log: ProblemLog, out: CleanOutput, s: Source) -> OutputPlan:
    """What does not depend on the matrix values: places, steps, scaled steps."""
    raw = out.fields
    path = out.path
    steps = parse_steps(log, raw.get("steps") or [], path + ("steps",))
    kind = s.kind_after_steps
    for k, step in enumerate(steps):
        kind = step_kind(log, kind, step, path + ("steps", k), asset_level=False)
    if "steps" in out.dropped:
        kind = UNKNOWN_KIND
    favicon = bool(raw.get("favicon"))
    scales = list(raw.get("scales") or [])
    ok = True
    if favicon and scales:
        log.add(path + ("scales",), "a favicon output cannot have scales",
                "the favicon set already holds every size")
        ok = False
    elif scales and not any(st.name == "resize" for st in steps):
        log.add(path + ("scales",), "scales need a resize step in this output",
                "add steps: [{resize: {width: 64}}]; each scale multiplies its size")
        ok = False
    variants = tuple(
        ("" if scale == 1 else f"@{scale:g}x",
         tuple(StepSpec(st.name, scale_params(st.name, st.params, scale), st.where)
               for st in steps))
        for scale in scales
    ) or (("", steps),)
    options = {k: raw[k] for k in ("quality", "lossless", "strip_metadata", "optimize")
               if k in raw}
    for k in _FAVICON_OPTIONS:
        if k in raw and not favicon:
            log.add(path + (k,), f"{k} applies to favicon outputs only",
                    "remove it, or set favicon: true on this output")
            ok = False
        elif k in raw:
            options[k] = raw[k]
    return OutputPlan(raw["path"], path, out.path_field, log.where(path),
                      log.where(out.path_field), options, favicon, kind, variants, ok)


@dataclass(frozen=True)
class _Named:
    """An asset name as rendered, and where its asset was written."""

    name: str
    path: Path
    in_matrix: bool


@dataclass
class Outputs:
    """Every asset name and output rendered in one spec, for the whole-spec checks.

    Names and outputs are recorded even for assets with other problems, so that
    duplicates are found in the same run.
    """

    log: ProblemLog
    names: list[_Named] = field(default_factory=list)
    outputs: list[tuple[_Named, OutputSpec, Path]] = field(default_factory=list)

    def name(self, name: str, path: Path, in_matrix: bool) -> _Named:
        named = _Named(name, path, in_matrix)
        self.names.append(named)
        return named

    def render(self, plan: OutputPlan, rendered: str, named: _Named) -> list[OutputSpec] | None:
        """One output for one combination -> one OutputSpec per scale.

        ``rendered`` is the output's path as its template rendered. None when this
        combination's output has a problem (reported here); ``[]`` when the output has
        a problem reported once for all combinations (``plan.ok`` is False).
        """
        log, name, in_matrix = self.log, named.name, named.in_matrix
        who = f"asset '{name}'"
        rendered = rendered.strip()
        failed = False

        def problem(path: Path, message: str, hint: str = "") -> None:
            nonlocal failed
            failed = True
            log.add_for(who, in_matrix, path, message, hint)

        out_path = rendered.rstrip("/") if plan.favicon else rendered
        bad = output_path_problem(out_path)
        if bad:
            problem(plan.path_field, f"output path {rendered!r} {bad[0]}", bad[1])
            return None
        stem, dot, written_ext = out_path.rpartition(".")
        if plan.favicon:
            fmt = "ico"
        else:
            ext = written_ext.lower() if dot and "/" not in written_ext else ""
            if ext in OUTPUT_FORMATS and (not stem or stem.endswith("/")):
                problem(plan.path_field, f"output path {rendered!r} has no file name",
                        "write a name before the extension, e.g. icons/sword.png")
                return None
            if ext not in OUTPUT_FORMATS:
                what = f"extension '.{ext}'" if ext else "no extension"
                problem(plan.path_field, f"output path {rendered!r} has {what}",
                        "end it in .png, .webp, .jpg or .svg (the extension picks the format)")
                return None
            fmt = OUTPUT_FORMATS[ext]
        options = plan.options
        if "quality" in options and fmt not in ("webp", "jpg"):
            problem(plan.path + ("quality",), "quality applies to webp and jpg outputs, not "
                    f"{fmt}", "remove quality, or write .webp/.jpg")
        if "lossless" in options and fmt != "webp":
            problem(plan.path + ("lossless",), f"lossless applies to webp outputs, not {fmt}",
                    "remove lossless, or write .webp")
        if fmt == "svg" and plan.kind == "raster":
            problem(plan.path_field, "the picture is raster but this output is .svg",
                    "add a vectorize step to this output (steps: [vectorize]), or use a "
                    "vector style or model")
        if failed:
            return None
        if not plan.ok:
            return []
        if plan.favicon:
            # favicon.html links the set where it is served: by default the folder's own
            # path, with the output folder as the site's root.
            options = options if "url" in options else {**options, "url": f"/{out_path}/"}
            specs = [OutputSpec(out_path, fmt, plan.variants[0][1], options, (), True,
                                plan.where)]
        else:
            specs = [OutputSpec(f"{stem}{suffix}.{written_ext}" if suffix else out_path, fmt,
                                steps, options, (), False, plan.where)
                     for suffix, steps in plan.variants]
        self.outputs.extend((named, spec, plan.path) for spec in specs)
        return specs

    # -- whole-spec checks ---------------------------------------------------------------------
    def check_unique_names(self) -> None:
        first: dict[str, _Named] = {}
        for named in self.names:
            seen = first.setdefault(named.name, named)
            if seen is named:
                continue
            path = named.path + ("name",)
            if seen.path == named.path:
                self.log.add_for(f"asset '{named.name}'", False, path,
                                 f"matrix combinations give the same asset name '{named.name}'",
                                 "use a matrix variable in name, e.g. name: \"icon-{{ item }}\"")
            else:
                other = self.log.where(seen.path)
                self.log.add_for(f"asset '{named.name}'", False, path,
                                 f"asset name '{named.name}' is already used by {other.path} "
                                 f"(line {other.line})", "asset names must be unique")

    def check_collisions(self) -> None:
        files: dict[str, tuple[_Named, OutputSpec, Path]] = {}
        for named, out, path in self.outputs:
            key = same_file_key(out.path)
            seen = files.setdefault(key, (named, out, path))
            if seen[1] is out:
                continue
            other, other_out, other_path = seen
            owner = "this asset" if other.name == named.name else f"asset '{other.name}'"
            hint = "give each output its own path"
            if named.in_matrix and other.path == named.path:
                hint = "use a matrix variable in the path, e.g. \"icons/{{ item }}.png\""
            place = self.log.where(other_path)
            differ = _how_they_differ(out.path, other_out.path)
            self.log.add_for(f"asset '{named.name}'", named.in_matrix, path,
                             f"output '{out.path}' is also written by {owner} "
                             f"({place.path}, line {place.line}){differ}", hint)
        # A file where another output needs a folder (icons.png vs icons.png/x.png).
        for key, (named, out, path) in files.items():
            parts = key.split("/")
            for i in range(1, len(parts)):
                parent = files.get("/".join(parts[:i]))
                if parent is None:
                    continue
                p_named, p_out, p_path = parent
                what = "its favicon folder" if p_out.favicon else "a file"
                self.log.add_for(f"asset '{named.name}'", named.in_matrix, path,
                                 f"output '{out.path}' is inside '{p_out.path}', which asset "
                                 f"'{p_named.name}' writes as {what} "
                                 f"({self.log.where(p_path).path})", "move one of them")
                break


def _how_they_differ(a: str, b: str) -> str:
    """Why two different paths are the same file, for the message ('' when equal)."""
    if a == b:
        return ""
    nfc_a, nfc_b = unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)
    if nfc_a == nfc_b:
        return " (the paths differ only in Unicode normalisation: NFC and NFD)"
    if a.casefold() == b.casefold():
        return " (the paths differ only in case)"
    return " (the paths differ only in case and Unicode normalisation)"
