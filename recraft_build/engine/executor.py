"""Carrying out a plan: generate, restore, run steps, write outputs, update the lock.

The rules that keep money safe:

* A picture a provider returns is put in the store (blob, then the action record)
  before anything else is done with it, so a crash or a failing step never loses it.
* A generation runs under the store's per-key lock, and the record is looked up again
  inside it: two assets with the same request, or two builds sharing one cache, pay once.
* The lock file is updated after each finished asset (see :meth:`Executor._save_lock`),
  so Ctrl-C or a crash keeps everything finished.
* A failing asset never touches another asset's outputs, the cache or the lock entry
  of another asset.

Concurrency: ``jobs`` worker threads share one provider (one HTTP pool). Cancellation
(Ctrl-C) is cooperative: workers stop before their next paid call or step.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from recraft_build.cache.base import BuildStore
from recraft_build.engine import keys
from recraft_build.domain import Picture, media_type_for_format, sniff_media_type
from recraft_build.errors import (
    BudgetError,
    PlanError,
    ProviderError,
    RecraftBuildError,
    StepError,
    StoreError,
)
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import OutputState, write_output
from recraft_build.engine.plan import AssetPlan, OutputPlan, Plan, StepPlan
from recraft_build.providers.base import Provider

__all__ = [
    "AssetResult",
    "Budget",
    "BuildResult",
    "Cancelled",
    "Executor",
    "NullReporter",
    "Reporter",
]


class Reporter(Protocol):
    """Receives build events. The library never prints; the CLI renders these."""

    def notice(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def start(self, plan: Plan) -> None: ...
    def asset_started(self, name: str, status: str) -> None: ...
    def asset_finished(self, result: "AssetResult") -> None: ...


class NullReporter:
    """A reporter that ignores everything (the library default)."""

    def notice(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def start(self, plan: Plan) -> None:
        pass

    def asset_started(self, name: str, status: str) -> None:
        pass

    def asset_finished(self, result: "AssetResult") -> None:
        pass


class PictureLost(StoreError):
    """The asset's own picture vanished from the cache (removed or corrupt) mid-build."""


class Cancelled(RecraftBuildError):
    """The build was interrupted; workers stop at the next safe point."""

    exit_code = 130


@dataclass
class AssetResult:
    """What happened to one asset. ``status``: generated, restored, up-to-date, failed, skipped."""

    name: str
    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    credits: float = 0.0
    error: str = ""
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "outputs": [{"path": o["path"], "sha256": o["sha256"]} for o in self.outputs],
            "credits": self.credits,
        }
        if self.error:
            d["error"] = self.error
        if self.reasons:
            d["reasons"] = self.reasons
        return d


@dataclass
class BuildResult:
    assets: list[AssetResult]
    output_dir: Path
    interrupted: bool = False

    @property
    def failed(self) -> list[AssetResult]:
        return [a for a in self.assets if a.status in ("failed", "skipped")]

    @property
    def credits(self) -> float:
        return sum(a.credits for a in self.assets)

    def summary(self) -> dict[str, Any]:
        count = lambda s: sum(1 for a in self.assets if a.status == s)  # noqa: E731
        return {
            "generated": count("generated"),
            "restored": count("restored"),
            "up_to_date": count("up-to-date"),
            "failed": count("failed") + count("skipped"),
            "credits": self.credits,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "assets": [a.to_json() for a in self.assets],
            "summary": self.summary(),
            "interrupted": self.interrupted,
        }


class Budget:
    """``--max-credits``: reserve an estimate before each paid call, settle with the truth.

    Thread-safe. ``limit`` None means no limit (spending is still counted).
    """

    def __init__(self, limit: float | None):
        self.limit = limit
        self.spent = 0.0
        self._reserved = 0.0
        self._mutex = threading.Lock()

    def reserve(self, amount: float) -> None:
        with self._mutex:
            if self.limit is not None and self.spent + self._reserved + amount > self.limit + 1e-9:
                raise BudgetError(self.spent + self._reserved + amount, self.limit, started=True)
            self._reserved += amount

    def settle(self, reserved: float, actual: float | None) -> None:
        with self._mutex:
            self._reserved -= reserved
            self.spent += reserved if actual is None else float(actual)


@dataclass
class _Handoff:
    """A generated asset passed from a network worker to a CPU worker."""

    plan: AssetPlan
    finish: Callable[[AssetPlan], "AssetResult"]


@dataclass
class _Node:
    """A point of a chain: the candidate (step None) or a step's output."""

    step: StepPlan | None
    digest: str | None = None
    media_type: str | None = None
    picture: Picture | None = None
    credits: float = 0.0  # what running its step cost (0 when cached or local)


class Executor:
    """Runs a :class:`Plan`. All I/O objects come in through the constructor."""

    def __init__(
        self,
        *,
        store: BuildStore,
        provider: Provider,
        lock: Lock,
        output_dir: Path,
        state: OutputState,
        steps: Any,
        reporter: Reporter | None = None,
        jobs: int = 8,
        keep_going: bool = False,
        budget: Budget | None = None,
        allow_generate: bool = True,
        gen_credits: Callable[[Any], float] = lambda r: 0.0,
        op_credits: Callable[[str], float] = lambda o: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.provider = provider
        self.lock = lock
        self.out = Path(output_dir)
        self.state = state
        self.steps = steps  # the steps.registry module (or a stand-in with the same API)
        self.reporter = reporter or NullReporter()
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.budget = budget or Budget(None)
        self.allow_generate = allow_generate
        self.gen_credits = gen_credits
        self.op_credits = op_credits
        self.clock = clock
        self.cancel = threading.Event()
        self._failed = threading.Event()
        self._lock_mutex = threading.Lock()
        self._last_save = 0.0
        self._saving = False
        self._save_pending = False
        self._save_cost = 0.0
        self._style_ids: dict[str, str] = {}

    # -- the whole build ----------------------------------------------------------
    def run(self, plan: Plan, style_refs: Mapping[str, Any] | None = None) -> BuildResult:
        """Build every asset of ``plan``; return the results (never raises for an asset).

        ``style_refs`` maps custom style name -> (StyleSpec, key, reference Pictures).
        KeyboardInterrupt is turned into a cancelled, saved, partial result.
        """
        self.reporter.start(plan)
        results: dict[str, AssetResult] = {}
        todo: list[AssetPlan] = []
        for ap in plan.assets:
            if ap.status == "up-to-date":
                res = AssetResult(ap.name, "up-to-date", outputs=self._locked_files(ap))
                results[ap.name] = res
                self.reporter.asset_finished(res)
            else:
                todo.append(ap)

        failed_styles = self._ensure_styles(todo, style_refs or {}, results)
        interrupted = False
        aborted = False
        # Two pools: `jobs` workers wait on the network (generations), and as soon as a
        # picture is stored its steps and outputs move to a CPU-sized pool, so a network
        # worker starts its next request instead of resizing and encoding.
        net = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="rb-net")
        cpu = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="rb-cpu")
        pending: set[Future[Any]] = set()
        # Finished futures arrive on a queue: waiting on the whole pending set each time
        # (concurrent.futures.wait) costs O(pending) per wake-up, O(N^2) over a build.
        finished: "queue.SimpleQueue[Future[Any]]" = queue.SimpleQueue()

        def submit(pool: ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
            fut = pool.submit(*args, **kwargs)
            pending.add(fut)
            fut.add_done_callback(finished.put)

        try:
            for ap in todo:
                if ap.name in results:
                    continue
                ref = ap.asset.request.style_ref
                if ref and ref in failed_styles:
                    res = AssetResult(
                        ap.name, "skipped", error=f"skipped: custom style {ref!r} failed: {failed_styles[ref]}"
                    )
                    results[ap.name] = res
                    self.reporter.asset_finished(res)
                    continue
                submit(net, self._guarded, ap, self._first_stage)
            while pending:
                try:
                    # A timeout keeps the main thread responsive to Ctrl-C.
                    fut = finished.get(timeout=0.2)
                except queue.Empty:
                    continue
                pending.discard(fut)
                out = fut.result()
                if isinstance(out, _Handoff):
                    submit(cpu, self._guarded, out.plan, out.finish, started=True)
                    continue
                results[out.name] = out
                self.reporter.asset_finished(out)
        except KeyboardInterrupt:
            interrupted = True
            self.cancel.set()
            self.reporter.warning(
                "interrupted: finishing calls already in flight so nothing paid for is lost "
                "(Ctrl-C again to stop at once)..."
            )
            try:
                for fut in list(pending):
                    if fut.cancel():
                        continue
                    out = fut.result()
                    if isinstance(out, AssetResult):
                        results[out.name] = out
                    # A handoff's pictures are already stored: the next build restores them free.
            except KeyboardInterrupt:
                # A second Ctrl-C: stop waiting. What finished is saved below; calls still
                # in flight are abandoned (their pictures, if billed, are lost).
                aborted = True
        finally:
            net.shutdown(wait=not aborted, cancel_futures=True)
            cpu.shutdown(wait=not aborted, cancel_futures=True)
            self._save_lock(force=True)
            self.state.save()
        ordered = [results[a.name] for a in plan.assets if a.name in results]
        return BuildResult(assets=ordered, output_dir=self.out, interrupted=interrupted)

    def _first_stage(self, ap: AssetPlan) -> "AssetResult | _Handoff":
        """On a network worker: make the picture (if needed), then hand the rest off."""
        if ap.status != "generate":
            return self._build_asset(ap)
        made = self._generate(ap)

        def finish(plan: AssetPlan) -> AssetResult:
            return self._build_asset_once(plan, made=made)

        return _Handoff(ap, finish)

    def _guarded(self, ap: AssetPlan, stage: Callable[[AssetPlan], Any], *, started: bool = False) -> Any:
        """Run one stage of an asset; a failure becomes the asset's result, never an exception."""
        if self.cancel.is_set() or (self._failed.is_set() and not self.keep_going):
            why = "interrupted" if self.cancel.is_set() else "an earlier asset failed (use --keep-going)"
            return AssetResult(ap.name, "skipped", error=f"not built: {why}")
        if not started:
            self.reporter.asset_started(ap.name, ap.status)
        try:
            return stage(ap)
        except Cancelled:
            return AssetResult(ap.name, "skipped", error="not finished: interrupted")
        except RecraftBuildError as exc:
            self._failed.set()
            return AssetResult(ap.name, "failed", error=_asset_message(ap.name, exc), reasons=ap.reasons)
        except Exception as exc:  # a bug: report it on the asset, keep the others safe
            self._failed.set()
            return AssetResult(
                ap.name,
                "failed",
                error=f"asset {ap.name!r}: internal error {type(exc).__name__}: {exc} (please report this bug)",
            )

    # -- custom styles -------------------------------------------------------------
    def _ensure_styles(
        self, todo: Sequence[AssetPlan], style_refs: Mapping[str, Any], results: dict[str, AssetResult]
    ) -> dict[str, str]:
        """Create (once) the custom styles that assets to generate need. Returns failures."""
        failed: dict[str, str] = {}
        needed = sorted({ap.asset.request.style_ref for ap in todo if ap.asset.request.style_ref and ap.status == "generate"})
        for name in needed:
            if name not in style_refs:
                failed[name] = "not declared"
                continue
            style, key, pictures = style_refs[name]
            locked = self.lock.style(name)
            if locked and locked.get("key") == key and locked.get("style_id"):
                self._style_ids[name] = str(locked["style_id"])
                continue
            rec = self.store.get_record(key)
            if isinstance(rec, Mapping) and rec.get("style_id"):
                self._style_ids[name] = str(rec["style_id"])
                self.lock.set_style(name, {"key": key, "style_id": rec["style_id"], "provider": rec.get("provider")})
                continue
            try:
                with self.store.key_lock(key):
                    rec = self.store.get_record(key)
                    if isinstance(rec, Mapping) and rec.get("style_id"):
                        sid, credits = str(rec["style_id"]), 0.0
                    elif not self.provider.paid:
                        sid, credits = f"placeholder-{key[:16]}", 0.0
                        self.store.put_record(key, {"kind": "style", "style_id": sid, "provider": self.provider.name})
                    else:
                        est = float(self.op_credits("create_style"))
                        self.budget.reserve(est)
                        actual = None
                        try:
                            made = self.provider.create_style(style.base_style, pictures, name=name)
                            actual = made.credits
                        finally:
                            self.budget.settle(est, actual)
                        sid, credits = made.style_id, float(made.credits or 0)
                        self.store.put_record(
                            key,
                            {"kind": "style", "style_id": sid, "provider": self.provider.name, "credits": made.credits},
                        )
                self._style_ids[name] = sid
                self.lock.set_style(name, {"key": key, "style_id": sid, "provider": self.provider.name, "credits": credits})
                self._save_lock(force=True)
            except RecraftBuildError as exc:
                failed[name] = str(exc)
                self.reporter.warning(f"custom style {name!r}: {exc}")
        return failed

    # -- one asset -----------------------------------------------------------------
    def _build_asset(self, ap: AssetPlan) -> AssetResult:
        try:
            return self._build_asset_once(ap)
        except PictureLost as exc:
            if ap.status != "restore" or not self.allow_generate:
                raise
            # The cache lost the pinned picture (corrupt or removed) after planning:
            # nothing usable is left of it, so it is made again, as the plan would have.
            self.reporter.warning(f"asset {ap.name!r}: {exc}; generating it again")
            return self._build_asset_once(dataclasses.replace(ap, status="generate", reasons=ap.reasons + ["cached picture lost"]))

    def _build_asset_once(
        self, ap: AssetPlan, *, made: tuple[dict[str, Any], float] | None = None
    ) -> AssetResult:
        """Build one asset; ``made`` is its generation when a network worker already made it."""
        credits = 0.0
        generation = None
        if ap.status == "generate":
            generation, credits = made if made is not None else self._generate(ap)
            candidates = generation["candidates"]
            pick = 0
            status = "generated"
        else:
            candidates = list(ap.candidates or [])
            pick = ap.pick
            status = "restored"
        cand = candidates[pick]
        start = _Node(step=None, digest=cand["sha256"], media_type=cand.get("media_type"))

        asset_nodes = self._chain(start, ap.steps, ap)
        locked_steps = [self._step_entry(n) for n in asset_nodes[1:]]
        outputs_entries = []
        files_out: list[dict[str, Any]] = []
        for op in ap.outputs:
            nodes = self._chain(asset_nodes[-1], op.steps, ap)
            final_plan = dataclasses.replace(op.final, key=None, digest=None, status="run")
            entry, files = self._final(nodes[-1], final_plan, op, ap)
            entry["steps"] = [self._step_entry(n) for n in nodes[1:]]
            outputs_entries.append(entry)
            files_out.extend(files)
            credits += sum(n.credits for n in nodes[1:])  # nodes[0] is the asset chain's last
        credits += sum(n.credits for n in asset_nodes)

        gen_entry = self._generation_entry(ap, candidates, pick, generation)
        self.lock.set_asset(
            ap.name,
            {"generation": gen_entry, "steps": locked_steps, "outputs": outputs_entries},
        )
        self._save_lock(force=(status == "generated" and self.provider.paid))
        return AssetResult(ap.name, status, outputs=files_out, credits=credits, reasons=ap.reasons)

    def _generation_entry(
        self, ap: AssetPlan, candidates: list[dict[str, Any]], pick: int, generation: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        old = (self.lock.asset(ap.name) or {}).get("generation") or {}
        if generation is None and old.get("key") == ap.gen_key:
            entry = dict(old)
        else:
            src = generation or {}
            entry = {
                "key": ap.gen_key,
                "family": ap.family,
                "provider": src.get("provider") or old.get("provider"),
                "credits": src.get("credits"),
            }
        entry["request"] = keys.request_fields(ap.asset.request, style_key=ap.style_key)
        if ap.roll:
            entry["roll"] = ap.roll
        else:
            entry.pop("roll", None)
        entry["candidates"] = candidates
        entry["pick"] = pick
        entry["key"] = ap.gen_key
        entry["family"] = ap.family
        return entry

    def _generate(self, ap: AssetPlan) -> tuple[dict[str, Any], float]:
        """Make (or find, if another worker/process just made) the asset's candidates."""
        key = ap.gen_key
        with self.store.key_lock(key):
            rec = self.store.get_record(key)
            if _usable_generation(rec, self.store):
                return dict(rec), 0.0
            if self.cancel.is_set():
                raise Cancelled("interrupted")
            request = ap.asset.request
            if request.style_ref:
                sid = self._style_ids.get(request.style_ref)
                if not sid:
                    raise PlanError(f"custom style {request.style_ref!r} has no id (its creation failed)")
                request = dataclasses.replace(request, style_ref=None, style_id=sid)
            if ap.roll and not self.provider.paid and request.seed is None:
                # The placeholder draws from the request alone; a re-roll must look new.
                request = dataclasses.replace(request, seed=ap.roll)
            estimate = float(self.gen_credits(ap.asset.request)) if self.provider.paid else 0.0
            self.budget.reserve(estimate)
            actual: float | None = None
            try:
                result = self.provider.generate(request, asset=ap.name)
                # A server that does not say what it charged (Replicate) is counted at the
                # price table's figure, so the summary and --max-credits never see 0.
                actual = _charged(result.credits, estimate) if self.provider.paid else 0.0
            except ProviderError as exc:
                if exc.asset is None:
                    exc.asset = ap.name
                raise
            finally:
                self.budget.settle(estimate, actual)
            # Store first, before any check that could fail: this picture is paid for.
            cands = []
            for pic in result.pictures:
                digest = self.store.put_blob(pic.data)
                w, h = self._size(pic)
                cands.append(
                    {
                        "sha256": digest,
                        "media_type": pic.media_type,
                        "width": w,
                        "height": h,
                        "bytes": len(pic.data),
                        "meta": dict(pic.meta),
                    }
                )
            record = {
                "kind": "generate",
                "candidates": cands,
                "credits": actual,
                "credits_estimated": result.credits is None and self.provider.paid or None,
                "provider": self.provider.name,
                "family": self.provider.family,
                "meta": dict(result.meta),
            }
            self.store.put_record(key, record)
        if len(cands) != ap.asset.request.n:
            raise ProviderError(
                f"asked for {ap.asset.request.n} picture(s), got {len(cands)} (the ones received are cached)",
                provider=self.provider.name,
                asset=ap.name,
            )
        return record, float(actual or 0.0)

    def _size(self, pic: Picture) -> tuple[int | None, int | None]:
        try:
            return self.steps.picture_size(pic)
        except Exception:
            return None, None

    # -- chains --------------------------------------------------------------------
    def _chain(self, start: _Node, steps: Sequence[StepPlan], ap: AssetPlan) -> list[_Node]:
        """Resolve each step from the cache or run it; return nodes start..last.

        Pictures are fetched lazily: a cached step whose output is never needed as an
        input is never read.
        """
        nodes = [start]
        for sp in steps:
            prev = nodes[-1]
            node = self._resolve_step(prev, sp, ap, nodes)
            nodes.append(node)
        return nodes

    def _resolve_step(self, prev: _Node, sp: StepPlan, ap: AssetPlan, history: list[_Node]) -> _Node:
        assert prev.digest is not None
        key = keys.step_key(
            sp.name, sp.params, sp.version, prev.digest, family=self.provider_family(ap) if sp.operation else None
        )
        plan = dataclasses.replace(sp, key=key)
        rec = self.store.get_record(key)
        out = rec.get("output") if isinstance(rec, Mapping) else None
        if isinstance(out, Mapping) and isinstance(out.get("sha256"), str) and self.store.has_blob(out["sha256"]):
            return _Node(step=plan, digest=out["sha256"], media_type=out.get("media_type"))
        return self._run_step(prev, plan, ap, history)

    def provider_family(self, ap: AssetPlan) -> str:
        return ap.family

    def _picture(self, node: _Node, ap: AssetPlan, history: list[_Node]) -> Picture:
        if node.picture is not None:
            return node.picture
        assert node.digest is not None
        data = self.store.get_blob(node.digest)
        if data is None:
            # Missing or corrupt in the cache (the store warned): recompute from the
            # previous point of the chain, never from a new paid generation.
            idx = next((i for i, n in enumerate(history) if n is node), None)
            if node.step is None or not idx:
                raise PictureLost(
                    f"its picture {node.digest[:12]} is missing from the cache (removed or corrupt)"
                )
            rebuilt = self._run_step(history[idx - 1], node.step, ap, history[:idx])
            node.picture, node.digest, node.media_type = rebuilt.picture, rebuilt.digest, rebuilt.media_type
            assert node.picture is not None
            return node.picture
        node.picture = Picture(data, node.media_type or sniff_media_type(data) or "application/octet-stream")
        return node.picture

    def _run_step(self, prev: _Node, sp: StepPlan, ap: AssetPlan, history: list[_Node]) -> _Node:
        if self.cancel.is_set():
            raise Cancelled("interrupted")
        src = self._picture(prev, ap, history)
        estimate = float(self.op_credits(sp.operation)) if (sp.operation and self.provider.paid) else 0.0
        if sp.operation:
            self.budget.reserve(estimate)
        actual: float | None = None
        try:
            if sp.operation and ap.family != self.provider.family:
                raise StepError(
                    f"needs provider {ap.family} to re-run it, but the active provider is "
                    f"{self.provider.name} (set the provider's token, or restore the cache)",
                    step=sp.name,
                    asset=ap.name,
                )
            result, actual = self.steps.run_step(
                sp.name, sp.params, src, provider=self.provider if sp.operation else None, asset=ap.name
            )
            if sp.operation and self.provider.paid:
                actual = _charged(actual, estimate)
        except StepError as exc:
            if exc.asset is None:
                exc.asset = ap.name
            raise
        except ProviderError as exc:
            if exc.asset is None:
                exc.asset = ap.name
            raise
        finally:
            if sp.operation:
                self.budget.settle(estimate, actual)
        if sp.operation:
            # A provider result is paid for: store it before checking it.
            digest = self.store.put_blob(result.data)
            self.steps.check_step_output(sp.name, sp.params, src, result, asset=ap.name)
        else:
            self.steps.check_step_output(sp.name, sp.params, src, result, asset=ap.name)
            digest = self.store.put_blob(result.data)
        w, h = self._size(result)
        self.store.put_record(
            sp.key,
            {
                "kind": "step",
                "step": sp.name,
                "output": {
                    "sha256": digest,
                    "media_type": result.media_type,
                    "width": w,
                    "height": h,
                    "bytes": len(result.data),
                },
                "credits": actual,
            },
        )
        return _Node(step=sp, digest=digest, media_type=result.media_type, picture=result, credits=float(actual or 0.0))

    @staticmethod
    def _step_entry(node: _Node) -> dict[str, Any]:
        assert node.step is not None
        return {"step": node.step.name, "key": node.step.key, "sha256": node.digest}

    # -- final export and files -------------------------------------------------------
    def _final(
        self, last: _Node, sp: StepPlan, op: OutputPlan, ap: AssetPlan
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Export the last picture of an output's chain and write its file(s).

        The export's record lists files by ``name`` ("" for the single file of an
        ordinary output, ``favicon.ico``... for a favicon set), never by output path, so
        two outputs with the same content share one cache entry.
        """
        assert last.digest is not None
        key = keys.step_key(sp.name, sp.params, sp.version, last.digest)
        rec = self.store.get_record(key)
        made: list[dict[str, Any]] | None = None
        blobs: dict[str, bytes] = {}
        if isinstance(rec, Mapping) and isinstance(rec.get("files"), list):
            made = [dict(f) for f in rec["files"]]
            for f in made:
                rel = _file_path(op, f["name"])
                # Only read blobs for files that must be (re)written.
                if self.state.observe(rel) != f["sha256"]:
                    data = self.store.get_blob(f["sha256"])
                    if data is None:
                        made = None
                        break
                    blobs[rel] = data
        if made is None:
            src = self._picture(last, ap, [last])
            if self.cancel.is_set():
                raise Cancelled("interrupted")
            made, blobs = [], {}
            for name, (data, fmt) in self._export(src, op, ap).items():
                digest = self.store.put_blob(data)
                w, h = self._size(Picture(data, _media_type(fmt)))
                made.append(
                    {"name": name, "sha256": digest, "bytes": len(data), "format": fmt, "width": w, "height": h}
                )
                blobs[_file_path(op, name)] = data
            self.store.put_record(key, {"kind": sp.name, "files": made})
        files = []
        for f in made:
            rel = _file_path(op, f["name"])
            if rel in blobs:
                write_output(self.out, rel, blobs[rel])
                self.state.record(rel, f["sha256"])
            entry_file = {k: v for k, v in f.items() if k != "name"}
            entry_file["path"] = rel
            files.append(entry_file)
        entry = {"path": op.spec.path, "key": key, "files": files}
        return entry, files

    def _export(self, src: Picture, op: OutputPlan, ap: AssetPlan) -> dict[str, tuple[bytes, str]]:
        """name -> (bytes, format) of the file(s) of one output."""
        spec = op.spec
        if spec.favicon:
            made = self.steps.favicon(src, dict(spec.options), asset=ap.name)
            return {name: (data, name.rsplit(".", 1)[-1].lower()) for name, data in sorted(made.items())}
        data = self.steps.export(src, spec.format, dict(spec.options), asset=ap.name)
        return {"": (data, spec.format)}

    def _locked_files(self, ap: AssetPlan) -> list[dict[str, Any]]:
        files = []
        for o in ap.outputs:
            files.extend(o.locked_files)
        return files

    # -- lock ------------------------------------------------------------------------
    def _save_lock(self, force: bool = False) -> None:
        """Save the lock after a finished asset (group commit).

        After a paid generation the lock is always written; other saves are spaced out
        (re-writing a 10,000-asset lock after each free restore would cost O(N^2)), and
        it is always written at the end. One worker writes at a time and none waits for
        another: a worker that finds a write in progress leaves its change to it, and
        that writer writes once more before it stops. Nothing paid is at risk in
        between: the pictures are in the store before the lock is touched.
        """
        with self._lock_mutex:
            now = self.clock()
            # Free saves are spaced by at least 0.25 s and by 20x what the last write
            # took, so writing a big lock never takes more than ~5% of the build.
            interval = max(0.25, 20 * self._save_cost)
            if not (force or now - self._last_save >= interval):
                return
            self._save_pending = True
            if self._saving:
                return  # the writer in progress will write our change too
            self._saving = True
        try:
            while True:
                with self._lock_mutex:
                    if not self._save_pending:
                        self._saving = False
                        return
                    self._save_pending = False
                    self._last_save = started = self.clock()
                self.lock.save()
                with self._lock_mutex:
                    self._save_cost = max(0.0, self.clock() - started)
        except BaseException:
            with self._lock_mutex:
                self._saving = False
            raise


def _charged(reported: float | None, estimate: float) -> float:
    """What a paid call cost: the server's figure, else the price table's estimate."""
    return float(reported) if reported is not None else estimate


def _usable_generation(rec: Any, store: BuildStore) -> bool:
    if not isinstance(rec, Mapping):
        return False
    cands = rec.get("candidates")
    if not isinstance(cands, list) or not cands:
        return False
    return all(isinstance(c, Mapping) and store.has_blob(c.get("sha256", "")) for c in cands)


def _file_path(op: OutputPlan, name: str) -> str:
    """Output-relative path of file ``name`` of an output ("" is the output itself)."""
    if not name:
        return op.spec.path
    return f"{op.spec.path.rstrip('/')}/{name}"


def _media_type(fmt: str) -> str:
    try:
        return media_type_for_format(fmt)
    except KeyError:
        return "application/octet-stream"


def _asset_message(name: str, exc: BaseException) -> str:
    text = str(exc)
    if name in text:
        return text
    return f"asset {name!r}: {text}"
