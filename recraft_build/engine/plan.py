"""Planning: from a spec, the lock and what the cache holds, decide what each asset needs.

:func:`make_plan` is pure: it reads its arguments (the cache and the output tree are
passed in as read-only lookups) and returns a :class:`Plan`; it makes no network call
and writes nothing. The executor then carries the plan out.

For each asset the plan says one of:

* ``up-to-date``: its keys match the lock and its files are there with the locked digests.
* ``restore``: its picture is known (pinned in the lock or recorded in the cache) and
  reachable in the cache, so outputs are rebuilt or re-written without a paid generation
  (provider-backed steps may still cost; the plan prices them).
* ``generate``: a new picture must be made (and, with a real provider, paid for).

Every decision carries human reasons (``status`` and ``plan`` show them).
Assets made from other assets' pictures are planned along the asset graph, parents
first; :mod:`recraft_build.engine.graphplan` says how.
"""

from __future__ import annotations

import itertools

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from recraft_build.cache.records import Candidate, ExportRecord, GenerationRecord, StepRecord
from recraft_build.engine import keys
from recraft_build.engine.inputs import SourcePicture
from recraft_build.engine.lockdata import LockedAsset, LockedFile, LockedOutput, LockedStep
from recraft_build.engine.stepcost import steps_cost
from recraft_build.domain import Asset, OutputSpec, Spec
from recraft_build.errors import PlanError
from recraft_build.providers.base import OPERATIONS
from recraft_build.providers.capabilities import ProviderInfo
from recraft_build.steps.catalog import STEPS, EngineChoiceError, choose_engine

__all__ = [
    "AssetPlan",
    "PlanInputs",
    "OutputPlan",
    "Plan",
    "ProviderInfo",
    "StepPlan",
    "make_plan",
    "resolve_engine",
]

def resolve_engine(
    name: str, params: Mapping[str, Any], provider: ProviderInfo, *, where: str = ""
) -> tuple[dict[str, Any], str | None]:
    """``params`` with ``engine`` resolved (``catalog.choose_engine``, the one decision),
    and the provider operation when the provider runs it. PlanError when impossible."""
    out = dict(params)
    if name not in STEPS:  # export / favicon: never a provider operation
        return out, None
    try:
        engine, op = choose_engine(name, params, provider)
    except EngineChoiceError as exc:
        raise PlanError(f"{where}{exc}") from exc
    out["engine"] = engine
    return out, op


@dataclass
class StepPlan:
    """One step of a chain. ``key`` is None while its input is not known yet."""

    name: str
    params: dict[str, Any]
    version: int
    operation: str | None  # provider operation when the provider runs it
    key: str | None = None
    digest: str | None = None  # its output's sha256, when known (lock or cache)
    status: str = "run"  # "cached" | "run"
    credits: float = 0.0
    pinned: str | None = None  # the sha256 the lock pins for this very key (the authority)
    shared: bool = False  # the same paid step as one counted before (paid once, there)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "params": self.params,
            "key": self.key,
            "status": self.status,
            "credits": self.credits,
            "shared": self.shared,
        }


@dataclass
class OutputPlan:
    spec: OutputSpec
    steps: list[StepPlan]
    final: StepPlan  # the export (or favicon set)
    status: str = "write"  # "up-to-date" | "write"
    reason: str = ""
    locked_files: tuple[LockedFile, ...] = ()
    locked_key: str | None = None  # the key of the export the lock pins for this output


@dataclass
class AssetPlan:
    asset: Asset
    status: str  # "generate" | "restore" | "up-to-date"
    reasons: list[str]
    gen_key: str
    family: str
    style_key: str | None
    roll: int
    candidates: tuple[Candidate, ...] | None  # known candidates (lock or cache record)
    pick: int
    steps: list[StepPlan]
    outputs: list[OutputPlan]
    credits: float = 0.0  # estimated cost of what this plan will pay for
    # The lock pins this asset's request, but its approved picture is in no cache: a
    # build refuses rather than repaint it (PinnedPictureMissing).
    pinned_missing: bool = False
    # Its generation key is the one the lock pins: the lock's pictures are the authority.
    pinned: bool = False
    # Who made the candidates and what they cost, when they come from a cache record.
    bought_from: str | None = None
    bought_credits: float | None = None
    # ``status``: why the lock's pictures are not what its generation key made (a hand edit).
    hand_edited: str = ""
    # Made from assets this build generates first: its key (``gen_key`` "") is known once
    # they are picked, when the executor re-plans it (Plan.resolve, from ``entry``).
    after: tuple[str, ...] = ()
    # To generate, but its input (asset, sha256 the lock pins) is in no cache: refused.
    missing_input: tuple[str, str] | None = None
    entry: LockedAsset | None = field(default=None, repr=False)
    forced: bool = False

    @property
    def name(self) -> str:
        return self.asset.name

    @property
    def picked(self) -> str | None:
        """The sha256 of the picture its outputs (and the assets made from it) will use,
        when known now: None when this build generates it."""
        if self.status == "generate" or not self.candidates or self.after:
            return None
        return self.candidates[self.pick].sha256

    def to_json(self) -> dict[str, Any]:
        req = self.asset.request
        return {
            "name": self.asset.name,
            "status": self.status,
            "reasons": self.reasons,
            "key": self.gen_key or None,  # None: known once the assets it is made from are picked
            "model": req.model,
            "style": req.style_ref or req.style,
            "substyle": req.substyle,
            "size": req.size or req.aspect_ratio,
            "n": req.n,
            "prompt": req.prompt,
            "operation": req.operation,
            "inputs": {k: ({"asset": v.asset} if v.asset is not None else {"file": v.file})
                       for k, v in (("image", self.asset.image), ("mask", self.asset.mask)) if v is not None} or None,
            "after": list(self.after) or None,
            "credits": self.credits,
            "pinned_missing": self.pinned_missing,
            "hand_edited": self.hand_edited or None,
            "steps": [s.to_json() for s in self.steps],
            "outputs": [
                {
                    "path": o.spec.path,
                    "status": o.status,
                    "key": o.final.key,
                    "steps": [s.to_json() for s in o.steps],
                }
                for o in self.outputs
            ],
        }


@dataclass
class Plan:
    """What a build will do, asset by asset, in build order (parents first)."""

    spec: Spec
    provider: ProviderInfo
    assets: list[AssetPlan]
    # Custom styles the build will create (name -> estimated credits): needed by an
    # asset to generate, and neither pinned by the lock nor recorded in the cache.
    styles: dict[str, float] = field(default_factory=dict)
    # Each atlas's state (``engine.atlas.AtlasResult``), filled in by the session.
    atlases: list[Any] = field(default_factory=list)
    inputs: "PlanInputs | None" = field(default=None, repr=False)

    def resolve(self, ap: AssetPlan, picked: Mapping[str, str]) -> AssetPlan:
        """``ap`` planned again once the assets it is made from are picked (``picked``:
        name -> sha256 of the picked picture, as the lock now says)."""
        from recraft_build.engine.graphplan import plan_one

        assert self.inputs is not None, "a plan made by make_plan"
        return plan_one(ap.asset, ap.entry, self.inputs, picked.get, force=ap.forced)

    @property
    def credits(self) -> float:
        """The estimate of everything the build pays for: generations, provider steps
        (each shared step once), custom styles."""
        return sum(a.credits for a in self.assets) + sum(self.styles.values())

    def real_estimate(self) -> float | None:
        """With a free provider active (the placeholder), what the same work would cost
        with a real one, at Recraft's prices: the generations, the provider steps that
        run (each shared step once, as :attr:`credits` counts them) and the custom
        styles to create. None with a paid provider (:attr:`credits` is the figure)."""
        if self.provider.paid:
            return None
        from recraft_build.engine.pricing import Pricing

        pricing = Pricing(self.spec.styles, "recraft")
        total = sum(pricing.generation(a.asset.request) for a in self.assets if a.status == "generate")
        for a in self.assets:
            for sp in itertools.chain(a.steps, *(o.steps for o in a.outputs)):
                if sp.operation is not None and sp.status == "run" and not sp.shared:
                    total += pricing.operation(sp.operation)
        return total + len(self.styles) * pricing.operation("create_style")

    def counts(self) -> dict[str, int]:
        out = {"generate": 0, "restore": 0, "up-to-date": 0}
        for a in self.assets:
            out[a.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "spec": str(self.spec.path),
            "provider": self.provider.name,
            "family": self.provider.family,
            "assets": [a.to_json() for a in self.assets],
            "summary": {
                "generate": counts["generate"],
                "restore": counts["restore"],
                "up_to_date": counts["up-to-date"],
                "credits": self.credits,
                "usd": round(self.credits / 1000, 4),
                "styles_to_create": dict(self.styles),
                "real_provider_credits": self.real_estimate(),
            },
            "atlases": [a.to_json() for a in self.atlases],
        }


def _export_step(spec: OutputSpec) -> tuple[str, dict[str, Any]]:
    if spec.favicon:
        return "favicon", dict(spec.options)
    return "export", {"format": spec.format, **dict(spec.options)}


class _Chain:
    """Walks a chain of steps, computing keys as far as input digests are known."""

    def __init__(self, provider: ProviderInfo, inputs: "PlanInputs", where: str):
        self.provider = provider
        self.versions = inputs.step_versions
        self.records = inputs.records
        self.pricing = inputs.pricing.for_family(provider.family)
        self.where = where

    def step(
        self,
        name: str,
        params: Mapping[str, Any],
        input_digest: str | None,
        locked: LockedStep | LockedOutput | None,
    ) -> StepPlan:
        resolved, op = resolve_engine(name, params, self.provider, where=self.where)
        # A provider-run step is the provider's code, not ours: bumping the local
        # implementation's version must not re-run (and re-pay) it. It stays at 1.
        version = self.versions.get(name, 1) if op is None else 1
        sp = StepPlan(name=name, params=resolved, version=version, operation=op)
        if op is not None and self.provider.paid:
            sp.credits = float(self.pricing.operation(op))
        if input_digest is None:
            return sp
        sp.key = keys.step_key(
            name, resolved, version, input_digest, family=self.provider.family if op else None
        )
        if isinstance(locked, LockedStep) and locked.key == sp.key:
            sp.digest, sp.status, sp.pinned = locked.sha256, "cached", locked.sha256
        elif isinstance(locked, LockedOutput) and locked.key == sp.key:
            # A final export pinned by the lock: its files are checked on disk, and no
            # cache lookup is needed (this is the no-op build's hot path).
            sp.status = "cached"
        elif name in STEPS:
            rec = self.records.step(sp.key)
            if rec is not None:
                sp.digest, sp.status = rec.output.sha256, "cached"
        if sp.status == "cached":
            sp.credits = 0.0
        return sp

    def run(
        self,
        steps: Sequence[tuple[str, Mapping[str, Any]]],
        input_digest: str | None,
        locked: Sequence[LockedStep] | None,
    ) -> tuple[list[StepPlan], str | None]:
        out = []
        digest = input_digest
        locked = list(locked or [])
        for i, (name, params) in enumerate(steps):
            sp = self.step(name, params, digest, locked[i] if i < len(locked) else None)
            out.append(sp)
            digest = sp.digest
        return out, digest


def _files_cached(rec: ExportRecord | None, blob_present: Callable[[str], bool]) -> bool:
    """True when an export record's files are all in the cache."""
    return rec is not None and all(blob_present(f.sha256) for f in rec.files)


def _pinned_files_cached(o: "OutputPlan", blob_present: Callable[[str], bool]) -> bool:
    """Whether the lock pins the output's export under the key reached here (so every key
    before it too) and a cache holds all its files: the executor writes it from them."""
    return o.final.key is not None and o.final.key == o.locked_key and bool(o.locked_files) and all(
        blob_present(f.sha256) for f in o.locked_files)


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


class RecordLookup(Protocol):
    """Typed reads of cache records (``cache.records.RecordReader``)."""

    def generation(self, key: str | None) -> GenerationRecord | None: ...
    def step(self, key: str | None) -> StepRecord | None: ...
    def export(self, key: str | None) -> ExportRecord | None: ...


class PriceList(Protocol):
    """Prices in credits (``engine.pricing.Pricing``)."""

    def generation(self, request: Any) -> float: ...
    def operation(self, operation: str) -> float: ...
    def for_family(self, family: str) -> "PriceList": ...


@dataclass(frozen=True)
class PlanInputs:
    """Everything the planner reads besides the spec and the lock, as read-only lookups.

    ``records`` answers what the cache holds under a key; ``blob_present`` whether a
    blob is in the cache; ``observe(path)`` gives the sha256 of an output file as it is
    now (None if missing); ``style_keys`` maps custom style names to their keys.
    """

    provider: ProviderInfo
    records: RecordLookup
    blob_present: Callable[[str], bool]
    observe: Callable[[str], str | None]
    pricing: PriceList
    step_versions: Mapping[str, int] = field(default_factory=dict)
    style_keys: Mapping[str, str] = field(default_factory=dict)
    # name -> key of the custom styles the lock pins (made already: free).
    locked_styles: Mapping[str, str] = field(default_factory=dict)
    #: The project's picture files that assets take, by path (``engine.inputs``).
    sources: Mapping[str, SourcePicture] = field(default_factory=dict)


def make_plan(
    spec: Spec,
    lock: Mapping[str, LockedAsset],
    inputs: PlanInputs,
    *,
    targets: Iterable[str] | None = None,
    force: bool = False,
) -> Plan:
    """Plan the build of ``targets`` (asset names; all when None) from the lock's entries
    and what ``inputs`` tell of the cache and the output tree. ``force`` plans a new
    generation for every target. Pure: no I/O beyond the lookups given. Assets come in
    build order; targets bring in what they are made from (see ``engine.graphplan``)."""
    from recraft_build.engine.graphplan import plan_graph

    plan = plan_graph(spec, lock, inputs, targets=targets, force=force)
    plan.styles = _styles_to_create(plan.assets, inputs)
    return plan


def _styles_to_create(plans: Sequence[AssetPlan], inputs: PlanInputs) -> dict[str, float]:
    """Custom styles the executor will create, with their price: those an asset to
    generate uses, that the lock does not pin under the same key and that no cache
    record holds (the executor's own rule, ``Executor._ensure_styles``)."""
    out: dict[str, float] = {}
    lookup = getattr(inputs.records, "style", None)
    for ap in plans:
        name = ap.asset.request.style_ref
        if ap.status != "generate" or not name or name in out:
            continue
        key = inputs.style_keys.get(name)
        if key is None or inputs.locked_styles.get(name) == key:
            continue
        if lookup is not None and lookup(key) is not None:
            continue
        out[name] = float(inputs.pricing.operation("create_style")) if inputs.provider.paid else 0.0
    return out


def _plan_asset(
    asset: Asset,
    entry: LockedAsset | None,
    inputs: PlanInputs,
    *,
    force: bool,
    seen: set[Any] | None = None,
    source: SourcePicture | None = None,
) -> AssetPlan:
    """Plan one asset, its inputs resolved; ``source``: the file it *is* (restored, free);
    ``seen``: paid work already counted by this plan (shared generations and steps are
    priced once)."""
    if seen is None:
        seen = set()
    provider = inputs.provider
    records = inputs.records
    blob_present = inputs.blob_present
    req = asset.request
    style_key = inputs.style_keys.get(req.style_ref) if req.style_ref else None
    gen = entry.generation if entry is not None else None

    # The family that made the pinned picture is honoured: a teammate without a token
    # (placeholder active) still sees the real pictures in the lock as up to date.
    family = provider.family
    roll = gen.roll if gen is not None else 0
    if force:
        # --force is a re-roll: a new key, so the old candidates stay cached and pinned
        # pictures are never overwritten under the same key.
        roll += 1
    gen_key = keys.generation_key(family, req, style_key=style_key, roll=roll)
    if source is not None:
        # A file is the picture: the same for every provider, keyed by its content (the
        # family stays the active provider's: it runs the asset's provider steps).
        roll, gen_key = 0, keys.file_key(source.sha256)
    # Only a real picture is honoured under another family (a teammate without a token
    # keeps the approved pictures); a placeholder never stands in once a real provider
    # is active.
    elif not force and gen is not None and gen.family != family and gen.family != "placeholder":
        alt = keys.generation_key(gen.family, req, style_key=style_key, roll=roll)
        if gen.key == alt:
            family, gen_key = gen.family, alt

    reasons: list[str] = []
    candidates: tuple[Candidate, ...] | None = None
    bought: tuple[str | None, float | None] = (None, None)
    pick = 0
    key_matches_lock = gen is not None and gen.key == gen_key
    if force:
        reasons.append("--force")
    elif key_matches_lock:
        assert gen is not None
        candidates = gen.candidates
        pick = gen.pick
    else:
        rec = records.generation(gen_key) if source is None else None
        if rec is not None:
            candidates = rec.candidates
            bought = (rec.provider, rec.credits)
        if source is not None:
            candidates, bought = (source.candidate(),), ("file", 0.0)
            reasons.append(f"picture from file {source.path}")
        if entry is None:
            reasons.append("new asset")
        elif gen is not None:
            changed = _changed_fields(gen.request, keys.request_fields(req, style_key=style_key))
            if changed:
                reasons.append("changed: " + ", ".join(changed))
            elif gen.family != family:
                reasons.append(f"made by {gen.family}, now {family}")
            else:
                reasons.append("generation key changed")
    if candidates is not None and not (0 <= pick < len(candidates)):
        pick = 0
    cand_digest = candidates[pick].sha256 if candidates else None

    where = f"asset {asset.name!r}: "
    chain_provider = provider
    if family != provider.family:
        # Keys of the honoured picture's steps were made with its own provider family.
        chain_provider = ProviderInfo(
            name=str((gen.provider if gen is not None else None) or family),
            family=family,
            paid=True,
            operations=frozenset(OPERATIONS),
        )
    chain = _Chain(chain_provider, inputs, where)
    locked_steps = entry.steps if (entry is not None and key_matches_lock) else None
    asset_steps, asset_digest = chain.run(
        [(s.name, s.params) for s in asset.steps], cand_digest, locked_steps
    )
    locked_outputs = {o.path: o for o in entry.outputs} if entry is not None else {}

    outputs: list[OutputPlan] = []
    for o in asset.outputs:
        lo = locked_outputs.get(o.path) if key_matches_lock else None
        o_steps, o_digest = chain.run(
            [(s.name, s.params) for s in o.steps], asset_digest, lo.steps if lo is not None else None
        )
        fname, fparams = _export_step(o)
        final = chain.step(fname, fparams, o_digest, lo)
        op = OutputPlan(spec=o, steps=o_steps, final=final)
        if lo is not None:
            op.locked_files, op.locked_key = lo.files, lo.key
        if lo is None:
            op.reason = f"new output {o.path}" if entry is not None else ""
        elif final.key is None or lo.key != final.key:
            changed = [s.name for s in asset_steps + o_steps if s.status == "run"]
            op.reason = (
                f"steps changed for {o.path}: {', '.join(changed)}" if changed else f"output options changed: {o.path}"
            )
        else:
            problem = ""
            for f in op.locked_files:
                now = inputs.observe(f.path)
                if now is None:
                    problem = f"output missing: {f.path}"
                    break
                if now != f.sha256:
                    problem = f"output edited by hand: {f.path} (build overwrites it)"
                    break
            if problem:
                op.reason = problem
            else:
                op.status = "up-to-date"
        outputs.append(op)

    if entry is not None and key_matches_lock:
        for s, ls in zip(asset_steps, locked_steps or ()):
            if s.key != ls.key:
                reasons.append(f"step changed: {s.name}")
                break
        if len(asset_steps) != len(locked_steps or ()):
            reasons.append("steps added or removed")
        gone = set(locked_outputs) - {o.path for o in asset.outputs}
        if gone:
            reasons.append("outputs removed: " + ", ".join(sorted(gone)))

    # Can the needed outputs be made without a new picture? Each needs some point of its
    # chain (the candidate, or a cached step result) present in the cache.
    needed = [o for o in outputs if o.status != "up-to-date"]
    # Outputs the lock pins whole, their files in a cache, are written from those files:
    # nothing before them runs (or costs).
    unserved = [o for o in needed if not _pinned_files_cached(o, blob_present)]
    status: str
    pinned_missing = False
    if force or candidates is None:
        status = "generate"
    elif not needed and not reasons:
        status = "up-to-date"
    else:
        reachable = True
        for o in unserved if source is None else ():  # a file is always at hand
            points = [cand_digest] + [s.digest for s in asset_steps + o.steps]
            if not any(d and blob_present(d) for d in points) and not _files_cached(
                records.export(o.final.key) if o.final.key else None, blob_present
            ):
                reachable = False
                break
        if reachable:
            status = "restore"
            for o in needed:
                if o.reason and o.reason not in reasons:
                    reasons.append(o.reason)
            if not reasons:
                reasons.append("cached picture, outputs to write")
        else:
            status = "generate"
            if key_matches_lock and family != "placeholder":
                # The approved picture is pinned but no cache holds it: never repaint it
                # silently (a build refuses; see PinnedPictureMissing). A placeholder is
                # free and deterministic: making it again gives the same bytes.
                pinned_missing = True
                reasons.append(
                    f"the approved picture {cand_digest and cand_digest[:12]} pinned in the lock is in no cache "
                    "(build refuses: restore it from a remote cache, or reroll to replace it)"
                )
            else:
                reasons.append("the pinned picture is not in the cache")

    credits = 0.0
    if status == "generate" and provider.paid and ("generate", gen_key) not in seen:
        seen.add(("generate", gen_key))
        credits += float(inputs.pricing.generation(req))
    to_run = unserved if status == "restore" else needed
    if status != "up-to-date" and (to_run or status == "generate"):
        price = chain.pricing.operation if chain_provider.paid else (lambda op: 0.0)
        credits += steps_cost(("generate", gen_key), asset_steps, [o.steps for o in to_run], inputs, price, seen)
    return AssetPlan(
        asset=asset,
        status=status,
        reasons=reasons,
        gen_key=gen_key,
        family=family,
        style_key=style_key,
        roll=roll,
        candidates=candidates,
        pick=pick,
        steps=asset_steps,
        outputs=outputs,
        credits=credits,
        pinned_missing=pinned_missing,
        pinned=key_matches_lock and family != "placeholder",
        bought_from=bought[0],
        bought_credits=bought[1],
    )
