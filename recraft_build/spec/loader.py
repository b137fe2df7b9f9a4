"""Load a spec file into a validated, expanded :class:`~recraft_build.domain.Spec`.

The pipeline (each stage in its own module; this one drives them):

1. :mod:`~recraft_build.spec.yamlload`: safe YAML with a line and column for every value;
2. a count of the ``assets:`` entries, refused past ``max_assets`` before anything
   looks at them;
3. :mod:`~recraft_build.spec.schema`: the JSON Schema, every error reported and
   explained (validation stops after :data:`MAX_PROBLEMS`);
4. :mod:`~recraft_build.spec.merging`: refused fields left out, defaults merged in;
5. :mod:`~recraft_build.spec.matrix`: one asset per combination, refused past
   ``max_assets`` before expanding;
6. :mod:`~recraft_build.spec.templating`: ``name`` first (it sees the asset's fields,
   the spec's ``vars`` and the matrix values), then ``prompt``, ``negative_prompt``,
   :mod:`value fields <recraft_build.spec.values>` and output paths (which also see
   ``name``), all under one budget of steps and time;
7. meaning checks: :mod:`~recraft_build.spec.checks` (model tables, steps),
   :mod:`~recraft_build.spec.inputs` (input pictures: ``image``, ``operation``...) and
   :mod:`~recraft_build.spec.outputs` (paths, formats, collisions);
8. domain objects, then the asset graph (:mod:`~recraft_build.spec.graph`: every input
   names an asset, no cycle).

Every problem found in any stage after YAML parsing is collected in a
:class:`~recraft_build.spec.problems.ProblemLog`; if there is any,
:class:`~recraft_build.errors.SpecError` is raised with all of them, each placed at
``FILE:LINE:COL`` with the dotted path of the field. Fields that fail the schema are
left out of the meaning checks (which would repeat one mistake in other words); the
rest of the spec is still checked, so one run shows every mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from recraft_build.domain import (
    FILE_MODEL,
    VECTOR_STYLES,
    Asset,
    GenerationRequest,
    OutputSpec,
    ProviderProfile,
    Spec,
    StyleSpec,
    Where,
)
from recraft_build.errors import Problem, SpecError
from recraft_build.spec import tables
from recraft_build.spec.checks import (
    check_generation,
    check_name,
    check_prompt,
    check_variable_names,
    parse_steps,
    step_kind,
)
from recraft_build.spec.graph import graph_problems
from recraft_build.spec.inputs import prepare_inputs, render_inputs
from recraft_build.spec.matrix import count_combinations, expand, matrix_keys, matrix_problems
from recraft_build.spec.merging import (
    UNKNOWN_KIND,
    CleanAsset,
    Cleaned,
    Source,
    clean,
    clean_asset,
    merge,
)
from recraft_build.spec.outputs import OUTPUT_FORMATS, Outputs, plan_output, relative_path_problem
from recraft_build.spec.problems import ProblemLog
from recraft_build.spec.publishing import load_atlases, load_manifest
from recraft_build.spec.schema import schema_problems, value_problems
from recraft_build.spec.templating import TemplateRenderer
from recraft_build.spec.values import ValueTemplate, find_value_templates, with_values
from recraft_build.spec.yamlload import load_yaml, read_spec_text
from recraft_build.steps import keycolor

__all__ = [
    "DEFAULT_MAX_ASSETS",
    "MAX_PROBLEMS",
    "OUTPUT_FORMATS",
    "TEMPLATE_FIELDS",
    "load_spec",
    "parse_spec",
]

#: Most assets a spec may list, and expand to (after matrices).
DEFAULT_MAX_ASSETS = 100_000
#: Schema problems collected before validation stops (a spec this broken is fixed in
#: rounds; reading 100,000 of them helps nobody, and finding them takes a minute).
MAX_PROBLEMS = 1_000

#: Asset fields a template can read (when set), besides ``vars`` and matrix values.
TEMPLATE_FIELDS = ("model", "style", "substyle", "style_id", "size", "aspect_ratio")

# Names a variable or matrix key may not take: they would shadow an asset field.
_RESERVED_NAMES = frozenset(TEMPLATE_FIELDS) | {"name"}
#: Fields whose place each asset keeps (``Asset.places``): those a provider may refuse
#: (``providers.capabilities.refusals``), so the problem points at the field's line.
PLACED_FIELDS = ("model", "style", "style_id", "negative_prompt", "controls", "seed", "text_layout", "image")
_BUILTIN_PROVIDERS = frozenset({"auto", "placeholder", "recraft", "replicate"})
_REFERENCE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
# 1.7: a style's reference pictures may total at most 5 MB.
_REFERENCE_TOTAL_BYTES = 5 * 1024 * 1024
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_spec(path: Path, *, max_assets: int = DEFAULT_MAX_ASSETS) -> Spec:
    """Read and load the spec at ``path`` (messages name it as given).

    Raises :class:`~recraft_build.errors.UsageError` when ``path`` does not exist
    (a command-line mistake: exit 2) and :class:`~recraft_build.errors.SpecError`
    for everything wrong with an existing file (exit 3).
    """
    path = Path(path)
    text = read_spec_text(path)
    return parse_spec(text, str(path), base_dir=path.parent, max_assets=max_assets)


def parse_spec(
    text: str,
    filename: str,
    *,
    base_dir: Path,
    max_assets: int = DEFAULT_MAX_ASSETS,
    renderer: TemplateRenderer | None = None,
) -> Spec:
    """Load a spec from ``text``. ``filename`` is shown in messages; ``base_dir`` is the
    spec's folder (custom style references are relative to it). ``renderer`` (a fresh
    one by default) renders the templates, within its limits.

    The returned ``Spec.path`` is ``base_dir / basename(filename)``.
    Raises :class:`~recraft_build.errors.SpecError` listing every problem found.
    """
    return _Loader(filename, Path(base_dir), max_assets, renderer or TemplateRenderer()).load(text)


class _Loader:
    """One spec load: the stages above, in order, feeding one ProblemLog."""

    def __init__(self, filename: str, base_dir: Path, max_assets: int,
                 renderer: TemplateRenderer):
        self.filename = filename
        self.base_dir = base_dir
        self.max_assets = max_assets
        self.renderer = renderer

    def load(self, text: str) -> Spec:
        doc = load_yaml(text, self.filename)  # raises SpecError: nothing to check after
        data = doc.data
        if data is None:
            raise SpecError([Problem(self.filename, 0, 0, "", "the spec is empty",
                                     "start with 'version: 1' and an 'assets:' list")])
        log = self.log = ProblemLog(doc)
        raw_assets = data.get("assets") if isinstance(data, dict) else None
        if isinstance(raw_assets, list) and len(raw_assets) > self.max_assets:
            # Before the schema: validating 200,000 broken entries takes a minute.
            log.add(("assets",), f"the spec lists {len(raw_assets):,} assets, over the limit "
                    f"of {self.max_assets:,}", "split it into several specs")
            raise SpecError(log.problems())
        report = schema_problems(doc, limit=MAX_PROBLEMS)
        log.extend(report.problems)
        if not report.complete:
            log.add((), f"validation stopped after the first {MAX_PROBLEMS:,} problems",
                    "fix these and run validate again")
            raise SpecError(log.problems())
        if not isinstance(data, dict):
            raise SpecError(log.problems())

        styles: dict[str, StyleSpec] = {}
        broken_styles: set[str] = set()
        if isinstance(data.get("styles"), dict):
            usable = {k: v for k, v in data["styles"].items()
                      if not report.touches(("styles", k))}
            broken_styles = set(data["styles"]) - set(usable)
            styles = self.load_styles(usable)
        output_dir = data.get("output_dir")
        if isinstance(output_dir, str) and not report.touches(("output_dir",)):
            self.check_output_dir(output_dir)
        providers: dict[str, ProviderProfile] = {}
        if isinstance(data.get("providers"), dict) and not report.touches(("providers",)):
            providers = self.load_providers(data["providers"])
        vars_ = data.get("vars") or {}
        if isinstance(vars_, dict):
            check_variable_names(log, vars_, ("vars",), "variable", _RESERVED_NAMES)
        else:
            vars_ = {}  # the schema reported it; templates then report what they miss

        assets: list[Asset] = []
        if isinstance(raw_assets, list):
            # Fields the schema refused are left out of the meaning checks (which
            # would only repeat the mistake), so every other mistake still shows.
            defaults = clean(data.get("defaults"), ("defaults",), report)
            sources = []
            for i, raw in enumerate(raw_assets):
                asset = clean_asset(raw, i, report)
                if asset is not None:
                    sources.append(self.prepare(asset, defaults, styles, broken_styles))
            total = sum(s.combos for s in sources)
            if total > self.max_assets:
                biggest = max(sources, key=lambda s: s.combos)
                log.add(("assets", biggest.index, "matrix"),
                        f"the spec would expand to {total:,} assets, over the limit of "
                        f"{self.max_assets:,} (this asset alone gives {biggest.combos:,})",
                        "split the matrix, or drop combinations with exclude")
            else:
                outputs = Outputs(log)
                vector: dict[str, bool] = {}
                for source in sources:
                    if source.ok:
                        made = self.expand_source(source, vars_, outputs)
                        assets.extend(made)
                        vector.update((a.name, source.vector) for a in made)
                outputs.check_unique_names()
                outputs.check_collisions()
                log.extend(graph_problems(assets, vector, self.filename))

        # Publishing: atlases name expanded assets; the manifest's module path is checked.
        atlases = load_atlases(log, data.get("atlases"), assets, touched=report.touches)
        manifest = load_manifest(log, data.get("manifest"), self.base_dir, touched=report.touches)
        problems = log.problems()
        if problems:
            raise SpecError(problems)
        return Spec(
            path=self.base_dir / Path(self.filename).name,
            version=int(data["version"]),
            assets=tuple(assets),
            output_dir=data.get("output_dir"),
            styles=styles,
            providers=providers,
            atlases=atlases,
            manifest=manifest,
        )

    # ---- top-level sections ------------------------------------------------------------
    def check_output_dir(self, output_dir: str) -> None:
        # A spec comes from pull requests: its output folder stays beside it. A user who
        # wants the pictures elsewhere says so on the command line (-o).
        norm = output_dir
        while norm.startswith("./"):
            norm = norm[2:]
        norm = norm.rstrip("/")
        problem = None if norm in ("", ".") else relative_path_problem(norm)
        if problem is not None:
            self.log.add(("output_dir",), f"output_dir {output_dir!r} {problem[0]}",
                         "keep the output folder inside the spec's folder (or pass -o OUT "
                         "on the command line)")

    def load_styles(self, section: Mapping[str, Any]) -> dict[str, StyleSpec]:
        log = self.log
        styles: dict[str, StyleSpec] = {}
        base = self.base_dir.resolve()
        for name, entry in section.items():
            path = ("styles", name)
            if name in tables.BASE_STYLES:
                log.add(path, f"'{name}' is a built-in style name",
                        "give the custom style another name", at_key=True)
                continue
            refs: list[str] = []
            total = 0
            for k, ref in enumerate(entry["references"]):
                ref_path = path + ("references", k)
                problem = relative_path_problem(ref)
                if problem:
                    log.add(ref_path, f"reference {ref!r} {problem[0]}", problem[1])
                    continue
                if PurePosixPath(ref).suffix.lower() not in _REFERENCE_EXTS:
                    log.add(ref_path, f"reference {ref!r} is not a png, jpg or webp picture",
                            "Recraft takes PNG, JPG or WEBP reference pictures")
                    continue
                try:
                    full = (base / ref).resolve()
                    inside = full.is_relative_to(base)
                    size = full.stat().st_size if inside and full.is_file() else None
                except (OSError, RuntimeError) as exc:  # a link loop, a permission
                    log.add(ref_path, f"reference {ref!r} cannot be read: {exc}",
                            "check the file and its permissions")
                    continue
                if not inside:
                    log.add(ref_path, f"reference {ref!r} leaves the spec's folder (a link?)",
                            "keep reference pictures inside the spec's folder")
                    continue
                if size is None:
                    log.add(ref_path, f"reference picture not found: {ref}",
                            f"paths are relative to the spec's folder ({self.base_dir})")
                    continue
                total += size
                refs.append(ref)
            if total > _REFERENCE_TOTAL_BYTES:
                log.add(path + ("references",),
                        f"reference pictures total {total / 1e6:.1f} MB, over Recraft's 5 MB",
                        "use fewer or smaller pictures")
            styles[name] = StyleSpec(name, entry["style"], tuple(refs), log.where(path))
        return styles

    def load_providers(self, section: Mapping[str, Any]) -> dict[str, ProviderProfile]:
        profiles: dict[str, ProviderProfile] = {}
        for name, entry in section.items():
            if name in _BUILTIN_PROVIDERS:
                # A spec from a pull request must not redirect a built-in provider
                # (and so the user's token) to another server.
                self.log.add(("providers", name), f"'{name}' is a built-in provider name",
                             f"choose another name, e.g. '{name}-proxy', and pick it with "
                             "--provider", at_key=True)
                continue
            options = {k: entry[k] for k in ("rate_limit", "timeout", "max_retries", "resend_ambiguous",
                       "max_resends", "response_deadline", "download_deadline") if k in entry}
            profiles[name] = ProviderProfile(
                name=name,
                protocol=entry["protocol"],
                base_url=entry.get("base_url"),
                auth=entry.get("auth", "bearer"),
                token_env=entry.get("token_env"),
                options=options,
            )
        return profiles

    # ---- one asset as written ------------------------------------------------------------
    def prepare(self, asset: CleanAsset, defaults: Cleaned, styles: Mapping[str, StyleSpec],
                broken_styles: set[str]) -> Source:
        log = self.log
        merged = merge(defaults, asset)
        fields, raw = merged.fields, asset.fields
        source = Source(asset, merged, combos=count_combinations(raw.get("matrix")),
                        model=tables.MODELS[fields.get("model", tables.DEFAULT_MODEL)])
        if prepare_inputs(log, source):  # a picture file: no model, style or size to check
            source.vector = source.inputs.vector_file
        elif fields.get("style") in broken_styles:
            source.ok = False  # its custom style has schema problems, already reported
            return source
        elif not source.dropped & {"model", "style", "substyle", "style_id"}:
            # (with the model or style refused, the tables would only guess)
            check_generation(log, source, styles)
        else:
            source.vector = source.model.vector or fields.get("style") in VECTOR_STYLES
        steps_path = merged.origins.get("steps", ())
        source.steps = parse_steps(log, fields.get("steps") or [], steps_path)
        kind = "vector" if source.vector else "raster"
        for k, step in enumerate(source.steps):
            kind = step_kind(log, kind, step, steps_path + (k,))
        # Broken steps (reported by the schema) leave the picture's kind unknown.
        source.kind_after_steps = UNKNOWN_KIND if "steps" in source.dropped else kind
        matrix = raw.get("matrix")
        if matrix:
            base = asset.path + ("matrix",)
            for sub, message, hint in matrix_problems(matrix):
                log.add(base + sub, message, hint, at_key=bool(sub))
                if not sub:
                    source.matrix_ok = False
            check_variable_names(log, matrix_keys(matrix), base, "matrix key", _RESERVED_NAMES)
            for i, row in enumerate(matrix.get("include") or []):
                for key in row:
                    if not _VARIABLE_NAME.fullmatch(key):
                        log.add(base + ("include", i, key), f"'{key}' is not a valid variable "
                                "name", "use letters, digits and _", at_key=True)
                check_variable_names(log, [k for k in row if k not in matrix],
                                     base + ("include", i), "variable", _RESERVED_NAMES)
        # Problems so far do not stop expansion: templates and outputs are checked
        # independently, so the user sees those mistakes in the same run.
        return source

    # ---- expansion ------------------------------------------------------------------------
    def expand_source(self, s: Source, vars_: Mapping[str, Any],
                      outputs: Outputs) -> list[Asset]:
        raw, f = s.asset.fields, s.fields
        base = s.asset.path
        in_matrix = bool(raw.get("matrix"))
        combos = expand(raw.get("matrix")) if s.matrix_ok else []
        field_ctx = {k: f[k] for k in TEMPLATE_FIELDS if f.get(k) is not None}
        field_ctx.setdefault("model", s.model.name)
        # Places are looked up once per asset as written, not once per combination.
        asset_where = self.log.where(base)
        name_path, prompt_path = base + ("name",), base + ("prompt",)
        name_where, prompt_where = self.log.where(name_path), self.log.where(prompt_path)
        negative_where = self.log.where(s.origins.get("negative_prompt", base))
        places = {f: self.log.where(s.origins[f]) for f in PLACED_FIELDS if f in s.origins}
        plans = [plan_output(self.log, out, s) for out in s.asset.outputs]
        value_templates = find_value_templates(s.merged)
        r = _Rendering(self.renderer, self.log, in_matrix)
        assets: list[Asset] = []
        for combo in combos:
            r.failed = False
            context = {**field_ctx, **vars_, **combo}
            name = r.text(raw["name"], context, name_where, _combo_label(combo), in_matrix)
            if name is None:
                continue
            name = name.strip()
            if not check_name(self.log, name, name_path, in_matrix):
                continue
            context["name"] = name
            named = outputs.name(name, base, in_matrix)
            who = f"asset '{name}'"
            # An asset whose picture is a file, and a variate, have no prompt.
            prompt = r.text(raw["prompt"], context, prompt_where, who) if "prompt" in raw else ""
            negative = f.get("negative_prompt")
            if negative is not None:
                negative = r.text(negative, context, negative_where, who)
                negative = negative.strip() if negative is not None else None
            if prompt is not None and "prompt" in raw:
                prompt = prompt.strip()
                check_prompt(self.log, prompt, s, prompt_path, name, in_matrix)
            fields = f
            if value_templates:
                values = {t.key: r.value(t, context, who) for t in value_templates}
                fields = with_values(f, values) if not r.failed else f
            specs: list[OutputSpec] = []
            for plan in plans:
                rendered = r.text(plan.source, context, plan.field_where, who)
                made = outputs.render(plan, rendered, named) if rendered is not None else []
                if made is None:
                    r.failed = True
                else:
                    specs.extend(made)
            rendered_tags = (r.text(t, context, self.log.where(base + ("tags", k)), who)
                             for k, t in enumerate(raw.get("tags") or ()))
            tags = tuple(dict.fromkeys(t.strip() for t in rendered_tags if t and t.strip()))
            image = mask = None
            if s.inputs is not None:
                image, mask, inputs_ok = render_inputs(
                    s,
                    lambda source, at: r.text(source, context, at, who),
                    lambda path, message, hint: self.log.add_for(who, in_matrix, path, message, hint),
                    self.log.where,
                    self.base_dir,
                )
                r.failed = r.failed or not inputs_ok
            if r.failed:
                continue
            if s.inputs is not None and s.inputs.from_file:
                assets.append(Asset(name=name, request=GenerationRequest(FILE_MODEL, "", operation=FILE_MODEL),
                                    steps=s.steps, outputs=tuple(specs), where=asset_where, matrix=combo,
                                    image=image, tags=tags, places=places))
                continue
            # key: auto / palette: auto (steps/keycolor.py): the picked key colour goes
            # into the request's controls and the steps. Without them: unchanged objects.
            try:
                controls, chains = keycolor.resolve_steps(
                    prompt or "", _controls(fields.get("controls")), [s.steps, *(o.steps for o in specs)])
            except keycolor.AutoKeyError as exc:
                w = exc.where or asset_where
                self.log.add_placed(who, in_matrix, Problem(w.file, w.line, w.col, w.path, exc.message, exc.hint))
                continue
            specs = [replace(o, steps=st) for o, st in zip(specs, chains[1:])]
            request = GenerationRequest(
                model=s.model.name,
                prompt=prompt or "",
                negative_prompt=negative or None,
                style=None if s.style_ref else fields.get("style"),
                substyle=fields.get("substyle"),
                style_id=fields.get("style_id"),
                style_ref=s.style_ref,
                size=fields.get("size"),
                aspect_ratio=fields.get("aspect_ratio"),
                n=fields.get("n", 1),
                seed=fields.get("seed"),
                controls=controls,
                text_layout=_text_layout(fields.get("text_layout")),
                operation=s.inputs.operation if s.inputs is not None else None,
                strength=s.inputs.strength if s.inputs is not None else None,
            )
            assets.append(Asset(name=name, request=request, steps=chains[0],
                                outputs=tuple(specs), where=asset_where, matrix=combo, tags=tags,
                                image=image, mask=mask, places=places))
        return assets


@dataclass
class _Rendering:
    """Renders one asset's templates, recording failures (``failed`` marks the combination).

    Template problems name the asset (and, in a matrix, how many more share them).
    """

    renderer: TemplateRenderer
    log: ProblemLog
    in_matrix: bool
    failed: bool = False

    def text(self, source: str, context: Mapping[str, Any], where: Where, who: str,
             named: bool = True) -> str | None:
        """Render, or record the problem and give None. ``who`` names the asset
        (``asset 'icon-sword'``; before the name exists, its matrix combination) and
        ``named`` says whether messages name it."""
        try:
            return self.renderer.render(source, context, where=where)
        except SpecError as exc:
            self._record(exc.problems, who, named)
            return None

    def value(self, t: ValueTemplate, context: Mapping[str, Any], who: str) -> Any:
        """The value a value field's template gives, checked against the field's schema
        (None, with ``failed`` set, on a problem)."""
        try:
            value = self.renderer.render_value(t.source, context, where=self.log.where(t.path))
        except SpecError as exc:
            self._record(exc.problems, who, True)
            return None
        problems = value_problems(self.log.doc, t.path, value, t.pointer)
        if problems:
            self._record(problems, who, True)
            return None
        return value

    def _record(self, problems: Iterable[Problem], who: str, named: bool) -> None:
        self.failed = True
        for problem in problems:
            self.log.add_placed(who, named, problem)


# -- pure helpers ----------------------------------------------------------------------------

def _controls(raw: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Controls as GenerationRequest wants them: colors lowercased (same picture)."""
    if not raw:
        return None
    out: dict[str, Any] = {}
    if "colors" in raw:
        out["colors"] = [c.lower() for c in raw["colors"]]
    if "background_color" in raw:
        out["background_color"] = raw["background_color"].lower()
    for key in ("artistic_level", "no_text"):
        if key in raw:
            out[key] = raw[key]
    return out


def _text_layout(raw: list[Any] | None) -> tuple[Mapping[str, Any], ...] | None:
    if not raw:
        return None
    return tuple({"text": item["text"], "bbox": [list(p) for p in item["bbox"]]} for item in raw)


def _combo_label(combo: Mapping[str, Any]) -> str:
    """``matrix item=sword, tier=2``: names a combination whose asset name did not render."""
    return "matrix " + ", ".join(f"{k}={v}" for k, v in combo.items())
