"""What a spec's templates may cost: steps, time and sizes, counted per render and per load.

A spec may come from a pull request, so validating it must stay cheap whatever its
templates say. :class:`Budget` is the account every guard of
:mod:`~recraft_build.spec.sandbox` charges:

* **steps**: every loop iteration, call, filter, test and operator is a step or a
  few, and work proportional to a value's size (copying, comparing, printing it) is
  charged by that size (about one step per 64 characters or 4 nodes). A render may
  use :attr:`Limits.render_steps`, one renderer (one spec load)
  :attr:`Limits.total_steps` in all;
* **time**: a render that runs longer than :attr:`Limits.render_seconds` on the
  injected clock is stopped (a backstop for work the steps undercount);
* **size**: :meth:`Budget.measure` bounds the length of a value's text without
  building it (a list that repeats one long text many times is measured as printed),
  and :meth:`Budget.need` refuses a result before it is built;
* **compiling**: Jinja compiles about 12 us a token whatever the template then does,
  so the tokens compiled in one load are counted too (:attr:`Limits.template_tokens`).

A refusal is :class:`LimitExceeded` (a Jinja ``SecurityError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

__all__ = ["CHARS_PER_STEP", "NODES_PER_STEP", "Budget", "LimitExceeded", "Limits", "int_arg",
           "shallow_size"]

# Measured sizes: the printed length of a scalar that is not text.
_NUMBER_SIZE = 24
_OBJECT_SIZE = 64
#: Work charged per step: walking this many nodes of a value, or copying this many
#: characters, costs about as much as one loop iteration (~0.3 us).
NODES_PER_STEP = 4
CHARS_PER_STEP = 64
# Lists up to this long are measured in one pass when they hold no containers.
_FLAT = 16
# The clock is read after every this many steps (reading it costs about one step).
_CLOCK_EVERY = 64


@dataclass(frozen=True)
class Limits:
    """What one render, and one spec load, may cost.

    ``max_output``: characters a rendered field may have (a V4 prompt takes 10,000);
    ``max_value``: size of any value built while rendering (characters of its text);
    ``render_steps`` / ``total_steps``: work per render / per renderer (a spec load);
    ``render_seconds``: wall time per render; ``template_tokens``: Jinja tokens
    (names, operators, text runs) compiled in all, since compiling costs about 12 us
    a token whatever the template then does.
    """

    max_output: int = 100_000
    max_value: int = 1_000_000
    render_steps: int = 200_000
    total_steps: int = 10_000_000
    render_seconds: float = 2.0
    template_tokens: int = 250_000


class LimitExceeded(SecurityError):
    """A template went past one of the :class:`Limits`."""


class Budget:
    """Steps, time and sizes for one renderer's templates.

    :meth:`begin` and :meth:`end` bracket one render; outside a render (while Jinja
    folds constants at compile time) sizes are still checked but nothing is counted.
    A refusal is sticky until the render ends: a template that swallowed the
    exception (inside some filter) is still refused afterwards (:attr:`failure`).
    """

    def __init__(self, limits: Limits, clock: Callable[[], float]):
        self.limits = limits
        self._clock = clock
        self.total_left = limits.total_steps
        self.tokens_left = limits.template_tokens
        self.failure: LimitExceeded | None = None
        self._active = False
        self._left = 0
        self._started_with = 0
        self._deadline = 0.0
        self._ticks = 0
        # id -> (value, size): containers measured during this render (a template
        # cannot change a list or mapping, so a size stays right while it lives).
        self._sizes: dict[int, tuple[Any, int]] = {}

    # -- one render --------------------------------------------------------------------
    def begin(self) -> None:
        if self.total_left <= 0:
            raise LimitExceeded(f"the spec's templates together used more than "
                                f"{self.limits.total_steps:,} steps")
        self._left = self._started_with = min(self.limits.render_steps, self.total_left)
        self._deadline = self._clock() + self.limits.render_seconds
        self._ticks = 0
        self.failure = None
        self._active = True

    def end(self) -> None:
        """Close the render; raise the refusal it met, even if the template hid it."""
        self._active = False
        self.total_left -= self._started_with - self._left
        self._sizes.clear()
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure

    def compiling(self, tokens: Iterable[Any]) -> None:
        """Count the tokens of a template about to be compiled; refuse past the limit."""
        for _ in tokens:
            self.tokens_left -= 1
            if self.tokens_left < 0:
                raise LimitExceeded(f"the spec's templates are too long to compile: more than "
                                    f"{self.limits.template_tokens:,} Jinja tokens in all")

    # -- counting --------------------------------------------------------------------------
    def charge(self, steps: int = 1) -> None:
        """Count ``steps`` of work; refuse past the render's steps or time."""
        if not self._active:
            return
        if self.failure is not None:
            raise self.failure
        self._left -= steps
        if self._left < 0:
            if self._started_with < self.limits.render_steps:
                self.fail(f"the spec's templates together used more than "
                          f"{self.limits.total_steps:,} steps")
            self.fail(f"the template used more than {self.limits.render_steps:,} steps "
                      "(loops, calls and filters)")
        self._ticks += steps
        if self._ticks >= _CLOCK_EVERY:
            self._ticks = 0
            if self._clock() > self._deadline:
                self.fail(f"the template ran longer than {self.limits.render_seconds:g} s")

    def fail(self, message: str) -> None:
        """Refuse: raise :class:`LimitExceeded` (and remember it until the render ends)."""
        error = LimitExceeded(message)
        if self._active:
            self.failure = error
        raise error

    def need(self, size: int, what: str = "the result") -> None:
        """Refuse when a value of ``size`` characters would pass the size limit."""
        if size > self.limits.max_value:
            self.fail(f"{what} would pass the size limit ({self.limits.max_value:,} "
                      "characters)")

    def check(self, value: Any, what: str = "a value") -> Any:
        """Measure ``value`` (charging the work) and refuse it past the size limit."""
        size = len(value) if type(value) is str else self.measure(value)
        if size > self.limits.max_value:
            self.fail(f"{what} passes the size limit ({self.limits.max_value:,} characters)")
        self.charge(1 + size // CHARS_PER_STEP)
        return value

    def loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate ``iterable``, one step per item."""
        self.charge(1)
        for item in iterable:
            self.charge(1)
            yield item

    # -- sizes -------------------------------------------------------------------------------
    def measure(self, value: Any) -> int:
        """A bound on ``len(str(value))``, or anything past ``max_value`` when larger.

        Containers are walked without recursion (each node once per render: sizes of
        lists, tuples and mappings are remembered), so a value that shares one list
        many times is measured as printed. The walk is charged.
        """
        size = _scalar_size(value)
        if size is not None:
            return size
        cap = self.limits.max_value
        sizes = self._sizes
        known = sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if isinstance(value, (list, tuple)) and len(value) <= _FLAT:
            # Most lists a template writes are short and flat: no walk needed.
            size = 2
            for child in value:
                child_size = _scalar_size(child)
                if child_size is None:
                    break
                size += child_size + 2
            else:
                return size
        walked = 0
        on_stack = {id(value)}
        # frames: [container, iterator over children, size so far, may be memoised]
        stack: list[list[Any]] = [[value, iter(_children(value)), 2, _memoisable(value)]]
        total = 0
        try:
            while stack:
                frame = stack[-1]
                descended = False
                for child in frame[1]:
                    walked += 1
                    child_size = _scalar_size(child)
                    if child_size is None:
                        known = sizes.get(id(child))
                        if known is not None and known[0] is child:
                            child_size = known[1]
                        elif id(child) in on_stack:
                            return cap + 1  # a cycle: no finite text
                        else:
                            on_stack.add(id(child))
                            stack.append([child, iter(_children(child)), 2, _memoisable(child)])
                            descended = True
                            break
                    frame[2] += child_size + 2
                    if frame[2] > cap:
                        return cap + 1
                if descended:
                    continue
                stack.pop()
                on_stack.discard(id(frame[0]))
                if frame[3] and self._active:
                    sizes[id(frame[0])] = (frame[0], frame[2])
                if stack:
                    stack[-1][2] += frame[2] + 2
                    stack[-1][3] = stack[-1][3] and frame[3]
                    if stack[-1][2] > cap:
                        return cap + 1
                else:
                    total = frame[2]
            return total
        finally:
            self.charge(walked // NODES_PER_STEP)


def _scalar_size(value: Any) -> int | None:
    """The printed size of a value that holds no other values, else None."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray)):
        return 4 * len(value) + 3  # repr: \xNN per byte at worst
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 2
    if isinstance(value, float):
        return _NUMBER_SIZE
    if isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
        return None
    return _OBJECT_SIZE  # functions, macros, ranges, undefined: short text or none


def _children(value: Any) -> Iterable[Any]:
    if isinstance(value, Namespace):
        return object.__getattribute__(value, "_Namespace__attrs").values()
    if isinstance(value, dict):
        return (x for item in value.items() for x in item)
    return value


def _memoisable(value: Any) -> bool:
    return not isinstance(value, Namespace)  # a namespace changes with {% set ns.x %}


def shallow_size(value: Any) -> int:
    """Items in a list, tuple, mapping, set or range (0 for anything else)."""
    try:
        return len(value) if isinstance(value, (list, tuple, dict, set, frozenset, range)) else 0
    except Exception:  # noqa: BLE001 - an odd object: nothing to charge
        return 0


def int_arg(value: Any) -> int | None:
    """``value`` when it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
