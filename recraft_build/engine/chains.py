"""Scheduling a build along the asset graph: children after their parents.

The executor starts every asset that waits for nothing at once (``-j`` workers, so
independent branches run in parallel). An asset made from another asset that this
build also builds waits until that one has finished; then it is planned again from
the parent's picked picture as the lock now records it (:meth:`Plan.resolve`, when the
plan could not know it, or the parent's picture changed while building), and
started, or finished at once when the new plan says it is up to date. A parent that
failed (or was skipped) skips its children, which would otherwise be made from a
picture nobody approved.
"""

from __future__ import annotations

from typing import Callable

from recraft_build.engine.lock import Lock
from recraft_build.engine.plan import AssetPlan, Plan
from recraft_build.engine.results import AssetResult, Reporter
from recraft_build.errors import RecraftBuildError

__all__ = ["ChainScheduler"]


class ChainScheduler:
    """Which assets of a build wait for others, and what to do when one finishes.

    Made with the executor's list of assets to build, it takes out of that list the
    assets that must wait (so the executor starts only the others), and hands them back
    through :meth:`release`. Used from the executor's main thread only (not thread-safe,
    and needs not be).
    """

    def __init__(self, plan: Plan, todo: list[AssetPlan], lock: Lock):
        self.plan = plan
        self.lock = lock
        building = {ap.name for ap in todo}
        self._waiting: dict[str, AssetPlan] = {}
        self._blockers: dict[str, set[str]] = {}
        self._children: dict[str, list[str]] = {}
        for ap in todo:
            parents = [p for p in ap.asset.parents() if p in building]
            if parents:
                self._waiting[ap.name] = ap
                self._blockers[ap.name] = set(parents)
                for p in parents:
                    self._children.setdefault(p, []).append(ap.name)
        todo[:] = [ap for ap in todo if ap.name not in self._waiting]

    def release(self, finished: AssetResult, results: dict[str, AssetResult], reporter: Reporter,
                start: Callable[[AssetPlan], None]) -> None:
        """Act on what ``finished`` unblocks: ``start`` each asset now ready, and record
        (in ``results``, and to ``reporter``) each one done without running (up to date
        after all, or skipped because a parent failed), which releases its own children."""
        for ready in self._unblocked(finished):
            if isinstance(ready, AssetResult):
                results[ready.name] = ready
                reporter.asset_finished(ready)
            else:
                start(ready)

    def _unblocked(self, finished: AssetResult) -> list[AssetResult | AssetPlan]:
        out: list[AssetResult | AssetPlan] = []
        queue = [finished]
        while queue:
            done = queue.pop(0)
            for name in self._children.get(done.name, ()):
                ap = self._waiting.get(name)
                if ap is None:
                    continue
                if done.status in ("failed", "skipped"):
                    del self._waiting[name]
                    res = AssetResult(
                        name, "skipped",
                        error=f"not built: it is made from {done.name!r}, which was not built",
                    )
                    out.append(res)
                    queue.append(res)
                    continue
                self._blockers[name].discard(done.name)
                if self._blockers[name]:
                    continue
                del self._waiting[name]
                ready = self._ready(ap)
                out.append(ready)
                if isinstance(ready, AssetResult):
                    queue.append(ready)
        return out

    def unfinished(self, results: dict[str, AssetResult]) -> None:
        """Record the assets still waiting when the build stops (interrupted, an earlier
        failure stopped it, or what they are made from was never started): not built."""
        for name in self._waiting:
            results.setdefault(name, AssetResult(
                name, "skipped", error="not built: the build stopped before the assets it is made from"))
        self._waiting.clear()

    def _ready(self, ap: AssetPlan) -> AssetResult | AssetPlan:
        """``ap`` with its inputs as the lock now has them."""
        picked: dict[str, str] = {}
        for parent in ap.asset.parents():
            entry = self.lock.asset(parent)
            chosen = entry.generation.picked if entry is not None else None
            if chosen is None:
                return AssetResult(ap.name, "failed", error=f"asset {ap.name!r}: {parent!r} has no picked picture")
            picked[parent] = chosen.sha256
        req = ap.asset.request
        planned = {i.asset: d for i, d in ((ap.asset.image, req.image), (ap.asset.mask, req.mask))
                   if i is not None and i.asset is not None}
        if ap.after or any(planned.get(p) != d for p, d in picked.items()):
            try:
                ap = self.plan.resolve(ap, picked)
            except RecraftBuildError as exc:  # e.g. a step its new picture cannot take
                return AssetResult(ap.name, "failed", error=f"asset {ap.name!r}: {exc}", reasons=ap.reasons)
        if ap.status == "up-to-date":
            return AssetResult(ap.name, "up-to-date", outputs=[f for o in ap.outputs for f in o.locked_files])
        if ap.missing_input is not None or ap.pinned_missing:
            why = "; ".join(ap.reasons[-1:])
            return AssetResult(ap.name, "failed", error=f"asset {ap.name!r}: {why}", reasons=ap.reasons)
        return ap
