"""The Jinja sandbox the spec's templates run in, with limits on work, time and size.

A spec may come from a pull request, so validating it must stay cheap whatever its
templates say. Jinja's ``ImmutableSandboxedEnvironment`` keeps templates away from
Python internals and from changing the lists and mappings they are given (the
``vars`` are shared by every asset: a template that appended to one would change the
next asset's prompt). :class:`GuardedSandbox` adds the
:class:`~recraft_build.spec.budget.Limits` of :mod:`~recraft_build.spec.budget`:

* ``{% for i in range(100000) %}{% for j in range(100000) %}`` is refused after the
  render's steps, a fraction of a second; a spec that repeats a heavy template in each
  of 100,000 assets after the load's steps;
* a render that runs past its time is stopped;
* no value a template builds passes the size limit: the checks of
  :mod:`~recraft_build.spec.guards` refuse ``'%*d' % (10**9, 1)``,
  ``'a'|center(3 * 10**9)`` and the like before anything is allocated, ``*``, ``+`` and
  ``~`` are measured before they copy, and ``**`` and ``*`` on integers are refused
  past a few hundred digits.

How: after parsing, the template's syntax tree is rewritten so that every ``for``
loop iterates through a counting guard, every ``~`` goes through a measured join, and
every list/tuple/dict literal and compared value is measured; all operators are
intercepted (:attr:`GuardedSandbox.intercepted_binops`), calls go through
:meth:`GuardedSandbox.call`, every filter and test is wrapped, and ``str.format``
uses a formatter that measures each field. Macro and block output is counted while it
is produced. A refusal is :class:`~recraft_build.spec.budget.LimitExceeded`, a
``SecurityError``: the renderer reports it at the field, naming the asset.
"""

from __future__ import annotations

import time
import types
from functools import update_wrapper
from typing import Any, Callable, Iterable

from jinja2 import nodes
from jinja2.runtime import LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from recraft_build.spec.budget import CHARS_PER_STEP, Budget, LimitExceeded, Limits, int_arg
from recraft_build.spec.guards import (
    PRECHECKS,
    GuardedEscapeFormatter,
    GuardedFormatter,
    guard_filter,
    guard_test,
    join_filter,
    method_precheck,
    percent_size,
    tojson_filter,
)

__all__ = ["Budget", "GuardedSandbox", "LimitExceeded", "Limits"]

# Integers a template may compute: a seed or a size needs a few digits; 1024 bits is
# 300 digits. (Python prints at most 4300 digits anyway.)
_MAX_INT_BITS = 1024
# ``x ** y`` is refused when its result could pass this many bits (kept from before).
_MAX_POWER_BITS = 256
# Steps a call is charged: the sandbox's attribute and safety checks make a method
# call cost about 4 us, a macro call (with its output buffer) about 5 us, against
# about 0.3 us a step (measured on the machine the limits were set on).
_CALL_STEPS = 10
_MACRO_STEPS = 14


# -- the syntax tree rewrite -------------------------------------------------------------------

_LOOP = "_rb_loop"
_CONCAT = "_rb_concat"
_VALUE = "_rb_value"


def _through(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Guard(NodeTransformer):
    """Route loops, ``~``, literals and compared values through the budget's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _through(node.iter, _LOOP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _through(nodes.List(node.nodes, lineno=node.lineno), _CONCAT)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _through(node.expr, _VALUE)
        for op in node.ops:
            op.expr = _through(op.expr, _VALUE)
        return node

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node  # an assignment target: {% for a, b in pairs %}
        return _through(node, _VALUE)

    visit_List = visit_Tuple = visit_Dict = _literal


# -- the environment -----------------------------------------------------------------------------

class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with :class:`Limits` on work, time and size.

    ``budget`` counts for every template this environment renders; the caller
    brackets each render with ``budget.begin()`` / ``budget.end()``.
    """

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic,
                 **options: Any):
        super().__init__(**options)
        self.budget = Budget(limits, clock)
        self.limits = limits
        budget = self.budget
        for name, func in list(self.filters.items()):
            self.filters[name] = guard_filter(name, func, budget, PRECHECKS.get(name))
        self.filters["join"] = guard_filter("join", join_filter(budget), budget, None)
        self.filters["tojson"] = guard_filter("tojson", tojson_filter(budget), budget, None)
        for name, func in list(self.tests.items()):
            self.tests[name] = guard_test(func, budget)
        self.filters[_LOOP] = pass_context(lambda _ctx, iterable: budget.loop(iterable))
        self.filters[_VALUE] = pass_context(lambda _ctx, value: budget.check(value))
        self.filters[_CONCAT] = pass_eval_context(
            lambda eval_ctx, parts: self._guarded_join(eval_ctx, parts))
        self.concat = self._guarded_concat  # type: ignore[method-assign]

    # -- compile: rewrite the tree before code generation -------------------------------------
    def compile(self, source: Any, name: str | None = None, filename: str | None = None,
                raw: bool = False, defer_init: bool = False) -> Any:
        tree = self.parse(source, name, filename) if isinstance(source, str) else source
        tree = _Guard().visit(tree)
        tree.set_environment(self)
        return super().compile(tree, name, filename, raw, defer_init)

    # -- the guards --------------------------------------------------------------------------
    def _guarded_join(self, eval_ctx: Any, parts: list[Any]) -> str:
        """``a ~ b``: measured before the text is built."""
        total = 0
        for part in parts:
            total += self.budget.measure(part)
            self.budget.need(total, "the joined text")
        self.budget.charge(1 + total // CHARS_PER_STEP)
        return markup_join(parts) if eval_ctx.autoescape else str_join(parts)

    def _guarded_concat(self, parts: Iterable[str]) -> str:
        """Macro, call and ``{% set %}`` block output: counted while it is produced."""
        total = 0
        out = []
        for part in parts:
            total += len(part)
            self.budget.need(total, "the block's text")
            out.append(part)
        self.budget.charge(total // CHARS_PER_STEP)
        return "".join(out)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        b = self.budget
        b.charge(1)
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and int_arg(times) is not None:
                    if b.measure(seq) * max(times, 0) > self.limits.max_value:
                        b.fail("the template repeats a value past the size limit "
                               f"({self.limits.max_value:,} characters)")
            if int_arg(left) is not None and int_arg(right) is not None \
                    and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                b.fail("the template computes a number past the size limit")
        elif operator == "**":
            if isinstance(left, (int, float)) and isinstance(right, (int, float)) \
                    and abs(left) > 1 \
                    and abs(right) * max(abs(left), 2).bit_length() > _MAX_POWER_BITS:
                b.fail("the template computes a number past the size limit")
        elif operator == "+":
            if (isinstance(left, (str, bytes)) and isinstance(right, (str, bytes))) or \
                    (isinstance(left, (list, tuple)) and isinstance(right, (list, tuple))):
                b.need(b.measure(left) + b.measure(right), "the result of +")
        elif operator == "%" and isinstance(left, (str, bytes)):
            percent_size(left, right, b)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, (str, bytes, list, tuple)):
            b.charge(len(result) // CHARS_PER_STEP)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        b = __self.budget
        b.charge(_MACRO_STEPS if isinstance(__obj, Macro) else _CALL_STEPS)
        if isinstance(__obj, LoopContext) and args:
            args = (b.loop(args[0]), *args[1:])  # a recursive loop's next level
        elif isinstance(__obj, (types.BuiltinMethodType, types.MethodType)):
            # (a Markup's methods are Python functions around str's: check them too)
            args = method_precheck(b, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return b.check(result, "the call's result")

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        if isinstance(argument, slice):
            self.budget.check(value, "the slice")
        return value

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # As SandboxedEnvironment.wrap_str_format, with a formatter that measures.
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) \
                or value.__name__ not in ("format", "format_map"):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter: GuardedFormatter
        if isinstance(f_self, Markup):
            formatter = GuardedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = GuardedFormatter(self)
        vformat = formatter.vformat

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            return str_type(vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

