"""Jinja templates in spec fields, rendered in a sandbox.

A spec may come from a pull request, so its templates must not run code, read files,
change between runs, or cost more than a moment to check. :class:`TemplateRenderer`
renders in :class:`~recraft_build.spec.sandbox.GuardedSandbox` (Jinja's immutable
sandbox plus limits on steps, time and size; see that module) with:

* ``StrictUndefined``: a misspelt variable is an error, never an empty string;
* no loader: ``{% include %}``, ``{% import %}`` and ``{% extends %}`` cannot read
  files;
* no ``random`` filter and no ``lipsum``: a prompt must render the same every time,
  or every build would pay for new pictures;
* :class:`~recraft_build.spec.sandbox.Limits`: a rendered field has at most
  ``max_output`` characters (counted while it is produced), no value built on the way
  passes ``max_value``, a render takes at most ``render_steps`` steps and
  ``render_seconds``, and all renders of one renderer (one spec load) at most
  ``total_steps``;
* autoescape off: prompts are plain text, not HTML.

Each distinct template string is compiled once per renderer and reused, so a
10,000-asset matrix compiles its handful of templates once. Strings without ``{``
are returned as they are, without touching Jinja.

:meth:`TemplateRenderer.render_value` renders a field that holds a value rather than
text (``colors: "{{ palette }}"``): when the whole field is one ``{{ expression }}``,
the expression's value itself (a list, a mapping, a number...) is the result.

Errors are raised as :class:`~recraft_build.errors.SpecError` with one
:class:`~recraft_build.errors.Problem` placed at the caller's
:class:`~recraft_build.domain.Where`, naming the variable, the asset and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
from typing import Any, Callable, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.runtime import new_context
from jinja2.sandbox import SecurityError
from markupsafe import Markup

from recraft_build.domain import Where
from recraft_build.errors import Problem, SpecError
from recraft_build.spec.sandbox import GuardedSandbox, LimitExceeded, Limits

__all__ = ["MAX_OUTPUT", "Limits", "TemplateRenderer", "is_template"]

#: Longest text a template may produce (a V4 prompt is at most 10,000 characters).
MAX_OUTPUT = Limits.max_output
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_LIMIT_HINT = ("templates may only loop, compute and build so much (docs/spec.md, "
               "Templates): simplify this one")
# Deepest list/mapping a value template may give (YAML allows 100 levels).
_MAX_VALUE_DEPTH = 100


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


class _Sandbox(GuardedSandbox):
    """The guarded sandbox, set up for spec fields."""

    def __init__(self, limits: Limits, clock: Callable[[], float]):
        super().__init__(
            limits,
            clock,
            undefined=StrictUndefined,
            autoescape=False,
            loader=None,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=0,  # we keep our own cache of compiled templates
        )
        self.filters.pop("random", None)
        self.globals.pop("lipsum", None)
        check = self.budget.check
        scalars = (str, int, float, bool, type(None))

        def finalize(value: Any) -> Any:
            # Printed text is counted by the output limit; lists and mappings are
            # measured first (one list may repeat a long text many times).
            if type(value) in scalars:
                return value
            return check(_plain_value(value), "the printed value")

        self.finalize = finalize

    def get_template(self, *args: Any, **kwargs: Any) -> Any:
        # Without a loader Jinja would say "no loader"; say what the rule is instead.
        raise SecurityError("templates cannot include, import or extend other files")

    select_template = get_template
    get_or_select_template = get_template


class _TooLong(Exception):
    """The rendered text passed ``max_output`` (counted while it was produced)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class TemplateRenderer:
    """Renders spec templates; one renderer per spec load (it caches compiled templates,
    and its :class:`Limits` budget counts the work of every render it does).

    ``clock`` (seconds, monotonic) times each render against ``render_seconds``.
    Not thread-safe (the caches are plain dicts); a spec is loaded on one thread.
    """

    def __init__(self, *, max_output: int | None = None, limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic):
        limits = limits or Limits()
        if max_output is not None:
            limits = dataclasses.replace(limits, max_output=max_output)
        self._env = _Sandbox(limits, clock)
        self._globals = dict(self._env.globals)
        self._max_output = limits.max_output
        self._compiled: dict[str, Any] = {}
        # Templates that are only text and {{ name }}: rendered without building a
        # Jinja context (most of a render's cost in a 10,000-asset matrix).
        self._simple: dict[str, list[Any] | None] = {}
        # Templates that are one {{ expression }}: compiled as "result = expression",
        # for fields that take the value itself.
        self._expressions: dict[str, Any] = {}

    @property
    def limits(self) -> Limits:
        return self._env.limits

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
            parts = _render_simple(simple, context, self._max_output)
            if parts is not None:
                return "".join(parts)
        return self._run(template, context, where, asset, self._stream)

    def render_value(
        self,
        source: Any,
        context: Mapping[str, Any],
        *,
        where: Where,
        asset: str | None = None,
    ) -> Any:
        """Render a field that holds a value: ``colors: "{{ palette }}"``.

        When ``source`` is one ``{{ expression }}`` (surrounding spaces allowed), the
        result is the expression's value (a list, mapping, number, text...), as plain
        data: tuples become lists; anything that is not data (a function, a macro) is
        an error. Any other template renders to text, as :meth:`render` does. A value
        that is not a string is returned unchanged.
        """
        if not isinstance(source, str) or not is_template(source):
            return source
        self._template(source, where, asset)
        expression = self._expressions.get(source)
        if expression is None:
            return self.render(source, context, where=where, asset=asset)

        def evaluate(stream: Iterable[str], ctx: Any) -> Any:
            for _ in stream:  # an assignment yields nothing; run it to the end
                pass
            return ctx.vars["result"]

        value = self._run(expression, context, where, asset, evaluate)
        try:
            return _plain_data(value)
        except UndefinedError as exc:
            raise self._undefined(exc, context, where, asset) from exc
        except (TypeError, ValueError) as exc:
            raise _error(where, f"template value{_of(asset)}: {exc}",
                         "give a list, a mapping, text, a number or true/false") from exc

    # -- internals -----------------------------------------------------------------------------
    def _run(self, template: Any, context: Mapping[str, Any], where: Where, asset: str | None,
             consume: Callable[[Iterable[str], Any], Any]) -> Any:
        """Run ``template`` within the budget; turn every failure into a SpecError."""
        budget = self._env.budget
        try:
            budget.begin()
            try:
                # Template.render() would rebuild the globals from a ChainMap twice per
                # call (most of a render's cost); a plain merged dict is equivalent.
                ctx = new_context(self._env, template.name, template.blocks,
                                  {**self._globals, **context}, True, None, None)
                return consume(template.root_render_func(ctx), ctx)
            finally:
                budget.end()  # raises a refusal the template may have swallowed
        except _TooLong as exc:
            raise self._too_long(exc.size, where, asset) from None
        except UndefinedError as exc:
            raise self._undefined(exc, context, where, asset) from exc
        except LimitExceeded as exc:
            raise _error(where, f"template refused{_of(asset)}: {exc}", _LIMIT_HINT) from exc
        except SecurityError as exc:
            raise _error(where, f"template refused{_of(asset)}: {exc}",
                         "templates can only format values") from exc
        except Exception as exc:  # noqa: BLE001 - user template code: any failure is theirs
            raise _error(where, f"template failed{_of(asset)}: {type(exc).__name__}: {exc}",
                         "check the expression in this template") from exc

    def _stream(self, pieces: Iterable[str], _ctx: Any) -> str:
        """Join the rendered pieces, refusing as soon as they pass ``max_output``."""
        out = []
        size = 0
        for piece in pieces:
            size += len(piece)
            if size > self._max_output:
                raise _TooLong(size)
            out.append(piece)
        return "".join(out)

    def _too_long(self, size: int, where: Where, asset: str | None) -> SpecError:
        return _error(where, f"template output passes {size:,} characters{_of(asset)}, over "
                      f"the {self._max_output:,} limit", "shorten the template")

    def _template(self, source: str, where: Where, asset: str | None) -> Any:
        cached = self._compiled.get(source)
        if cached is not None:
            if isinstance(cached, SpecError):
                raise _error(where, cached.problems[0].message, cached.problems[0].hint)
            return cached
        try:
            self._env.budget.compiling(self._env.lex(source))
            tree = self._env.parse(source)
            simple = _simple_form(tree)
            single = _single_expression(tree) is not None
            template = self._env.from_string(tree)  # (rewrites the tree: parse it again below)
        except TemplateSyntaxError as exc:
            line = f" (template line {exc.lineno})" if source.count("\n") and exc.lineno else ""
            err = _error(where, f"template syntax error: {exc.message}{line}",
                         "Jinja syntax: {{ variable }}, {% if x %}...{% endif %}")
            self._compiled[source] = err
            raise err from exc
        except LimitExceeded as exc:  # too many tokens, or a constant folded too big
            err = _error(where, f"template refused{_of(asset)}: {exc}", _LIMIT_HINT)
            self._compiled[source] = err
            raise err from exc
        self._compiled[source] = template
        self._simple[source] = simple
        expression = _single_expression(self._env.parse(source)) if single else None
        if expression is not None:
            assign = nodes.Assign(nodes.Name("result", "store", lineno=1), expression, lineno=1)
            self._expressions[source] = self._env.from_string(nodes.Template([assign], lineno=1))
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


def _simple_form(tree: nodes.Template) -> list[Any] | None:
    """The template as [text, _Var(name), ...] when it is only text and ``{{ name }}``."""
    body = tree.body
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


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one ``{{ expression }}`` and spaces, or None."""
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    found = [n for n in body[0].nodes
             if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
    if len(found) != 1 or isinstance(found[0], nodes.TemplateData):
        return None
    return found[0]


def _render_simple(parts: list[Any], context: Mapping[str, Any], limit: int
                   ) -> list[str] | None:
    """Render a simple form as its pieces, or None to let Jinja do it (and raise its
    precise errors).

    Only str and numbers are substituted here, which Jinja prints with str() too;
    anything else (a missing name, a list, None) goes the full way, and so does a
    result longer than ``limit`` (the full way refuses it while it is produced).
    """
    out = []
    size = 0
    for part in parts:
        if type(part) is _Var:
            value = context.get(part, _Var)
            t = type(value)
            if t is str:
                pass
            elif t is int or t is float or t is bool:
                value = str(value)
            else:
                return None
        else:
            value = part
        size += len(value)
        if size > limit:
            return None
        out.append(value)
    return out


def _plain_data(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-like data (lists, str-keyed dicts, text, numbers, booleans, null).

    Raises UndefinedError for an undefined value, TypeError for anything else.
    """
    if depth > _MAX_VALUE_DEPTH:
        raise ValueError(f"the value is nested deeper than {_MAX_VALUE_DEPTH} levels")
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError, naming the variable
        raise TypeError("the value is undefined")
    if isinstance(value, Markup):
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_data(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"a mapping key is {type(k).__name__}, not text")
            out[k] = _plain_data(v, depth + 1)
        return out
    raise TypeError(f"the template gives a {type(value).__name__}, not a value")


def _of(asset: str | None) -> str:
    return f" in asset '{asset}'" if asset else ""


def _error(where: Where, message: str, hint: str = "") -> SpecError:
    return SpecError([Problem(where.file, where.line, where.col, where.path, message, hint)])
