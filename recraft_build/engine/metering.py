"""Metering one build's paid calls: the budget, the spend ledger and the build's totals.

Every paid provider call of a build (a generation, a provider step, a custom style's
creation) goes through :meth:`Meter.call`, which

1. reserves the price table's estimate against ``--max-credits`` (a
   :class:`~recraft_build.errors.BudgetError` before the call when it would pass it);
2. makes the call;
3. right after the provider answers, before the picture is stored, checked or used,
   appends a :class:`~recraft_build.cache.ledger.SpendEntry` to the ledger: the
   server's ``credits``, else the estimate marked ``estimated``; a re-sent request
   (``resends`` on the result) adds estimate x resends as possibly billed twice;
4. settles the reservation with that figure, so the budget holds what was really
   paid whatever happens to the picture or the asset afterwards.

A call that fails is settled by what the failure means: refused (400/401/404/422) or
out of retries on errors the server answered (429/5xx) were not billed; a lost or
unusable answer (:class:`~recraft_build.errors.AmbiguousError`,
:class:`~recraft_build.errors.BadResultError`) may have been, so it is appended as
*possibly billed* (``certain`` false) at the estimate and held against the budget.

The totals of a build (:meth:`Meter.totals`) are computed from the entries it
appended, with the same arithmetic as ``recraft-build spend``.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Mapping, TypeVar

from recraft_build.cache.ledger import Ledger, MemoryLedger, SpendEntry, SpendTotals, utc_now
from recraft_build.errors import AuthError, BudgetError, ProviderError, RequestRejected, StoreError, TransientError
from recraft_build.providers.base import Provider

__all__ = ["Meter", "MeteredProvider", "billed_anyway"]

R = TypeVar("R")


def billed_anyway(exc: ProviderError) -> bool:
    """Whether a failed paid call may still have been billed.

    Refusals (auth, 4xx) and retries run out on answered errors were not (the HTTP
    layer never resends a paid call whose fate is unknown); anything else, a lost or
    unusable answer above all, may have been.
    """
    return not isinstance(exc, (AuthError, RequestRejected, TransientError))


class Meter:
    """One build's paid calls. Thread-safe; shared by the executor's workers.

    ``budget`` has ``reserve(amount)`` and ``settle(reserved, actual, at_risk=...)``
    (:class:`~recraft_build.engine.results.Budget`); ``spec`` is the absolute path of
    the spec (written in each entry); ``warn`` gets one line if the ledger cannot be
    written (the build goes on: its pictures are paid for, and its summary still
    counts them); ``now`` gives entry times.
    """

    def __init__(
        self,
        budget: Any,
        *,
        ledger: Ledger | None = None,
        spec: str = "",
        provider: str = "",
        warn: Callable[[str], None] = lambda message: None,
        now: Callable[[], str] = utc_now,
        build_id: str | None = None,
    ):
        self.budget = budget
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.spec = spec
        self.provider = provider
        self.build_id = build_id or uuid.uuid4().hex[:16]
        self._warn = warn
        self._now = now
        self._entries: list[SpendEntry] = []
        self._by_asset: dict[str, float] = {}  # billed credits per asset (read once per asset)
        self._mutex = threading.Lock()
        self._ledger_failed = False
        self._current = threading.local()  # the paid call this thread is in

    def call(
        self,
        make: Callable[[], R],
        *,
        asset: str | None,
        operation: str,
        estimate: float,
        key: str | None,
        model: str | None = None,
        pictures: int = 1,
        style: str | None = None,
    ) -> tuple[R, float]:
        """Make one paid call (``make()``) under the budget; return its result and the
        credits it cost (reported, else ``estimate``). See the module docstring."""
        self.budget.reserve(estimate)
        self._current.estimate, self._current.extra = estimate, 0
        try:
            result = make()
        except ProviderError as exc:
            held = estimate * (1 + self._current.extra)
            # A failed call's resends (each sent after a lost answer) may have been billed too.
            resends = max(0, int(getattr(exc, "resends", 0) or 0))
            if billed_anyway(exc) or resends:
                self._append(asset, operation, model, estimate, True, key, pictures, style, certain=False,
                             resends=resends, at_risk=estimate * resends)
                self.budget.settle(held, 0.0, at_risk=estimate * (1 + resends))
            else:
                self.budget.settle(held, 0.0)
            raise
        except BaseException:
            # A bug, or an interrupt, inside the call: what it cost is unknown; hold
            # the estimate against the budget (nothing to append: no answer came).
            self.budget.settle(estimate * (1 + self._current.extra), 0.0, at_risk=estimate)
            raise
        finally:
            extra = self._current.extra
            self._current.estimate = None
        reported = getattr(result, "credits", None)
        credits = float(reported) if reported is not None else float(estimate)
        resends = max(0, int(getattr(result, "resends", 0) or 0))
        meta = getattr(result, "meta", None)
        if isinstance(meta, Mapping) and isinstance(meta.get("model"), str):
            model = meta["model"]  # what really ran (a Replicate model, say)
        self._append(
            asset, operation, model, credits, reported is None, key, pictures, style,
            resends=resends, at_risk=estimate * resends,
        )
        self.budget.settle(estimate * (1 + extra), credits, at_risk=estimate * resends)
        return result, credits

    def permit_resend(self) -> bool:
        """Whether this thread's paid call may be sent again after a lost answer: one
        more estimate is held against the budget, or False when it has no room."""
        estimate = getattr(self._current, "estimate", None)
        if estimate is None:
            return True
        try:
            self.budget.reserve(estimate)
        except BudgetError:
            return False
        self._current.extra += 1
        return True

    def _append(
        self,
        asset: str | None,
        operation: str,
        model: str | None,
        credits: float,
        estimated: bool,
        key: str | None,
        pictures: int,
        style: str | None,
        *,
        certain: bool = True,
        resends: int = 0,
        at_risk: float = 0.0,
    ) -> None:
        entry = SpendEntry(
            time=self._now(), spec=self.spec, asset=asset, operation=operation, provider=self.provider,
            model=model, credits=float(credits), estimated=estimated, key=key, build=self.build_id,
            certain=certain, resends=resends, at_risk=float(at_risk), pictures=max(1, pictures), style=style,
        )
        with self._mutex:
            self._entries.append(entry)
            if certain and asset is not None:
                self._by_asset[asset] = self._by_asset.get(asset, 0.0) + entry.credits
        try:
            self.ledger.append(entry)
        except StoreError as exc:
            with self._mutex:
                first, self._ledger_failed = not self._ledger_failed, True
            if first:
                self._warn(f"{exc}; this build's summary still counts every call, but `recraft-build spend` will not")

    # -- this build's figures ------------------------------------------------------
    def entries(self) -> list[SpendEntry]:
        """What this build appended, in order."""
        with self._mutex:
            return list(self._entries)

    def totals(self) -> SpendTotals:
        """This build's sums (the same arithmetic as ``recraft-build spend``)."""
        return SpendTotals.of(self.entries())

    def credits_for(self, asset: str) -> float:
        """Credits billed (for certain) for ``asset`` in this build."""
        with self._mutex:
            return self._by_asset.get(asset, 0.0)


class MeteredProvider:
    """A provider whose ``transform`` goes through a :class:`Meter`: given to the step
    runner, so a provider step's call is appended before the step's own checks run.

    ``key`` is the step's cache key, ``estimate(operation)`` its price. ``credits``
    holds what the last call cost (0 when none was made). Everything else is the
    wrapped provider's.
    """

    def __init__(
        self, provider: Provider, meter: Meter, *, key: str | None, estimate: Callable[[str], float]
    ):
        self._provider = provider
        self._meter = meter
        self._key = key
        self._estimate = estimate
        self.credits = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def supports(self, operation: str) -> bool:
        return self._provider.supports(operation)

    def transform(self, operation: str, picture: Any, params: Mapping[str, Any], *, asset: str) -> Any:
        result, self.credits = self._meter.call(
            lambda: self._provider.transform(operation, picture, params, asset=asset),
            asset=asset,
            operation=operation,
            estimate=float(self._estimate(operation)),
            key=self._key,
        )
        return result
