"""Size checks for what a template calls: ``%`` and ``str.format``, filters, methods.

Each check looks at the arguments *before* the call and bounds the size of its result,
so that ``'%.1000000000f' % 1``, ``'{:>1000000000}'.format(1)``,
``'a'|center(3 * 10**9)``, ``'a'.ljust(10**9)``, ``s|indent(10**9)``,
``s.replace('', big)``, ``big.join(many)``, ``[x]|batch(10**9, 0)``,
``(1).to_bytes(10**9)`` and the like are refused without allocating anything; a few
calls that cannot finish in time are refused outright (``round`` to a million digits,
``sum`` of lists). Results are measured after the call as well.
"""

from __future__ import annotations

import json
import re
from functools import wraps
from typing import Any, Callable, Mapping

from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import pass_eval_context
from markupsafe import EscapeFormatter, Markup

from recraft_build.spec.budget import CHARS_PER_STEP, NODES_PER_STEP, Budget, int_arg, shallow_size

__all__ = [
    "GuardedEscapeFormatter",
    "GuardedFormatter",
    "guard_filter",
    "guard_test",
    "join_filter",
    "method_precheck",
    "percent_size",
    "PRECHECKS",
    "tojson_filter",
]

# ``round(x, n)``: a float has at most 324 significant decimal places.
_MAX_ROUND_DIGITS = 400
# ``tojson(indent=N)``: deep structures repeat the indent on every line.
_MAX_JSON_INDENT = 100
# Steps a filter or test call is charged (about 1 us each, against 0.3 us a step).
_FILTER_STEPS = 3


# -- % formatting and str.format ----------------------------------------------------------

_PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?"
                      r"(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.)?", re.S)
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<prec>\d*))?"
                   r"(?P<type>[a-zA-Z%])?", re.S)
_DIGITS_LIMIT = 9  # a width or precision written with more digits is refused outright


def _number(value: Any, budget: Budget) -> int:
    if isinstance(value, float):
        return 330  # %f of 1e308 prints 309 digits
    if isinstance(value, int):
        return value.bit_length() + 3  # base 2 at worst (format 'b')
    return budget.measure(value)


def _written_int(text: str | None, budget: Budget) -> int:
    if not text:
        return 0
    if len(text) > _DIGITS_LIMIT:
        budget.need(budget.limits.max_value + 1, "a format width or precision")
    return int(text)


def percent_size(fmt: str | bytes, values: Any, budget: Budget) -> int:
    """A bound on the length of ``fmt % values``; refuses widths past the size limit."""
    if isinstance(fmt, (bytes, bytearray)):
        fmt = fmt.decode("latin-1")
    if isinstance(values, tuple):
        positional: list[Any] = list(values)
        mapping: Mapping[str, Any] | None = None
    else:
        positional = [values]
        mapping = values if isinstance(values, Mapping) else None
    pos = 0

    def take() -> Any:
        nonlocal pos
        pos += 1
        return positional[pos - 1] if pos - 1 < len(positional) else None

    total = len(fmt)
    for m in _PERCENT.finditer(fmt):
        conv = m["conv"]
        if conv == "%" or conv is None:
            continue
        width = int_arg(take()) if m["width"] == "*" else _written_int(m["width"], budget)
        prec = int_arg(take()) if m["prec"] == "*" else _written_int(m["prec"], budget)
        width, prec = abs(width or 0), max(prec or 0, 0)
        budget.need(max(width, prec), "a format width or precision")
        key = m["key"]
        value = mapping.get(key) if key is not None and mapping is not None else take()
        if conv in "sra":
            size = budget.measure(value) * (4 if conv in "ra" else 1) + 2
            if m["prec"] is not None and conv == "s":
                size = min(size, prec)
        elif conv == "c":
            size = 1
        else:
            size = _number(value, budget) + prec
        total += max(width, size)
        budget.need(total, "the formatted text")
    return total


def format_spec_size(value: Any, spec: str, budget: Budget) -> int:
    """A bound on ``len(format(value, spec))``; refuses widths past the size limit."""
    m = _SPEC.fullmatch(spec)
    width = _written_int(m["width"], budget) if m else 0
    prec = _written_int(m["prec"], budget) if m else 0
    budget.need(max(width, prec), "a format width or precision")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        size = (_number(value, budget) + prec) * 4 // 3  # grouping separators
    else:
        size = budget.measure(value)
        if m and m["prec"]:
            size = min(size, prec)
    return max(width, size)


class GuardedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with every field measured before it is built."""

    def __init__(self, env: Any, **kwargs: Any):
        super().__init__(env, **kwargs)
        self._budget = env.budget
        self._total = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):
            self._budget.need(4 * self._budget.measure(value) + 2, "a formatted field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        self._total += format_spec_size(value, format_spec, self._budget)
        self._budget.need(self._total, "the formatted text")
        self._budget.charge(1)
        return super().format_field(value, format_spec)


class GuardedEscapeFormatter(GuardedFormatter, EscapeFormatter):
    pass


# -- filters --------------------------------------------------------------------------------
# A precheck looks at a filter's arguments before it runs and gives a bound on the size
# of its result (None: nothing to say); some refuse outright with their own message.

Precheck = Callable[..., "int | None"]


def _pre_center(b: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return max(b.measure(value), int_arg(width) or 0)


def _pre_indent(b: Budget, s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    size = b.measure(s)
    lines = (s.count("\n") if isinstance(s, str) else size) + 1
    step = len(width) if isinstance(width, str) else (int_arg(width) or 0)
    return max(step, size) + lines * step  # (the indent itself is built first)


def _pre_format(b: Budget, value: Any, *args: Any, **kwargs: Any) -> int | None:
    return percent_size(value, kwargs or args, b) if isinstance(value, str) else None


def _pre_replace(b: Budget, s: Any, old: Any = None, new: Any = None, count: Any = None,
                 *_: Any, **__: Any) -> int | None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        return replace_size(s, old, new, int_arg(count))
    return None


def replace_size(s: str, old: str, new: str, count: int | None) -> int:
    """A bound on ``len(s.replace(old, new, count))``, computed without building it."""
    grows = len(new) - len(old)
    if grows <= 0:
        return len(s)
    times = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    return len(s) + times * grows


def _pre_batch(b: Budget, value: Any, linecount: Any = 0, *_: Any, **__: Any) -> int:
    return int_arg(linecount) or 0  # the last batch is filled up to linecount


def _pre_slice(b: Budget, value: Any, slices: Any = 0, *_: Any, **__: Any) -> int:
    n = int_arg(slices) or 0
    b.charge(min(n, b.limits.max_value) // NODES_PER_STEP)  # it loops over every slice
    return n


def _pre_round(b: Budget, value: Any, precision: Any = 0, *_: Any, **__: Any) -> None:
    if abs(int_arg(precision) or 0) > _MAX_ROUND_DIGITS:
        b.fail(f"round takes a precision of at most {_MAX_ROUND_DIGITS} digits")


def _pre_sum(b: Budget, iterable: Any, attribute: Any = None, start: Any = 0,
             *_: Any, **__: Any) -> None:
    if not isinstance(start, (int, float)):
        # Adding lists or text one by one copies the whole result each time.
        b.fail("sum adds numbers only (use join for text)")


def _pre_wordwrap(b: Budget, s: Any, width: Any = 79, break_long_words: Any = True,
                  wrapstring: Any = None, *_: Any, **__: Any) -> int:
    size = b.measure(s)
    return size + (size + 1) * (len(wrapstring) if isinstance(wrapstring, str) else 1)


def _pre_urlize(b: Budget, value: Any, *args: Any, **kw: Any) -> int:
    extra = sum(len(x) for x in (kw.get("target"), kw.get("rel"), *args[2:4])
                if isinstance(x, str))
    size = b.measure(value)
    return 4 * size + (size // 4 + 1) * (extra + 64)  # a link per 4 characters at most


def _pre_grows(factor: int) -> Precheck:
    """Filters whose text is at most ``factor`` times the value's (escaping, upper...)."""
    def pre(b: Budget, value: Any, *_: Any, **__: Any) -> int:
        return factor * b.measure(value)
    return pre


PRECHECKS: dict[str, Precheck] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "format": _pre_format,
    "replace": _pre_replace,
    "batch": _pre_batch,
    "slice": _pre_slice,
    "round": _pre_round,
    "sum": _pre_sum,
    "wordwrap": _pre_wordwrap,
    "urlize": _pre_urlize,
    **{name: _pre_grows(6) for name in ("escape", "e", "forceescape", "xmlattr")},
    **{name: _pre_grows(3) for name in ("upper", "lower", "title", "capitalize",
                                        "urlencode", "string", "pprint")},
}


def guard_filter(name: str, func: Callable[..., Any], budget: Budget,
                 precheck: Precheck | None) -> Callable[..., Any]:
    """``func`` with its work charged, its arguments checked and its result measured."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    what = f"the {name} filter's result"

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value = args[skip] if len(args) > skip else None
        budget.charge(_FILTER_STEPS + shallow_size(value) // NODES_PER_STEP)
        if precheck is not None:
            bound = precheck(budget, *args[skip:], **kwargs)
            if bound is not None:
                budget.need(bound, what)
        result = func(*args, **kwargs)
        if not hasattr(type(result), "__next__"):  # iterators are measured where consumed
            budget.check(result, what)
        return result

    return guarded


def guard_test(func: Callable[..., Any], budget: Budget) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget.charge(_FILTER_STEPS)
        for arg in args[skip:]:
            budget.check(arg)
        return func(*args, **kwargs)

    return guarded


def join_filter(budget: Budget) -> Callable[..., Any]:
    """``join``: its items are measured before the text is built."""

    @pass_eval_context
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(budget.loop(value))
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(x) for x in items]
        size = sum(budget.measure(x) for x in items) + len(str(d)) * max(len(items) - 1, 0)
        budget.need(size, "the joined text")
        return sync_do_join(eval_ctx, items, d)

    return join


def tojson_filter(budget: Budget) -> Callable[..., Any]:
    """``tojson``: the JSON is built in pieces and refused as soon as it is too long."""

    @pass_eval_context
    def tojson(eval_ctx: Any, value: Any, indent: Any = None) -> Markup:
        step = len(indent) if isinstance(indent, str) else (int_arg(indent) or 0)
        if step > _MAX_JSON_INDENT:
            budget.fail(f"tojson takes an indent of at most {_MAX_JSON_INDENT}")
        total = 0
        parts = []
        encoder = json.JSONEncoder(indent=indent, sort_keys=True)
        for chunk in encoder.iterencode(value):
            total += len(chunk)
            budget.need(total, "the JSON text")
            parts.append(chunk)
        budget.charge(total // CHARS_PER_STEP)
        text = "".join(parts)
        # As Jinja's htmlsafe_json_dumps: safe to place in HTML and in <script>.
        return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                      .replace("&", "\\u0026").replace("'", "\\u0027"))

    return tojson


# -- method calls ------------------------------------------------------------------------------

_TEXT_TYPES = (str, bytes, bytearray)


def method_precheck(budget: Budget, method: Any, args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Check a call to a method of text (str, Markup, bytes) or an int; give the args to
    call with (``join`` gets its items as a list, already measured)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, _TEXT_TYPES):
        size = len(owner)
        if name in ("center", "ljust", "rjust", "zfill"):
            width = int_arg(args[0]) if args else int_arg(kwargs.get("width"))
            budget.need(max(size, width or 0), f"{name}()")
        elif name == "expandtabs":
            tabsize = int_arg(args[0]) if args else int_arg(kwargs.get("tabsize", 8))
            budget.need(size * max(tabsize or 0, 1), "expandtabs()")
        elif name == "replace" and len(args) >= 2 and isinstance(owner, str) \
                and isinstance(args[0], str) and isinstance(args[1], str):
            count = int_arg(args[2]) if len(args) > 2 else int_arg(kwargs.get("count"))
            budget.need(replace_size(owner, args[0], args[1], count), "replace()")
        elif name == "replace" and len(args) >= 2:
            budget.need(size * (len(args[1]) + 1) + len(args[1]), "replace()")
        elif name == "join" and args:
            items = list(budget.loop(args[0]))
            budget.need(sum(budget.measure(x) for x in items) + size * len(items), "join()")
            return (items, *args[1:])
        elif name == "translate" and args:
            table = args[0]
            longest = max((len(v) for v in table.values() if isinstance(v, _TEXT_TYPES)),
                          default=1) if isinstance(table, dict) else 1
            budget.need(size * max(longest, 1), "translate()")
        budget.charge(size // CHARS_PER_STEP)
    elif isinstance(owner, int) and name == "to_bytes":
        length = int_arg(args[0]) if args else int_arg(kwargs.get("length", 1))
        budget.need(length or 0, "to_bytes()")
    return args
