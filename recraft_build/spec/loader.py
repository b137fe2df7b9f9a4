"""Load a spec file into a validated, expanded :class:`~recraft_build.domain.Spec`.

The pipeline (each stage in its own module; this one drives them and checks meaning):

1. :mod:`~recraft_build.spec.yamlload`: safe YAML with a line and column for every value;
2. :mod:`~recraft_build.spec.schema`: the JSON Schema, every error reported and explained;
3. defaults merge: an asset starts from ``defaults``; its own fields win. ``controls``
   merge key by key. ``size``/``aspect_ratio`` are one choice: an asset that sets
   either replaces both from the defaults; likewise ``style``/``style_id`` replace the
   defaults' ``style``, ``substyle`` and ``style_id``. ``null`` removes a default;
4. :mod:`~recraft_build.spec.matrix`: one asset per combination, refused past
   ``max_assets`` before expanding;
5. :mod:`~recraft_build.spec.templating`: ``name`` first (it sees the asset's fields, the
   spec's ``vars`` and the matrix values), then ``prompt``, ``negative_prompt`` and
   output paths (which also see ``name``);
6. meaning checks against :mod:`~recraft_build.spec.tables` and the step catalogue;
7. domain objects.

Every problem found in any stage after YAML parsing is collected; if there is any,
:class:`~recraft_build.errors.SpecError` is raised with all of them, each placed at
``FILE:LINE:COL`` with the dotted path of the field. Fields that fail the schema are
left out of the meaning checks (which would repeat one mistake in other words); the
rest of the spec is still checked, so one run shows every mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from recraft_build.spec import tables
from recraft_build.domain import (
    VECTOR_STYLES,
    Asset,
    GenerationRequest,
    OutputSpec,
    ProviderProfile,
    Spec,
    StepSpec,
    StyleSpec,
    Where,
)
from recraft_build.errors import Problem, SpecError
from recraft_build.spec.matrix import count_combinations, expand, matrix_keys, matrix_problems
from recraft_build.spec.schema import SchemaReport, schema_problems, suggest
from recraft_build.steps.catalog import STEPS, scale_params
from recraft_build.spec.templating import TemplateRenderer, is_template
from recraft_build.spec.yamlload import YamlDocument, format_path, load_yaml, read_spec_text

__all__ = [
    "DEFAULT_MAX_ASSETS",
    "OUTPUT_FORMATS",
    "TEMPLATE_FIELDS",
    "load_spec",
    "parse_spec",
]

#: Most assets a spec may expand to (after matrices).
DEFAULT_MAX_ASSETS = 100_000

#: Output extension -> format.
OUTPUT_FORMATS: Mapping[str, str] = {
    "png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg", "svg": "svg",
}

#: Asset fields a template can read (when set), besides ``vars`` and matrix values.
TEMPLATE_FIELDS = ("model", "style", "substyle", "style_id", "size", "aspect_ratio")

# Names a variable or matrix key may not take: they would shadow an asset field.
_RESERVED_NAMES = frozenset(TEMPLATE_FIELDS) | {"name"}
# Fields merged from defaults into each asset.
_MERGED_FIELDS = ("negative_prompt", "model", "style", "substyle", "style_id", "size",
                  "aspect_ratio", "n", "seed", "controls", "text_layout", "steps")
_BUILTIN_PROVIDERS = frozenset({"auto", "placeholder", "recraft", "replicate"})
_REFERENCE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
# 1.7: a style's reference pictures may total at most 5 MB.
_REFERENCE_TOTAL_BYTES = 5 * 1024 * 1024
_BAD_PATH_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_BAD_NAME_CHARS = re.compile(r"[*?\[\]\x00-\x1f\x7f]")
_Path = tuple  # tuple[str | int, ...]
# Keys _clean() adds to cleaned mappings (with a space: no spec key can clash): the
# set of keys the schema refused, and the usable outputs with their indexes.
_DROPPED = " dropped"
_OUTPUTS = " outputs"
_UNKNOWN = "unknown"  # a picture kind hidden by a step the schema refused


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
) -> Spec:
    """Load a spec from ``text``. ``filename`` is shown in messages; ``base_dir`` is the
    spec's folder (custom style references are relative to it).

    The returned ``Spec.path`` is ``base_dir / basename(filename)``.
    Raises :class:`~recraft_build.errors.SpecError` listing every problem found.
    """
    return _Loader(filename, Path(base_dir), max_assets).load(text)


# -- internals -----------------------------------------------------------------------

@dataclass
class _Source:
    """One asset as written, merged with defaults, before matrix expansion."""

    index: int
    raw: Mapping[str, Any]
    fields: dict[str, Any]
    origins: dict[str, _Path]
    combos: int
    model: tables.ModelInfo
    style_ref: str | None = None
    vector: bool = False
    kind_after_steps: str = "raster"
    steps: tuple[StepSpec, ...] = ()
    ok: bool = True
    matrix_ok: bool = True

    @property
    def dropped(self) -> frozenset[str]:
        """Fields the schema refused (left out of the checks)."""
        return self.fields.get(_DROPPED, frozenset())


@dataclass(frozen=True)
class _OutputPlan:
    """One output as written, with everything that is the same for every combination.

    ``variants`` holds ``(path suffix, steps)`` per scale (one ``("", steps)`` when
    there are no scales). ``ok`` is False when the output has a problem already
    reported (it then yields no OutputSpec).
    """

    source: str
    path: _Path
    path_where: Where
    where: Where
    options: Mapping[str, Any]
    favicon: bool
    kind: str
    variants: tuple[tuple[str, tuple[StepSpec, ...]], ...]
    ok: bool


@dataclass(frozen=True)
class _Named:
    """An asset name as rendered, and where its asset was written."""

    name: str
    where: Where
    in_matrix: bool


@dataclass
class _Grouped:
    """A problem repeated across matrix combinations, reported once with a count."""

    problem: Problem
    first_asset: str
    count: int = 1
    in_matrix: bool = False


@dataclass
class _Loader:
    filename: str
    base_dir: Path
    max_assets: int
    doc: YamlDocument = field(init=False)
    problems: list[Problem] = field(default_factory=list)
    grouped: dict[Problem, _Grouped] = field(default_factory=dict)
    renderer: TemplateRenderer = field(default_factory=TemplateRenderer)
    # Every name and output that rendered, even for assets with other problems, so
    # that duplicates are found in the same run.
    names: list[_Named] = field(default_factory=list)
    outputs: list[tuple[_Named, OutputSpec]] = field(default_factory=list)

    # ---- driver ----------------------------------------------------------------------
    def load(self, text: str) -> Spec:
        self.doc = load_yaml(text, self.filename)  # raises SpecError: nothing to check after
        data = self.doc.data
        if data is None:
            raise SpecError([Problem(self.filename, 0, 0, "", "the spec is empty",
                                     "start with 'version: 1' and an 'assets:' list")])
        report = schema_problems(self.doc)
        self.problems.extend(report.problems)
        if not isinstance(data, dict):
            raise SpecError(self.problems)

        styles: dict[str, StyleSpec] = {}
        broken_styles: set[str] = set()
        if isinstance(data.get("styles"), dict):
            clean = {k: v for k, v in data["styles"].items()
                     if not report.touches(("styles", k))}
            broken_styles = set(data["styles"]) - set(clean)
            styles = self.load_styles(clean)
        output_dir = data.get("output_dir")
        if isinstance(output_dir, str) and not report.touches(("output_dir",)):
            # A spec comes from pull requests: its output folder stays beside it. A user
            # who wants the pictures elsewhere says so on the command line (-o).
            norm = output_dir
            while norm.startswith("./"):
                norm = norm[2:]
            norm = norm.rstrip("/")
            problem = None if norm in ("", ".") else _relative_path_problem(norm)
            if problem is not None:
                self.add(("output_dir",), f"output_dir {output_dir!r} {problem[0]}",
                         "keep the output folder inside the spec's folder (or pass -o OUT "
                         "on the command line)")
        providers: dict[str, ProviderProfile] = {}
        if isinstance(data.get("providers"), dict) and not report.touches(("providers",)):
            providers = self.load_providers(data["providers"])
        vars_ = data.get("vars") or {}
        if isinstance(vars_, dict):
            self.check_names(vars_, ("vars",), "variable")
        raw_assets = data.get("assets")

        assets: list[Asset] = []
        if not isinstance(vars_, dict):
            vars_ = {}  # the schema reported it; templates then report what they miss
        if isinstance(raw_assets, list):
            # Fields the schema refused are left out of the meaning checks (which
            # would only repeat the mistake), so every other mistake still shows.
            defaults = _clean(data.get("defaults"), ("defaults",), report)
            sources = []
            for i, raw in enumerate(raw_assets):
                cleaned = _clean_asset(raw, i, report)
                if cleaned is not None:
                    sources.append(self.prepare(i, cleaned, defaults, styles, broken_styles))
            total = sum(s.combos for s in sources)
            if total > self.max_assets:
                biggest = max(sources, key=lambda s: s.combos)
                self.add(("assets", biggest.index, "matrix"),
                         f"the spec would expand to {total:,} assets, over the limit of "
                         f"{self.max_assets:,} (this asset alone gives {biggest.combos:,})",
                         "split the matrix, or drop combinations with exclude")
            else:
                for source in sources:
                    if source.ok:
                        assets.extend(self.expand_source(source, vars_))
                self.check_unique_names()
                self.check_output_collisions()

        problems = self.problems + [self.ungroup(g) for g in self.grouped.values()]
        if problems:
            raise SpecError(list(dict.fromkeys(problems)))
        return Spec(
            path=self.base_dir / Path(self.filename).name,
            version=int(data["version"]),
            assets=tuple(assets),
            output_dir=data.get("output_dir"),
            styles=styles,
            providers=providers,
        )

    # ---- problem helpers -------------------------------------------------------------
    def add(self, path: _Path, message: str, hint: str = "", *, at_key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, hint, at_key=at_key))

    def add_field(self, s: _Source, key: str, message: str, hint: str = "") -> None:
        """A problem with an asset's merged field, placed where the value was written.

        A value from ``defaults`` is wrong only for some assets (another model, say):
        the message names them, once per distinct problem.
        """
        path = s.origins.get(key, ("assets", s.index))
        if path[0] == "defaults":
            name = s.raw.get("name")
            who = (f"asset '{name}'" if isinstance(name, str) and not is_template(name)
                   else f"assets[{s.index}]")
            self.add_problem_for(who, True, self.doc.problem(path, message, hint))
        else:
            self.add(path, message, hint)

    def add_for(self, asset: str, in_matrix: bool, path: _Path, message: str,
                hint: str = "") -> None:
        """A problem found while expanding ``asset``; repeats across combinations
        of one matrix are reported once, naming the first asset and the count."""
        problem = self.doc.problem(path, message, hint)
        self.add_problem_for(f"asset '{asset}'", in_matrix, problem)

    def add_at(self, asset: str, in_matrix: bool, where: Where, message: str,
               hint: str = "") -> None:
        """Like :meth:`add_for`, at a precomputed place."""
        problem = Problem(where.file, where.line, where.col, where.path, message, hint)
        self.add_problem_for(f"asset '{asset}'", in_matrix, problem)

    def add_problem_for(self, who: str, in_matrix: bool, problem: Problem) -> None:
        """Record ``problem``, met while handling ``who`` (``asset 'icon-sword'``).

        The same problem met again (another combination of the matrix) only counts.
        """
        seen = self.grouped.get(problem)
        if seen is None:
            self.grouped[problem] = _Grouped(problem, who, 1, in_matrix)
        else:
            seen.count += 1

    @staticmethod
    def ungroup(g: _Grouped) -> Problem:
        p = g.problem
        if not g.in_matrix:
            return p
        more = f" and {g.count - 1} more" if g.count > 1 else ""
        return Problem(p.file, p.line, p.col, p.path, f"{p.message} ({g.first_asset}{more})",
                       p.hint)

    def where(self, path: _Path) -> Where:
        line, col = self.doc.position(path)
        return Where(self.filename, line, col, format_path(path))

    # ---- top-level sections ------------------------------------------------------------
    def check_names(self, mapping: Mapping[str, Any], path: _Path, what: str) -> None:
        for key in mapping:
            if key in _RESERVED_NAMES:
                self.add(path + (key,), f"'{key}' cannot be a {what}: it is an asset field "
                         "that templates already see", f"rename it, e.g. '{key}_name'",
                         at_key=True)

    def load_styles(self, section: Mapping[str, Any]) -> dict[str, StyleSpec]:
        styles: dict[str, StyleSpec] = {}
        base = self.base_dir.resolve()
        for name, entry in section.items():
            path = ("styles", name)
            if name in tables.BASE_STYLES:
                self.add(path, f"'{name}' is a built-in style name",
                         "give the custom style another name", at_key=True)
                continue
            refs: list[str] = []
            total = 0
            for k, ref in enumerate(entry["references"]):
                ref_path = path + ("references", k)
                problem = _relative_path_problem(ref)
                if problem:
                    self.add(ref_path, f"reference {ref!r} {problem[0]}", problem[1])
                    continue
                if PurePosixPath(ref).suffix.lower() not in _REFERENCE_EXTS:
                    self.add(ref_path, f"reference {ref!r} is not a png, jpg or webp picture",
                             "Recraft takes PNG, JPG or WEBP reference pictures")
                    continue
                try:
                    full = (base / ref).resolve()
                    inside = full.is_relative_to(base)
                    size = full.stat().st_size if inside and full.is_file() else None
                except (OSError, RuntimeError) as exc:  # a link loop, a permission
                    self.add(ref_path, f"reference {ref!r} cannot be read: {exc}",
                             "check the file and its permissions")
                    continue
                if not inside:
                    self.add(ref_path, f"reference {ref!r} leaves the spec's folder (a link?)",
                             "keep reference pictures inside the spec's folder")
                    continue
                if size is None:
                    self.add(ref_path, f"reference picture not found: {ref}",
                             f"paths are relative to the spec's folder ({self.base_dir})")
                    continue
                total += size
                refs.append(ref)
            if total > _REFERENCE_TOTAL_BYTES:
                self.add(path + ("references",),
                         f"reference pictures total {total / 1e6:.1f} MB, over Recraft's 5 MB",
                         "use fewer or smaller pictures")
            styles[name] = StyleSpec(name, entry["style"], tuple(refs), self.where(path))
        return styles

    def load_providers(self, section: Mapping[str, Any]) -> dict[str, ProviderProfile]:
        profiles: dict[str, ProviderProfile] = {}
        for name, entry in section.items():
            if name in _BUILTIN_PROVIDERS:
                # A spec from a pull request must not redirect a built-in provider
                # (and so the user's token) to another server.
                self.add(("providers", name), f"'{name}' is a built-in provider name",
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
    def prepare(self, index: int, raw: Mapping[str, Any], defaults: Mapping[str, Any],
                styles: Mapping[str, StyleSpec], broken_styles: set[str]) -> _Source:
        fields, origins = _merge(index, defaults, raw)
        model_name = fields.get("model", tables.DEFAULT_MODEL)
        source = _Source(index, raw, fields, origins,
                         combos=count_combinations(raw.get("matrix")),
                         model=tables.MODELS[model_name])
        if fields.get("style") in broken_styles:
            source.ok = False  # its custom style has schema problems, already reported
            return source
        if not source.dropped & {"model", "style", "substyle", "style_id"}:
            # (with the model or style refused, the tables would only guess)
            self.check_generation(source, styles)
        else:
            source.vector = source.model.vector or fields.get("style") in VECTOR_STYLES
        source.steps = self.steps(fields.get("steps") or [], origins.get("steps", ()))
        kind = "vector" if source.vector else "raster"
        for k, step in enumerate(source.steps):
            kind = self.step_kind(kind, step, origins["steps"] + (k,))
        # Broken steps (reported by the schema) leave the picture's kind unknown.
        source.kind_after_steps = _UNKNOWN if "steps" in source.dropped else kind
        matrix = raw.get("matrix")
        if matrix:
            base = ("assets", index, "matrix")
            for sub, message, hint in matrix_problems(matrix):
                self.add(base + sub, message, hint, at_key=bool(sub))
                if not sub:
                    source.matrix_ok = False
            self.check_names({k: None for k in matrix_keys(matrix)}, base, "matrix key")
            for i, row in enumerate(matrix.get("include") or []):
                for key in row:
                    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                        self.add(base + ("include", i, key), f"'{key}' is not a valid variable "
                                 "name", "use letters, digits and _", at_key=True)
                self.check_names({k: None for k in row if k not in matrix}, base + (
                    "include", i), "variable")
        # Problems so far do not stop expansion: templates and outputs are checked
        # independently, so the user sees those mistakes in the same run.
        return source

    def check_generation(self, s: _Source, styles: Mapping[str, StyleSpec]) -> None:
        """Model, style, size and controls against the model's table."""
        f, info = s.fields, s.model

        def bad(key: str, message: str, hint: str = "") -> None:
            self.add_field(s, key, message, hint)

        style, substyle, style_id = f.get("style"), f.get("substyle"), f.get("style_id")
        v23 = "use a V2/V3 model (e.g. recraftv3) for custom styles"
        if style is not None and style_id is not None:
            bad("style_id", "give style or style_id, not both",
                "style_id already names a complete style: remove style")
        elif style is not None and style in styles:
            custom = styles[style]
            s.style_ref = style
            s.vector = info.vector or custom.base_style in VECTOR_STYLES
            if not info.custom_styles:
                bad("style", f"model {info.name} does not take custom styles", v23)
            elif custom.base_style not in info.styles:
                bad("style", f"custom style '{style}' is based on {custom.base_style}, which "
                    f"{info.name} does not offer", _styles_hint(info))
            if substyle is not None:
                bad("substyle", "a substyle cannot refine a custom style", "remove substyle")
        elif style is not None:
            s.vector = info.vector or style in VECTOR_STYLES
            if style not in tables.BASE_STYLES:
                close = suggest(style, list(tables.BASE_STYLES) + list(styles))
                bad("style", f"unknown style '{style}'",
                    close or "declare custom styles under 'styles:'")
            elif not info.styles:
                bad("style", f"model {info.name} takes no style",
                    "remove style, or use recraftv3/recraftv2 for styles")
            elif style not in info.styles:
                bad("style", f"style '{style}' is not available for {info.name}",
                    _styles_hint(info))
            elif substyle is not None and substyle not in info.styles[style]:
                allowed = info.styles[style]
                hint = suggest(substyle, allowed) or (
                    f"substyles of {style} on {info.name}: {', '.join(allowed)}" if allowed
                    else f"{style} has no substyles")
                bad("substyle", f"substyle '{substyle}' is not available for style {style} on "
                    f"{info.name}", hint)
        else:
            s.vector = info.vector
            if substyle is not None:
                bad("substyle", "substyle needs a style", "add style (e.g. digital_illustration)")
        if style_id is not None and not info.custom_styles:
            bad("style_id", f"model {info.name} does not take style_id", v23)

        size, ratio = f.get("size"), f.get("aspect_ratio")
        ratios = f"aspect ratios: {', '.join(info.aspect_ratios)}"
        if size is not None and ratio is not None:
            bad("aspect_ratio", "give size or aspect_ratio, not both", "remove one")
        elif size is not None and not info.sizes:
            bad("size", f"model {info.name} takes aspect_ratio, not size", ratios)
        elif size is not None and size not in info.sizes:
            bad("size", f"size {size} is not available for {info.name}",
                f"sizes: {', '.join(info.sizes)}")
        elif ratio is not None and ratio not in info.aspect_ratios:
            bad("aspect_ratio", f"aspect ratio {ratio} is not available for {info.name}", ratios)

        if f.get("negative_prompt") is not None and not info.negative_prompt:
            bad("negative_prompt", f"model {info.name} does not take negative_prompt",
                "remove it, or use recraftv3/recraftv2")
        if f.get("text_layout") is not None and not info.text_layout:
            bad("text_layout", f"model {info.name} does not take text_layout",
                "text_layout needs recraftv3")
        for key in f.get("controls") or {}:
            if key not in info.controls:
                bad(f"controls.{key}", f"model {info.name} does not take controls.{key}",
                    f"{info.name} takes: {', '.join(sorted(info.controls))}")

    def steps(self, raw_steps: Iterable[Any], path: _Path) -> tuple[StepSpec, ...]:
        out = []
        for k, raw in enumerate(raw_steps):
            step_path = path + (k,)
            if isinstance(raw, str):
                name, params = raw, {}
            else:
                name, params = next(iter(raw.items()))
                params = dict(params or {})
            out.append(StepSpec(name, params, self.where(step_path)))
        return tuple(out)

    def step_kind(self, kind: str, step: StepSpec, path: _Path) -> str:
        """The picture kind after an asset-level ``step``; a problem if it cannot take it."""
        info = STEPS[step.name]
        if info.needs_raster and kind == "vector":
            self.add(path, f"{step.name} needs a raster picture, but the picture is already "
                     "SVG (a vector model or style)", "remove this step: the picture is vector")
        return info.produces

    # ---- expansion ------------------------------------------------------------------------
    def expand_source(self, s: _Source, vars_: Mapping[str, Any]) -> list[Asset]:
        raw, f = s.raw, s.fields
        base_path: _Path = ("assets", s.index)
        in_matrix = bool(raw.get("matrix"))
        combos = expand(raw.get("matrix")) if s.matrix_ok else []
        field_ctx = {k: f[k] for k in TEMPLATE_FIELDS if f.get(k) is not None}
        field_ctx.setdefault("model", s.model.name)
        # Places are looked up once per asset as written, not once per combination.
        asset_where = self.where(base_path)
        name_where = self.where(base_path + ("name",))
        prompt_where = self.where(base_path + ("prompt",))
        negative_where = self.where(s.origins.get("negative_prompt", base_path))
        outputs = [self.plan_output(out, path, field_path, s)
                   for out, path, field_path in _outputs_as_written(raw, base_path)]
        template = _Rendering(self, in_matrix)
        assets: list[Asset] = []
        for combo in combos:
            template.failed = False
            context = {**field_ctx, **vars_, **combo}
            name = template.render(raw["name"], context, name_where, combo)
            if name is None:
                continue
            name = name.strip()
            if not self.check_name(name, name_where, in_matrix):
                continue
            context["name"] = name
            named = _Named(name, asset_where, in_matrix)
            self.names.append(named)
            prompt = template.render(raw["prompt"], context, prompt_where, name)
            negative = f.get("negative_prompt")
            if negative is not None:
                negative = template.render(negative, context, negative_where, name)
                negative = negative.strip() if negative is not None else None
            if prompt is not None:
                prompt = prompt.strip()
                self.check_prompt(prompt, s, prompt_where, name, in_matrix)
            specs: list[OutputSpec] = []
            for plan in outputs:
                specs.extend(self.output(plan, context, name, in_matrix, template))
            self.outputs.extend((named, spec) for spec in specs)
            if template.failed:
                continue
            request = GenerationRequest(
                model=s.model.name,
                prompt=prompt or "",
                negative_prompt=negative or None,
                style=None if s.style_ref else f.get("style"),
                substyle=f.get("substyle"),
                style_id=f.get("style_id"),
                style_ref=s.style_ref,
                size=f.get("size"),
                aspect_ratio=f.get("aspect_ratio"),
                n=f.get("n", 1),
                seed=f.get("seed"),
                controls=_controls(f.get("controls")),
                text_layout=_text_layout(f.get("text_layout")),
            )
            assets.append(Asset(name=name, request=request, steps=s.steps,
                                outputs=tuple(specs), where=asset_where, matrix=combo))
        return assets

    def check_name(self, name: str, where: Where, in_matrix: bool) -> bool:
        if not name:
            self.add_at(name, in_matrix, where, "the asset name renders empty",
                        "give every asset a name")
            return False
        if _BAD_NAME_CHARS.search(name):
            self.add_at(name, in_matrix, where, f"asset name {name!r} contains a control "
                        "character or one of * ? [ ]", "those characters select targets on "
                        "the command line; use letters, digits, - _ . /")
            return False
        return True

    def check_prompt(self, prompt: str, s: _Source, where: Where, name: str,
                     in_matrix: bool) -> None:
        if not prompt:
            self.add_at(name, in_matrix, where, "the prompt renders empty",
                        "describe the picture")
        elif len(prompt) > s.model.prompt_max:
            hint = ("shorten it, or use a V4 model (10,000 characters)"
                    if s.model.prompt_max < 10000 else "shorten it")
            self.add_at(name, in_matrix, where, f"the prompt is {len(prompt):,} characters; "
                        f"{s.model.name} takes at most {s.model.prompt_max:,}", hint)

    def plan_output(self, raw: Mapping[str, Any], path: _Path, path_field: _Path,
                    s: _Source) -> _OutputPlan:
        """What does not depend on the matrix values: places, steps, scaled steps."""
        steps = self.steps(raw.get("steps") or [], path + ("steps",))
        kind = s.kind_after_steps
        for k, step in enumerate(steps):
            if STEPS[step.name].needs_raster and kind == "vector":
                self.add(path + ("steps", k), f"{step.name} needs a raster picture, but the "
                         "picture is already SVG", "remove this step: the picture is vector")
            kind = STEPS[step.name].produces
        if "steps" in raw.get(_DROPPED, ()):
            kind = _UNKNOWN
        favicon = bool(raw.get("favicon"))
        scales = list(raw.get("scales") or [])
        ok = True
        if favicon and scales:
            self.add(path + ("scales",), "a favicon output cannot have scales",
                     "the favicon set already holds every size")
            ok = False
        elif scales and not any(st.name == "resize" for st in steps):
            self.add(path + ("scales",), "scales need a resize step in this output",
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
        return _OutputPlan(raw["path"], path, self.where(path_field), self.where(path),
                           options, favicon, kind, variants, ok)

    def output(self, plan: _OutputPlan, context: Mapping[str, Any], name: str,
               in_matrix: bool, template: _Rendering) -> list[OutputSpec]:
        """One output for one combination -> one OutputSpec per scale (none on a problem)."""
        rendered = template.render(plan.source, context, plan.path_where, name)
        if rendered is None:
            return []
        rendered = rendered.strip()
        failed = False

        def problem(where: _Path | Where, message: str, hint: str = "") -> None:
            nonlocal failed
            failed = template.failed = True
            if isinstance(where, Where):
                self.add_at(name, in_matrix, where, message, hint)
            else:
                self.add_for(name, in_matrix, where, message, hint)

        out_path = rendered.rstrip("/") if plan.favicon else rendered
        bad = _relative_path_problem(out_path)
        if bad:
            problem(plan.path_where, f"output path {rendered!r} {bad[0]}", bad[1])
            return []
        stem, dot, written_ext = out_path.rpartition(".")
        if plan.favicon:
            fmt = "ico"
        else:
            ext = written_ext.lower() if dot and "/" not in written_ext else ""
            if ext in OUTPUT_FORMATS and (not stem or stem.endswith("/")):
                problem(plan.path_where, f"output path {rendered!r} has no file name",
                        "write a name before the extension, e.g. icons/sword.png")
                return []
            if ext not in OUTPUT_FORMATS:
                what = f"extension '.{ext}'" if ext else "no extension"
                problem(plan.path_where, f"output path {rendered!r} has {what}",
                        "end it in .png, .webp, .jpg or .svg (the extension picks the format)")
                return []
            fmt = OUTPUT_FORMATS[ext]
        options = plan.options
        if "quality" in options and fmt not in ("webp", "jpg"):
            problem(plan.path + ("quality",), "quality applies to webp and jpg outputs, not "
                    f"{fmt}", "remove quality, or write .webp/.jpg")
        if "lossless" in options and fmt != "webp":
            problem(plan.path + ("lossless",), f"lossless applies to webp outputs, not {fmt}",
                    "remove lossless, or write .webp")
        if fmt == "svg" and plan.kind == "raster":
            problem(plan.path_where, "the picture is raster but this output is .svg",
                    "add a vectorize step to this output (steps: [vectorize]), or use a "
                    "vector style or model")
        if failed or not plan.ok:
            return []
        if plan.favicon:
            return [OutputSpec(out_path, fmt, plan.variants[0][1], options, (), True,
                               plan.where)]
        return [OutputSpec(f"{stem}{suffix}.{written_ext}" if suffix else out_path, fmt, steps,
                           options, (), False, plan.where)
                for suffix, steps in plan.variants]

    # ---- whole-spec checks -----------------------------------------------------------------
    def check_unique_names(self) -> None:
        first: dict[str, _Named] = {}
        for named in self.names:
            seen = first.setdefault(named.name, named)
            if seen is named:
                continue
            path = _path_of(named.where) + ("name",)
            if seen.where.path == named.where.path:
                self.add_for(named.name, False, path,
                             f"matrix combinations give the same asset name '{named.name}'",
                             "use a matrix variable in name, e.g. name: \"icon-{{ item }}\"")
            else:
                self.add_for(named.name, False, path, f"asset name '{named.name}' is already "
                             f"used by {seen.where.path} (line {seen.where.line})",
                             "asset names must be unique")

    def check_output_collisions(self) -> None:
        files: dict[str, tuple[_Named, OutputSpec]] = {}
        for named, out in self.outputs:
            key = out.path.casefold()
            seen = files.setdefault(key, (named, out))
            if seen[1] is out:
                continue
            other, other_out = seen
            case = " (the paths differ only in case)" if other_out.path != out.path else ""
            owner = "this asset" if other.name == named.name else f"asset '{other.name}'"
            assert out.where is not None and other_out.where is not None
            hint = "give each output its own path"
            if named.in_matrix and other.where.path == named.where.path:
                hint = "use a matrix variable in the path, e.g. \"icons/{{ item }}.png\""
            self.add_for(named.name, named.in_matrix, _path_of(out.where),
                         f"output '{out.path}' is also written by {owner} "
                         f"({other_out.where.path}, line {other_out.where.line}){case}", hint)
        # A file where another output needs a folder (icons.png vs icons.png/x.png).
        for key, (named, out) in files.items():
            parts = key.split("/")
            for i in range(1, len(parts)):
                parent = files.get("/".join(parts[:i]))
                if parent is None:
                    continue
                p_named, p_out = parent
                assert out.where is not None and p_out.where is not None
                what = "its favicon folder" if p_out.favicon else "a file"
                self.add_for(named.name, named.in_matrix, _path_of(out.where),
                             f"output '{out.path}' is inside '{p_out.path}', which asset "
                             f"'{p_named.name}' writes as {what} ({p_out.where.path})",
                             "move one of them")
                break


@dataclass
class _Rendering:
    """Renders one asset's templates, recording failures (``failed`` marks the combo)."""

    loader: _Loader
    in_matrix: bool
    failed: bool = False

    def render(self, source: str, context: Mapping[str, Any], where: Where,
               asset: str | Mapping[str, Any]) -> str | None:
        """Render, or record the problem and give None. ``asset`` is the asset's name,
        or (before the name exists) its matrix combination."""
        try:
            return self.loader.renderer.render(source, context, where=where)
        except SpecError as exc:
            self.failed = True
            who = f"asset '{asset}'" if isinstance(asset, str) else _combo_label(asset)
            for problem in exc.problems:
                self.loader.add_problem_for(who, self.in_matrix, problem)
            return None


# -- pure helpers ----------------------------------------------------------------------------

def _merge(index: int, defaults: Mapping[str, Any], raw: Mapping[str, Any]
           ) -> tuple[dict[str, Any], dict[str, _Path]]:
    """Defaults merged into one asset's fields, and where each field was written.

    ``origins`` maps each field (and ``controls.KEY``) to its path in the document.
    """
    fields: dict[str, Any] = {}
    origins: dict[str, _Path] = {}
    for key, value in defaults.items():
        fields[key] = value
        origins[key] = ("defaults", key)
    if "size" in raw or "aspect_ratio" in raw:
        for key in ("size", "aspect_ratio"):
            fields.pop(key, None)
    if "style" in raw or "style_id" in raw:
        for key in ("style", "substyle", "style_id"):
            fields.pop(key, None)
    for key in _MERGED_FIELDS:
        if key not in raw:
            continue
        value = raw[key]
        if key == "controls" and isinstance(value, dict) and isinstance(fields.get(key), dict):
            value = {**fields[key], **value}
        fields[key] = value
        origins[key] = ("assets", index, key)
    # Refused keys: the asset's own value (good or refused) replaces the defaults'.
    dropped = set(defaults.get(_DROPPED, ())) - set(raw)
    dropped |= set(raw.get(_DROPPED, ()))
    for key in dropped:
        fields.pop(key, None)
    fields.pop(_DROPPED, None)
    if dropped:
        fields[_DROPPED] = frozenset(dropped)
    controls = fields.get("controls")
    if isinstance(controls, dict):
        own = raw.get("controls") if isinstance(raw.get("controls"), dict) else {}
        for key in controls:
            origins[f"controls.{key}"] = ((("assets", index) if key in own else ("defaults",))
                                          + ("controls", key))
    fields = {k: v for k, v in fields.items() if v is not None}
    return fields, origins


def _outputs_as_written(raw: Mapping[str, Any], base: _Path
                        ) -> list[tuple[Mapping[str, Any], _Path, _Path]]:
    """Each output as ``(fields, its path, the path of its 'path' field)``."""
    if "output" in raw:
        path = base + ("output",)
        return [({"path": raw["output"]}, path, path)]
    return [(out, base + ("outputs", j), base + ("outputs", j, "path"))
            for j, out in raw.get(_OUTPUTS, ())]


def _clean(mapping: Any, path: _Path, report: SchemaReport) -> dict[str, Any]:
    """``mapping`` without the keys the schema found problems in.

    The refused keys are listed under :data:`_DROPPED`, so that checks which depend
    on them (the model's tables, the picture's kind after broken steps) are skipped
    rather than guessed.
    """
    if not isinstance(mapping, dict):
        return {}
    out = {k: v for k, v in mapping.items() if not report.touches(path + (k,))}
    dropped = frozenset(mapping) - frozenset(out)
    if dropped:
        out[_DROPPED] = dropped
    return out


def _clean_asset(raw: Any, index: int, report: SchemaReport) -> dict[str, Any] | None:
    """One asset with its refused fields left out; None if it cannot be expanded."""
    path: _Path = ("assets", index)
    if not isinstance(raw, dict):
        return None
    out = _clean(raw, path, report)
    if not isinstance(out.get("name"), str) or not isinstance(out.get("prompt"), str):
        return None
    if "matrix" in raw and "matrix" not in out:
        return None  # a broken matrix cannot be expanded
    outputs = raw.get("outputs")
    out.pop("outputs", None)
    if "output" in raw and "outputs" in raw:
        out.pop("output", None)  # both given: the schema said so; check neither
    elif isinstance(outputs, list):
        kept = []
        for j, item in enumerate(outputs):
            item_path = path + ("outputs", j)
            if not isinstance(item, dict) or not isinstance(item.get("path"), str) \
                    or report.touches(item_path + ("path",)):
                continue
            cleaned = _clean(item, item_path, report)
            kept.append((j, cleaned))
        out[_OUTPUTS] = kept
    return out


def _relative_path_problem(path: str) -> tuple[str, str] | None:
    """Why ``path`` is not a clean relative posix path, as (problem, hint), or None."""
    if not path:
        return "is empty", "write a file path like icons/sword.png"
    if "\\" in path:
        return "contains a backslash", "use / between folders"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "is absolute", "write it relative to the output folder"
    if _BAD_PATH_CHARS.search(path):
        return ('contains a character that is not allowed in file names (<>:"|?* or a '
                "control character)", "use letters, digits, - _ . and /")
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'", "outputs may not leave the output folder"
    if "" in parts:
        return "has an empty folder name (//, or a trailing /)", "remove the extra /"
    if "." in parts:
        return "contains a '.' folder", "remove the './'"
    return None


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


def _styles_hint(info: tables.ModelInfo) -> str:
    return f"styles for {info.name}: {', '.join(info.styles)}"


def _combo_label(combo: Mapping[str, Any]) -> str:
    """``item=sword, tier=2``: names a combination whose asset name did not render."""
    return "matrix " + ", ".join(f"{k}={v}" for k, v in combo.items())


def _path_of(where: Where) -> _Path:
    """Parse a dotted path back into a tuple (``assets[2].outputs[0]``)."""
    parts: list[Any] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", where.path):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return tuple(parts)
