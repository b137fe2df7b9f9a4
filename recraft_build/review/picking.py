"""Choosing among an asset's candidates: ``pick`` (free) and ``reroll`` (paid).

An asset with ``n: K`` has K candidate pictures, all kept in the store and listed in
the lock's ``generation.candidates``; ``generation.pick`` (0-based, 0 by default)
says which one the outputs are made from.

* :func:`pick` records another pick and rebuilds that asset's outputs from the store.
  It never pays for a generation: it checks first (a dry plan with the pick applied in
  memory) that the candidates are cached and that no paid step would run, and only
  then writes the lock and builds with ``frozen=True``. A paid provider step (say a
  ``remove_background`` the provider runs) is allowed only up to ``max_credits``
  (default 0: refused, the lock untouched, the message says how much it needs).
* :func:`reroll` asks the provider for a fresh candidate set of the same request: it
  bumps ``generation.roll`` (which is part of the generation key, see ``keys``), so the
  old candidates stay in the store (until ``cache gc``) and in git history, and the
  new set is a new cache entry. **It pays** (``n`` pictures at the model's price);
  ``max_credits`` caps it, checked before the lock changes.
  The old candidates are not copied into the lock entry: the lock stays the record of
  what is used now, ``git diff``/``recraft-build diff`` show the change, and the
  gallery shows the previous pick from git beside the new candidates. To go back,
  restore the lock from git and build: the old candidates come from the cache, free.

Both write the lock only through :meth:`Lock.update`, which merges under a
cross-process file lock, so a pick made while a build runs loses neither.
A pick or reroll that fails before its build starts leaves the lock as it was; a
reroll whose build fails puts the old roll back (what was paid for is cached under
the new key, so retrying the reroll costs nothing more).
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Callable, Mapping

from recraft_build import api
from recraft_build.domain import Spec
from recraft_build.engine.executor import BuildResult, NullReporter, Reporter
from recraft_build.engine.lock import Lock
from recraft_build.engine.lockdata import LockedGeneration
from recraft_build.engine.plan import AssetPlan
from recraft_build.errors import BudgetError, PlanError, UsageError
from recraft_build.settings import Settings

__all__ = ["exact_target", "pick", "reroll"]

Edit = Callable[[LockedGeneration], LockedGeneration]


def exact_target(name: str) -> str:
    """A build target that matches exactly the asset ``name`` (targets are globs, and a
    name may contain ``*``, ``?`` or ``[``)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _find_asset(spec: Spec, name: str) -> None:
    names = [a.name for a in spec.assets]
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "run `recraft-build plan` to list assets"
    raise UsageError(f"no asset named {name!r} in {spec.path} ({hint})")


def _not_a_file_asset(spec: Spec, name: str, action: str) -> None:
    """A file asset's picture is its file: there is nothing to pick among or re-roll."""
    asset = next(a for a in spec.assets if a.name == name)
    if asset.from_file:
        raise UsageError(
            f"asset {name!r} is the picture file {asset.image.file if asset.image else '?'}: there are no "
            f"candidates to {action} (replace the file to change it)"
        )


def _locked_generation(spec: Spec, name: str, action: str) -> LockedGeneration:
    entry = Lock.load(spec.lock_path).asset(name)
    if entry is None or not entry.generation.candidates:
        raise UsageError(
            f"asset {name!r} has not been built yet, so it has no candidates to {action} "
            f"(run `recraft-build build {name}` first)"
        )
    return entry.generation


def _preview(spec_path: Any, name: str, edit: Edit, settings: Settings, reporter: Reporter) -> tuple[AssetPlan, Any]:
    """The plan of asset ``name`` as if ``edit`` had been applied to its generation
    entry, computed without writing anything (the lock is edited in memory only); and
    the active provider's info."""
    with api.open_session(spec_path, settings, reporter) as session:
        entry = session.lock.asset(name)
        if entry is not None:
            session.lock.set_asset(name, entry.with_generation(edit(entry.generation)))
        plan = session.plan([exact_target(name)])
        return plan.assets[0], session.provider


def _record(spec: Spec, name: str, expect_key: Any, edit: Edit) -> None:
    """Apply ``edit`` to the lock's generation entry of ``name`` through Lock.update,
    provided it still holds key ``expect_key`` (a build may have replaced it meanwhile)."""

    def change(lock: Lock) -> None:
        entry = lock.asset(name)
        if entry is None or entry.generation.key != expect_key:
            raise UsageError(
                f"asset {name!r} was rebuilt by another recraft-build while this command ran; "
                "nothing was changed (look at it again, then retry)"
            )
        lock.set_asset(name, entry.with_generation(edit(entry.generation)))

    Lock.update(spec.lock_path, change)


def pick(
    spec_path: str | os.PathLike[str] | None,
    asset: str,
    index: int,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    provider: str = "auto",
    max_credits: float = 0.0,
    client: Any = None,
) -> BuildResult:
    """``recraft-build pick ASSET INDEX``: use candidate ``index`` (0-based) of ``asset``.

    Records the pick in the lock, then rebuilds the asset's outputs from the store.
    Raises UsageError for an unknown asset (with suggestions), an asset never built, or
    an index out of range (naming the range); PlanError when the asset changed since
    its last build (build it first), its candidates are not in the cache, or the
    rebuild needs paid provider steps costing more than ``max_credits``. In those cases
    the lock is not changed. Returns the rebuild's result (an asset failing there is in
    ``result.failed``; the pick stays recorded and a later build finishes it).
    """
    reporter = reporter or NullReporter()
    settings = Settings(provider=provider, cache_dir=cache_dir, output_dir=output_dir, env=env)
    spec = api.load(spec_path)
    _find_asset(spec, asset)
    _not_a_file_asset(spec, asset, "pick from")
    gen = _locked_generation(spec, asset, "pick from")
    count = len(gen.candidates)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        choices = "0" if count == 1 else f"0 to {count - 1}"
        raise UsageError(f"asset {asset!r} has {count} candidate(s): INDEX must be {choices}, not {index!r}")
    key = gen.key

    def set_pick(g: LockedGeneration) -> LockedGeneration:
        return g.replace(pick=index)

    ap, active = _preview(spec_path, asset, set_pick, settings, reporter)
    if ap.gen_key != key:
        why = "; ".join(ap.reasons) or "its request changed"
        raise PlanError(
            f"asset {asset!r} changed since its last build ({why}): its candidates are for the old "
            f"request, so picking among them would not last (run `recraft-build build {asset}` to "
            "make candidates for the spec as it is, then pick)"
        )
    if ap.status == "generate":
        raise PlanError(
            f"candidate {index} of asset {asset!r} is not in the cache ({'; '.join(ap.reasons)}), so "
            "picking it would need a new paid generation; nothing was changed (restore the cache, "
            "e.g. from the remote cache, then pick again)"
        )
    if ap.credits > 0 and ap.family != active.family:
        raise PlanError(
            f"picking candidate {index} of asset {asset!r} needs provider steps, and its pictures were "
            f"made by {ap.family} while the active provider is {active.name}; nothing was changed "
            f"(set the token of a {ap.family} provider, or restore the cache with those steps' results)"
        )
    if ap.credits > max_credits:
        raise PlanError(
            f"picking candidate {index} of asset {asset!r} needs provider steps that cost about "
            f"{ap.credits:g} credits; nothing was changed (pass --max-credits {ap.credits:g} to allow it)"
        )

    previous = gen.pick
    _record(spec, asset, key, set_pick)
    try:
        return api.build(
            spec_path,
            [exact_target(asset)],
            output_dir=output_dir,
            cache_dir=cache_dir,
            provider=provider,
            jobs=1,
            # frozen refuses any paid work outright; with a credit allowance, the
            # budget is the guard (the dry plan above already ruled out a generation).
            frozen=max_credits <= 0,
            max_credits=max_credits if max_credits > 0 else None,
            env=env,
            client=client,
            reporter=reporter,
        )
    except PlanError:
        # The cache changed between the dry plan and the build: undo, as promised.
        _undo(spec, asset, key, lambda g: g.replace(pick=previous))
        raise


def _undo(spec: Spec, name: str, key: Any, edit: Edit) -> None:
    try:
        _record(spec, name, key, edit)
    except UsageError:
        pass  # another build rewrote the entry: its version wins, nothing of ours to undo


def reroll(
    spec_path: str | os.PathLike[str] | None,
    asset: str,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    provider: str = "auto",
    max_credits: float | None = None,
    client: Any = None,
) -> BuildResult:
    """``recraft-build reroll ASSET``: a new candidate set for ``asset`` (paid).

    Bumps the roll in the lock and builds the asset, which generates ``n`` new
    pictures (the outputs use the new candidate 0). Raises UsageError for an unknown or
    never-built asset, BudgetError (lock untouched) when the estimate exceeds
    ``max_credits``. If the build fails or is interrupted the old roll is put back
    (pictures already paid for are cached under the new key: a retry reuses them).
    """
    reporter = reporter or NullReporter()
    settings = Settings(provider=provider, cache_dir=cache_dir, output_dir=output_dir, env=env)
    spec = api.load(spec_path)
    _find_asset(spec, asset)
    _not_a_file_asset(spec, asset, "reroll")
    gen = _locked_generation(spec, asset, "reroll")
    key = gen.key
    old_roll = gen.roll

    def bump(g: LockedGeneration) -> LockedGeneration:
        return g.replace(roll=old_roll + 1)

    def restore(g: LockedGeneration) -> LockedGeneration:
        return g.replace(roll=old_roll)

    ap, _active = _preview(spec_path, asset, bump, settings, reporter)
    if max_credits is not None and ap.credits > max_credits:
        raise BudgetError(ap.credits, max_credits)
    _record(spec, asset, key, bump)
    ok = False
    try:
        result = api.build(
            spec_path,
            [exact_target(asset)],
            output_dir=output_dir,
            cache_dir=cache_dir,
            provider=provider,
            jobs=1,
            max_credits=max_credits,
            env=env,
            client=client,
            reporter=reporter,
        )
        ok = not result.failed
        return result
    finally:
        if not ok:
            # The executor writes the entry only when the asset finished; if it did
            # not, the entry still holds the old key and our bump: take it back.
            _undo(spec, asset, key, restore)
