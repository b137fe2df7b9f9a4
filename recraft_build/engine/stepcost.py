"""What a plan's provider steps cost: each step that will run counted once.

Split from :mod:`recraft_build.engine.plan` (which calls :func:`steps_cost` for every
asset it plans); pure, like the planner: it reads cache records through the plan's
read-only lookups and marks the :class:`~recraft_build.engine.plan.StepPlan` objects
it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from recraft_build.engine import keys

if TYPE_CHECKING:
    from recraft_build.engine.plan import PlanInputs, StepPlan

__all__ = ["step_cached", "steps_cost"]


def steps_cost(
    root: Any, asset_steps: Sequence[StepPlan], output_chains: Sequence[Sequence[StepPlan]],
    inputs: PlanInputs, price: Callable[[str], float], seen: set[Any],
) -> float:
    """What the provider steps the executor will run cost, each shared step once.

    The executor walks the asset's chain, then each output's chain that must be
    written; a step is free when a record of its key with its output blob is in the
    cache, otherwise it runs. A step whose input is not known yet (a new picture) is
    identified by its place in the chain (its input's identity, its name and
    parameters), so outputs sharing a step, or scales of one output, count it once.
    Once a provider step runs again, what follows it gets a new input: it runs too.
    Steps found to run are marked so (``status``, ``credits``), as ``plan`` shows them.
    """
    total = 0.0

    def walk(steps: Sequence[StepPlan], ident: Any, fresh: bool) -> tuple[Any, bool]:
        nonlocal total
        for s in steps:
            runs = fresh or s.status == "run" or (s.operation is not None and not step_cached(s, inputs))
            if s.key is not None and not fresh:
                ident = s.key
            else:
                ident = (ident, s.name, keys.canonical_json(s.params))
            if runs and s.status != "run":
                s.status, s.digest = "run", None
                s.credits = float(price(s.operation)) if s.operation else 0.0
            if runs and s.operation is not None:
                fresh = True  # a provider's new result: every later key changes
                if ident not in seen:
                    seen.add(ident)
                    total += s.credits
                else:
                    s.shared, s.credits = True, 0.0
        return ident, fresh

    ident, fresh = walk(asset_steps, root, False)
    for chain in output_chains:
        walk(chain, ident, fresh)
    return total


def step_cached(s: StepPlan, inputs: PlanInputs) -> bool:
    """Whether the executor will find step ``s`` in the cache (its record and blob)."""
    rec = inputs.records.step(s.key)
    return rec is not None and inputs.blob_present(rec.output.sha256)
