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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from recraft_build.engine import keys
from recraft_build.domain import Asset, OutputSpec, Spec
from recraft_build.errors import PlanError
from recraft_build.providers.base import OPERATIONS
from recraft_build.steps.catalog import STEPS, provider_operation

__all__ = [
    "AssetPlan",
    "OutputPlan",
    "Plan",
    "ProviderInfo",
    "StepPlan",
    "make_plan",
    "resolve_engine",
]

@dataclass(frozen=True)
class ProviderInfo:
    """What planning needs to know of the active provider (no I/O)."""

    name: str
    family: str
    paid: bool
    operations: frozenset[str] = frozenset()

    def supports(self, operation: str) -> bool:
        return operation in self.operations


def _operation(name: str, params: Mapping[str, Any]) -> str | None:
    if name not in STEPS:  # export / favicon: never a provider operation
        return None
    return provider_operation(name, params)


def resolve_engine(
    name: str, params: Mapping[str, Any], provider: ProviderInfo, *, where: str = ""
) -> tuple[dict[str, Any], str | None]:
    """Resolve ``engine`` in a step's params; return (params, provider operation or None).

    ``auto`` (or absent) means the provider's tool when a real (paid) provider is active
    and supports it, else the local implementation. Raises PlanError when a step can only
    run on a provider that cannot do it.
    """
    out = dict(params)
    op = _operation(name, params)
    if op is None:
        return out, None
    if name == "upscale":
        engine = "provider"
    else:
        engine = out.get("engine") or "auto"
        if engine == "auto":
            engine = "provider" if (provider.paid and provider.supports(op)) else "local"
    if engine == "provider" and not provider.supports(op):
        raise PlanError(
            f"{where}step {name} needs provider operation {op}, which provider "
            f"{provider.name} cannot do (use engine: local, or --provider recraft/replicate)"
        )
    out["engine"] = engine
    return out, (op if engine == "provider" else None)


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

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "params": self.params,
            "key": self.key,
            "status": self.status,
            "credits": self.credits,
        }


@dataclass
class OutputPlan:
    spec: OutputSpec
    steps: list[StepPlan]
    final: StepPlan  # the export (or favicon set)
    status: str = "write"  # "up-to-date" | "write"
    reason: str = ""
    locked_files: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AssetPlan:
    asset: Asset
    status: str  # "generate" | "restore" | "up-to-date"
    reasons: list[str]
    gen_key: str
    family: str
    style_key: str | None
    roll: int
    candidates: list[dict[str, Any]] | None  # known candidates (lock or cache record)
    pick: int
    steps: list[StepPlan]
    outputs: list[OutputPlan]
    credits: float = 0.0  # estimated cost of what this plan will pay for

    @property
    def name(self) -> str:
        return self.asset.name

    def to_json(self) -> dict[str, Any]:
        req = self.asset.request
        return {
            "name": self.asset.name,
            "status": self.status,
            "reasons": self.reasons,
            "key": self.gen_key,
            "model": req.model,
            "style": req.style_ref or req.style,
            "substyle": req.substyle,
            "size": req.size or req.aspect_ratio,
            "n": req.n,
            "prompt": req.prompt,
            "credits": self.credits,
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
    spec: Spec
    provider: ProviderInfo
    assets: list[AssetPlan]

    @property
    def credits(self) -> float:
        return sum(a.credits for a in self.assets)

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
            },
        }


def _export_step(spec: OutputSpec) -> tuple[str, dict[str, Any]]:
    if spec.favicon:
        return "favicon", dict(spec.options)
    return "export", {"format": spec.format, **dict(spec.options)}


class _Chain:
    """Walks a chain of steps, computing keys as far as input digests are known."""

    def __init__(
        self,
        provider: ProviderInfo,
        versions: Mapping[str, int],
        records: Mapping[str, Any],
        op_credits: Callable[[str], float],
        where: str,
    ):
        self.provider = provider
        self.versions = versions
        self.records = records
        self.op_credits = op_credits
        self.where = where

    def step(
        self, name: str, params: Mapping[str, Any], input_digest: str | None, locked: Mapping[str, Any] | None
    ) -> StepPlan:
        resolved, op = resolve_engine(name, params, self.provider, where=self.where)
        # A provider-run step is the provider's code, not ours: bumping the local
        # implementation's version must not re-run (and re-pay) it. It stays at 1.
        version = self.versions.get(name, 1) if op is None else 1
        sp = StepPlan(name=name, params=resolved, version=version, operation=op)
        if op is not None and self.provider.paid:
            sp.credits = float(self.op_credits(op))
        if input_digest is None:
            return sp
        sp.key = keys.step_key(
            name, resolved, version, input_digest, family=self.provider.family if op else None
        )
        if locked and locked.get("key") == sp.key and locked.get("sha256"):
            sp.digest, sp.status = str(locked["sha256"]), "cached"
        elif locked and locked.get("key") == sp.key and "files" in locked:
            # A final export pinned by the lock: its files are checked on disk, and no
            # cache lookup is needed (this is the no-op build's hot path).
            sp.status = "cached"
        else:
            rec = self.records.get(sp.key)
            digest = _record_digest(rec)
            if digest:
                sp.digest, sp.status = digest, "cached"
        if sp.status == "cached":
            sp.credits = 0.0
        return sp

    def run(
        self,
        steps: Sequence[tuple[str, Mapping[str, Any]]],
        input_digest: str | None,
        locked: Sequence[Mapping[str, Any]] | None,
    ) -> tuple[list[StepPlan], str | None]:
        out = []
        digest = input_digest
        locked = list(locked or [])
        for i, (name, params) in enumerate(steps):
            sp = self.step(name, params, digest, locked[i] if i < len(locked) else None)
            out.append(sp)
            digest = sp.digest
        return out, digest


def _record_digest(rec: Any) -> str | None:
    if isinstance(rec, Mapping):
        output = rec.get("output")
        if isinstance(output, Mapping) and isinstance(output.get("sha256"), str):
            return output["sha256"]
    return None


def _files_cached(rec: Any, blob_present: Callable[[str], bool]) -> bool:
    """True when an export record's files are all in the cache."""
    if not isinstance(rec, Mapping) or not isinstance(rec.get("files"), list) or not rec["files"]:
        return False
    return all(isinstance(f, Mapping) and blob_present(str(f.get("sha256"))) for f in rec["files"])


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def make_plan(
    spec: Spec,
    lock_assets: Mapping[str, Mapping[str, Any]],
    *,
    provider: ProviderInfo,
    step_versions: Mapping[str, int],
    records: Mapping[str, Any],
    blob_present: Callable[[str], bool],
    observe: Callable[[str], str | None],
    gen_credits: Callable[[Any], float],
    op_credits: Callable[[str], float],
    style_keys: Mapping[str, str] | None = None,
    targets: Iterable[str] | None = None,
    force: bool = False,
) -> Plan:
    """Plan the build of ``targets`` (asset names; all when None).

    ``lock_assets`` is the lock's asset entries; ``records`` maps a key to its cache
    record (a read-only lookup; missing keys are cache misses); ``blob_present`` tells
    whether a blob is in the cache; ``observe(path)`` gives the sha256 of an output file
    as it is now (None if missing). ``style_keys`` maps custom style names to their keys.
    ``force`` plans a new generation for every target.
    """
    style_keys = style_keys or {}
    wanted = None if targets is None else set(targets)
    plans: list[AssetPlan] = []
    for asset in spec.assets:
        if wanted is not None and asset.name not in wanted:
            continue
        plans.append(
            _plan_asset(
                asset,
                lock_assets.get(asset.name),
                provider=provider,
                step_versions=step_versions,
                records=records,
                blob_present=blob_present,
                observe=observe,
                gen_credits=gen_credits,
                op_credits=op_credits,
                style_keys=style_keys,
                force=force,
            )
        )
    return Plan(spec=spec, provider=provider, assets=plans)


def _plan_asset(
    asset: Asset,
    entry: Mapping[str, Any] | None,
    *,
    provider: ProviderInfo,
    step_versions: Mapping[str, int],
    records: Mapping[str, Any],
    blob_present: Callable[[str], bool],
    observe: Callable[[str], str | None],
    gen_credits: Callable[[Any], float],
    op_credits: Callable[[str], float],
    style_keys: Mapping[str, str],
    force: bool,
) -> AssetPlan:
    req = asset.request
    style_key = style_keys.get(req.style_ref) if req.style_ref else None
    gen = (entry or {}).get("generation") or {}

    # The family that made the pinned picture is honoured: a teammate without a token
    # (placeholder active) still sees the real pictures in the lock as up to date.
    family = provider.family
    roll = int(gen.get("roll") or 0)
    if force:
        # --force is a re-roll: a new key, so the old candidates stay cached and pinned
        # pictures are never overwritten under the same key.
        roll += 1
    gen_key = keys.generation_key(family, req, style_key=style_key, roll=roll)
    locked_family = gen.get("family")
    # Only a real picture is honoured under another family (a teammate without a token
    # keeps the approved pictures); a placeholder never stands in once a real provider
    # is active.
    if not force and locked_family and locked_family != family and locked_family != "placeholder":
        alt = keys.generation_key(locked_family, req, style_key=style_key, roll=roll)
        if gen.get("key") == alt:
            family, gen_key = locked_family, alt

    reasons: list[str] = []
    candidates: list[dict[str, Any]] | None = None
    pick = 0
    key_matches_lock = bool(gen) and gen.get("key") == gen_key
    if force:
        reasons.append("--force")
    elif key_matches_lock:
        candidates = list(gen.get("candidates") or [])
        pick = int(gen.get("pick") or 0)
    else:
        rec = records.get(gen_key)
        if isinstance(rec, Mapping) and rec.get("candidates"):
            candidates = list(rec["candidates"])
        if entry is None:
            reasons.append("new asset")
        elif gen:
            changed = _changed_fields(gen.get("request") or {}, keys.request_fields(req, style_key=style_key))
            if changed:
                reasons.append("changed: " + ", ".join(changed))
            elif gen.get("family") != family:
                reasons.append(f"made by {gen.get('family')}, now {family}")
            else:
                reasons.append("generation key changed")
    if candidates is not None and not (0 <= pick < len(candidates)):
        pick = 0
    cand_digest = candidates[pick].get("sha256") if candidates else None

    where = f"asset {asset.name!r}: "
    chain_provider = provider
    if family != provider.family:
        # Keys of the honoured picture's steps were made with its own provider family.
        chain_provider = ProviderInfo(
            name=str(gen.get("provider") or family),
            family=family,
            paid=True,
            operations=frozenset(OPERATIONS),
        )
    chain = _Chain(chain_provider, step_versions, records, op_credits, where)
    locked_steps = (entry or {}).get("steps") if key_matches_lock else None
    asset_steps, asset_digest = chain.run(
        [(s.name, s.params) for s in asset.steps], cand_digest, locked_steps
    )
    locked_outputs = {o.get("path"): o for o in (entry or {}).get("outputs") or []}

    outputs: list[OutputPlan] = []
    for o in asset.outputs:
        lo = locked_outputs.get(o.path) if key_matches_lock else None
        o_steps, o_digest = chain.run(
            [(s.name, s.params) for s in o.steps], asset_digest, (lo or {}).get("steps")
        )
        fname, fparams = _export_step(o)
        final = chain.step(fname, fparams, o_digest, lo)
        op = OutputPlan(spec=o, steps=o_steps, final=final)
        if lo is not None:
            op.locked_files = list(lo.get("files") or [])
        if lo is None:
            op.reason = f"new output {o.path}" if entry else ""
        elif final.key is None or lo.get("key") != final.key:
            changed = [s.name for s in asset_steps + o_steps if s.status == "run"]
            op.reason = (
                f"steps changed for {o.path}: {', '.join(changed)}" if changed else f"output options changed: {o.path}"
            )
        else:
            problem = ""
            for f in op.locked_files:
                now = observe(f["path"])
                if now is None:
                    problem = f"output missing: {f['path']}"
                    break
                if now != f.get("sha256"):
                    problem = f"output edited by hand: {f['path']} (build overwrites it)"
                    break
            if problem:
                op.reason = problem
            else:
                op.status = "up-to-date"
        outputs.append(op)

    if entry and key_matches_lock:
        for s, ls in zip(asset_steps, locked_steps or []):
            if s.key != ls.get("key"):
                reasons.append(f"step changed: {s.name}")
                break
        if len(asset_steps) != len(locked_steps or []):
            reasons.append("steps added or removed")
        gone = set(locked_outputs) - {o.path for o in asset.outputs}
        if gone:
            reasons.append("outputs removed: " + ", ".join(sorted(gone)))

    # Can the needed outputs be made without a new picture? Each needs some point of its
    # chain (the candidate, or a cached step result) present in the cache.
    needed = [o for o in outputs if o.status != "up-to-date"]
    status: str
    if force:
        status = "generate"
    elif candidates is None:
        status = "generate"
    elif not needed and not reasons:
        status = "up-to-date"
    else:
        reachable = True
        for o in needed:
            points = [cand_digest] + [s.digest for s in asset_steps + o.steps]
            if not any(d and blob_present(d) for d in points) and not _files_cached(
                records.get(o.final.key) if o.final.key else None, blob_present
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
            reasons.append("the pinned picture is not in the cache")

    credits = 0.0
    if status == "generate" and provider.paid:
        credits += float(gen_credits(req))
    if status != "up-to-date":
        seen_keys: set[str] = set()
        for s in asset_steps + [x for o in needed for x in o.steps + [o.final]]:
            if s.status == "run" and s.operation:
                if s.key and s.key in seen_keys:
                    continue
                if s.key:
                    seen_keys.add(s.key)
                credits += s.credits
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
    )
