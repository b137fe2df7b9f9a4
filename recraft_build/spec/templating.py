"""Jinja templates in spec fields, rendered in a sandbox.

A spec may come from a pull request, so its templates must not run code, read files
or change between runs. :class:`TemplateRenderer` uses Jinja's
``SandboxedEnvironment`` (no access to Python internals) with:

* ``StrictUndefined``: a misspelt variable is an error, never an empty string;
* no loader: ``{% include %}``, ``{% import %}`` and ``{% extends %}`` cannot read
  files;
* no ``random`` filter and no ``lipsum``: a prompt must render the same every time,
  or every build would pay for new pictures;
* ``*`` and ``**`` checked, so ``{{ 'x' * 10**9 }}`` is refused rather than
  allocating a gigabyte (Jinja's sandbox already caps ``range``);
* autoescape off: prompts are plain text, not HTML.

Each distinct template string is compiled once per renderer and reused, so a
10,000-asset matrix compiles its handful of templates once. Strings without ``{``
are returned as they are, without touching Jinja.

Errors are raised as :class:`~recraft_build.errors.SpecError` with one
:class:`~recraft_build.errors.Problem` placed at the caller's
:class:`~recraft_build.domain.Where`, naming the variable, the asset and the field.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from recraft_build.domain import Where
from recraft_build.errors import Problem, SpecError

__all__ = ["MAX_OUTPUT", "TemplateRenderer", "is_template"]

#: Longest text a template may produce (a V4 prompt is at most 10,000 characters).
MAX_OUTPUT = 100_000
_MAX_POWER_BITS = 256
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")


def is_template(source: str) -> bool:
    """True when ``source`` contains Jinja syntax (and so must be rendered)."""
    return "{" in source


_PLAIN_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def _plain_value(value: Any) -> Any:
    """Refuse to print objects whose text is not stable (a function's repr has an address)."""
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined raises UndefinedError here, naming the name
    if not isinstance(value, _PLAIN_TYPES):
        raise SecurityError(f"cannot print a {type(value).__name__} (print plain values only)")
    return value


class _Sandbox(SandboxedEnvironment):
    """The sandbox, plus limits on the operators that can allocate without bound."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, max_output: int):
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            loader=None,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=0,  # we keep our own cache of compiled templates
        )
        self.max_output = max_output
        self.filters.pop("random", None)
        self.globals.pop("lipsum", None)
        self.finalize = _plain_value

    def get_template(self, *args: Any, **kwargs: Any) -> Any:
        # Without a loader Jinja would say "no loader"; say what the rule is instead.
        raise SecurityError("templates cannot include, import or extend other files")

    select_template = get_template
    get_or_select_template = get_template

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > self.max_output:
                    raise SecurityError("the template repeats text past the size limit")
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
            if abs(left) > 1 and abs(right) * max(abs(left), 2).bit_length() > _MAX_POWER_BITS:
                raise SecurityError("the template computes a number past the size limit")
        return super().call_binop(context, operator, left, right)


class TemplateRenderer:
    """Renders spec templates; one renderer per spec load (it caches compiled templates).

    Not thread-safe (the cache is a plain dict); a spec is loaded on one thread.
    """

    def __init__(self, *, max_output: int = MAX_OUTPUT):
        self._env = _Sandbox(max_output)
        self._globals = dict(self._env.globals)
        self._max_output = max_output
        self._compiled: dict[str, Any] = {}
        # Templates that are only text and {{ name }}: rendered without building a
        # Jinja context (most of a render's cost in a 10,000-asset matrix).
        self._simple: dict[str, list[Any] | None] = {}

    @property
    def compiled_count(self) -> int:
        """How many distinct template strings this renderer has compiled (or refused)."""
        return len(self._compiled)

    def check(self, source: str, *, where: Where, asset: str | None = None) -> None:
        """Compile ``source`` (cached); raise SpecError for a syntax error."""
        self._template(source, where, asset)

    def render(
        self,
        source: str,
        context: Mapping[str, Any],
        *,
        where: Where,
        asset: str | None = None,
    ) -> str:
        """Render ``source`` with ``context``; raise SpecError placed at ``where``.

        ``asset`` (the asset's name, if known yet) goes into the message. The result
        is returned as rendered (callers strip surrounding whitespace if they wish).
        """
        if not is_template(source):
            return source
        template = self._template(source, where, asset)
        simple = self._simple.get(source)
        if simple is not None:
            text = _render_simple(simple, context)
            if text is not None:
                return text
        try:
            # Template.render() would rebuild the globals from a ChainMap twice per
            # call (most of a render's cost); a plain merged dict is equivalent.
            ctx = new_context(self._env, template.name, template.blocks,
                              {**self._globals, **context}, True, None, None)
            text = self._env.concat(template.root_render_func(ctx))  # type: ignore[attr-defined]
        except UndefinedError as exc:
            raise self._undefined(exc, context, where, asset) from exc
        except SecurityError as exc:
            raise _error(where, f"template refused{_of(asset)}: {exc}",
                         "templates can only format values") from exc
        except Exception as exc:  # noqa: BLE001 - user template code: any failure is theirs
            raise _error(where, f"template failed{_of(asset)}: {type(exc).__name__}: {exc}",
                         "check the expression in this template") from exc
        if len(text) > self._max_output:
            raise _error(where, f"template output is {len(text):,} characters{_of(asset)}, over "
                         f"the {self._max_output:,} limit", "shorten the template")
        return text

    def _template(self, source: str, where: Where, asset: str | None) -> Any:
        cached = self._compiled.get(source)
        if cached is not None:
            if isinstance(cached, SpecError):
                raise _error(where, cached.problems[0].message, cached.problems[0].hint)
            return cached
        try:
            template = self._env.from_string(source)
        except TemplateSyntaxError as exc:
            line = f" (template line {exc.lineno})" if source.count("\n") and exc.lineno else ""
            err = _error(where, f"template syntax error: {exc.message}{line}",
                         "Jinja syntax: {{ variable }}, {% if x %}...{% endif %}")
            self._compiled[source] = err
            raise err from exc
        self._compiled[source] = template
        self._simple[source] = _simple_form(self._env, source)
        return template

    def _undefined(self, exc: UndefinedError, context: Mapping[str, Any], where: Where,
                   asset: str | None) -> SpecError:
        message = exc.message or "undefined value"
        match = _UNDEFINED_RE.match(message)
        if match:
            name = match.group(1)
            close = difflib.get_close_matches(name, list(context), n=1, cutoff=0.6)
            known = ", ".join(sorted(context)) or "none"
            hint = f"did you mean '{close[0]}'?" if close else f"variables here: {known}"
            return _error(where, f"undefined template variable '{name}'{_of(asset)}", hint)
        return _error(where, f"template error{_of(asset)}: {message}",
                      "check the names used in this template")


class _Var(str):
    """A variable reference in a simple template (a str subclass, told apart by type)."""


def _simple_form(env: Any, source: str) -> list[Any] | None:
    """``source`` as [text, _Var(name), ...] when it is only text and ``{{ name }}``."""
    from jinja2 import nodes

    body = env.parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[Any] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(_Var(node.name))
        else:
            return None
    return parts


def _render_simple(parts: list[Any], context: Mapping[str, Any]) -> str | None:
    """Render a simple form, or None to let Jinja do it (and raise its precise errors).

    Only str and numbers are substituted here, which Jinja prints with str() too;
    anything else (a missing name, a list, None) goes the full way.
    """
    out = []
    for part in parts:
        if type(part) is _Var:
            value = context.get(part, _Var)
            t = type(value)
            if t is str:
                out.append(value)
            elif t is int or t is float or t is bool:
                out.append(str(value))
            else:
                return None
        else:
            out.append(part)
    return "".join(out)


def _of(asset: str | None) -> str:
    return f" in asset '{asset}'" if asset else ""


def _error(where: Where, message: str, hint: str = "") -> SpecError:
    return SpecError([Problem(where.file, where.line, where.col, where.path, message, hint)])
