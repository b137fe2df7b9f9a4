"""The meter: each paid call appended once it is answered, the budget settled with the truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from recraft_build.cache.ledger import MemoryLedger
from recraft_build.domain import Picture
from recraft_build.engine.metering import Meter, MeteredProvider, billed_anyway
from recraft_build.engine.results import Budget
from recraft_build.errors import (
    AmbiguousError,
    AuthError,
    BadResultError,
    BudgetError,
    ProviderError,
    RequestRejected,
    StoreError,
    TransientError,
)

from engine_fakes import CountingProvider


@dataclass
class Answer:
    """A provider result as the meter reads it (``resends`` as the providers will add it)."""

    credits: float | None = None
    resends: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def meter(limit=None, ledger=None, **kw):
    return Meter(Budget(limit), ledger=ledger or MemoryLedger(), spec="/p/assets.yaml", provider="recraft",
                 now=lambda: "2025-07-30T10:00:00Z", **kw)


def test_reported_credits_are_exact_and_missing_ones_estimated():
    m = meter()
    _, c1 = m.call(lambda: Answer(credits=80), asset="a", operation="generate", estimate=40, key="k1",
                   model="recraftv3", pictures=2)
    _, c2 = m.call(lambda: Answer(meta={"model": "recraft-ai/recraft-v3"}), asset="b", operation="generate",
                   estimate=40, key="k2", model="recraftv3")
    assert (c1, c2) == (80, 40)
    first, second = m.entries()
    assert (first.credits, first.estimated, first.pictures, first.model) == (80, False, 2, "recraftv3")
    assert (second.credits, second.estimated, second.model) == (40, True, "recraft-ai/recraft-v3")
    assert {e.spec for e in m.entries()} == {"/p/assets.yaml"}
    assert list(m.ledger.entries()) == m.entries()
    assert m.budget.spent == 120 and m.totals().credits == 120
    assert m.credits_for("a") == 80


def test_a_resent_request_is_possibly_billed_twice_and_held_against_the_budget():
    m = meter(limit=100)
    m.call(lambda: Answer(credits=40, resends=1), asset="a", operation="generate", estimate=40, key="k")
    t = m.totals()
    assert (t.credits, t.possibly_billed_twice_calls, t.possibly_billed_twice_credits) == (40, 1, 40)
    # 40 spent + 40 at risk: a third 40 would pass 100.
    with pytest.raises(BudgetError):
        m.call(lambda: Answer(credits=40), asset="b", operation="generate", estimate=40, key="k2")


@pytest.mark.parametrize("exc", [RequestRejected("422"), AuthError("401"), TransientError("503 x5")])
def test_refused_calls_were_not_billed(exc):
    m = meter(limit=100)
    with pytest.raises(ProviderError):
        m.call(lambda: (_ for _ in ()).throw(exc), asset="a", operation="generate", estimate=40, key="k")
    assert m.entries() == [] and m.budget.spent == 0 and m.budget.at_risk == 0
    assert not billed_anyway(exc)


@pytest.mark.parametrize("exc", [AmbiguousError("dropped"), BadResultError("download 404")])
def test_lost_or_unusable_answers_are_possibly_billed(exc):
    m = meter(limit=100)
    with pytest.raises(ProviderError):
        m.call(lambda: (_ for _ in ()).throw(exc), asset="a", operation="generate", estimate=40, key="k")
    (e,) = m.entries()
    assert (e.certain, e.credits, e.estimated) == (False, 40, True)
    t = m.totals()
    assert (t.credits, t.possibly_billed_calls, t.possibly_billed_credits) == (0, 1, 40)
    assert m.budget.at_risk == 40  # counted against --max-credits


def test_the_budget_refuses_before_the_call():
    m = meter(limit=30)
    calls = []
    with pytest.raises(BudgetError):
        m.call(lambda: calls.append(1), asset="a", operation="generate", estimate=40, key="k")
    assert calls == [] and m.entries() == []


class BrokenLedger:
    def append(self, entry):
        raise StoreError("cannot append to the spend ledger /x: disk full")

    def entries(self):
        return iter(())


def test_a_ledger_that_cannot_be_written_warns_once_and_the_build_still_counts():
    warnings: list[str] = []
    m = meter(ledger=BrokenLedger(), warn=warnings.append)
    for key in ("k1", "k2"):
        m.call(lambda: Answer(credits=40), asset="a", operation="generate", estimate=40, key=key)
    assert len(warnings) == 1 and "disk full" in warnings[0]
    assert m.totals().credits == 80


def test_a_metered_provider_appends_the_tool_call_before_returning():
    m = meter()
    inner = CountingProvider()
    wrapped = MeteredProvider(inner, m, key="step-key", estimate=lambda op: 10.0)
    assert wrapped.supports("remove_background") and wrapped.name == "fake"
    seen_before_return = []

    class Spy(CountingProvider):
        def transform(self, operation, picture, params, *, asset):
            res = super().transform(operation, picture, params, asset=asset)
            seen_before_return.append(len(m.entries()))
            return res

    wrapped = MeteredProvider(Spy(), m, key="step-key", estimate=lambda op: 10.0)
    wrapped.transform("remove_background", Picture(b"x", "image/png"), {}, asset="a")
    assert seen_before_return == [0]  # appended after the answer...
    (e,) = m.entries()  # ...and before the caller gets the picture
    assert (e.operation, e.key, e.credits, e.asset) == ("remove_background", "step-key", 10, "a")
    assert wrapped.credits == 10
