"""Carrying out a plan: generate, restore, run steps, write outputs, update the lock.

The rules that keep money safe:

* A picture a provider returns is put in the store (blob, then the action record)
  before anything else is done with it, so a crash or a failing step never loses it.
* A generation runs under the store's per-key lock, and the record is looked up again
  inside it: two assets with the same request, or two builds sharing one cache, pay once.
* The lock file is updated after each finished asset (see :class:`~recraft_build.engine.groupcommit.GroupCommit`),
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
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from recraft_build.cache.records import (
    Candidate,
    GenerationRecord,
    RecordReader,
    StepOutput,
    StepRecord,
)
from recraft_build.cache.base import BuildStore
from recraft_build.cache.ledger import Ledger
from recraft_build.engine import keys
from recraft_build.domain import Picture, sniff_media_type
from recraft_build.errors import (
    LockMismatch,
    PlanError,
    ProviderError,
    RecraftBuildError,
    StepError,
    StoreError,
)
from recraft_build.engine.chains import ChainScheduler
from recraft_build.engine.exporting import Exports
from recraft_build.engine.groupcommit import GroupCommit
from recraft_build.engine.lock import Lock
from recraft_build.engine.lockdata import LockedAsset, LockedFile, LockedGeneration, LockedOutput, LockedStep
from recraft_build.engine.metering import Meter, MeteredProvider
from recraft_build.engine.styles import ensure_styles
from recraft_build.engine.options import BuildOptions
from recraft_build.engine.outputs import OutputState, write_pinned
from recraft_build.engine.plan import AssetPlan, Plan, PriceList, StepPlan
from recraft_build.engine.results import AssetResult, Budget, BuildResult, NullReporter, Reporter
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


class PictureLost(StoreError):
    """The asset's own picture vanished from the cache (removed or corrupt) mid-build."""


class Cancelled(RecraftBuildError):
    """The build was interrupted; workers stop at the next safe point."""

    exit_code = 130


@dataclass
class _Handoff:
    """A generated asset passed from a network worker to a CPU worker."""

    plan: AssetPlan
    finish: Callable[[AssetPlan], "AssetResult"]


@dataclass(frozen=True)
class _Made:
    """A generation and the pictures just made for it (by digest; empty when found in
    the cache), which the asset's first step uses without reading them back."""

    record: GenerationRecord
    pictures: Mapping[str, Picture]


def _start_workers(pool: ThreadPoolExecutor, count: int) -> None:
    """Start ``count`` idle workers of ``pool`` now, before any work. A thread started
    while others run waits up to a GIL switch interval (5 ms) to begin, so starting
    them one per submitted call spread the first round of calls over 50 ms."""
    ready = threading.Barrier(count + 1)

    def wait() -> None:
        try:
            ready.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass

    for _ in range(count):
        pool.submit(wait)
    wait()


@dataclass
class _Node:
    """A point of a chain: the candidate (step None) or a step's output."""

    step: StepPlan | None
    digest: str | None = None
    media_type: str | None = None
    picture: Picture | None = None


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
        pricing: PriceList,
        options: BuildOptions = BuildOptions(),
        reporter: Reporter | None = None,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.monotonic,
        ledger: Ledger | None = None,
        file_names: Callable[[Any, str, str], str] | None = None,
    ):
        """``steps`` is the ``steps.registry`` module (or a stand-in with its API);
        ``pricing`` prices estimates for the budget; ``budget`` defaults to
        ``options.max_credits``; ``ledger`` is the spend ledger every paid call is
        appended to (default: one in memory); ``file_names(output, path, sha256)`` is
        the file written for a locked ``path`` (``engine.manifests.output_path``)."""
        self.store = store
        self.provider = provider
        self.lock = lock
        self.out = Path(output_dir)
        self.state = state
        self.steps = steps
        self.reporter = reporter or NullReporter()
        self.jobs = max(1, options.jobs)
        self.keep_going = options.keep_going
        self.budget = budget or Budget(options.max_credits)
        self.allow_generate = not options.frozen
        self.pricing = pricing
        self.records = RecordReader(store, self.reporter.warning)
        self.clock = clock
        self.cancel = threading.Event()
        self._failed = threading.Event()
        self._saver = GroupCommit(lock.save, clock)
        self._style_ids: dict[str, str] = {}
        self.meter = Meter(self.budget, ledger=ledger, provider=provider.name, warn=self.reporter.warning)
        self.file_names = file_names or (lambda output, rel, digest: rel)
        self._in_process = getattr(provider, "in_process", False) is True
        self.exports = Exports(
            store=store, records=self.records, state=state, steps=steps, output_dir=self.out,
            file_names=self.file_names, warn=self.reporter.warning, allow_generate=self.allow_generate,
            check_cancel=self._check_cancel, size=self._size,
        )

    # -- the whole build ----------------------------------------------------------
    def run(self, plan: Plan, style_refs: Mapping[str, Any] | None = None) -> BuildResult:
        """Build every asset of ``plan``; return the results (never raises for an asset).

        ``style_refs`` maps custom style name -> (StyleSpec, key, reference Pictures).
        KeyboardInterrupt is turned into a cancelled, saved, partial result.
        """
        self.reporter.start(plan)
        self.meter.spec = str(Path(plan.spec.path).resolve())
        results: dict[str, AssetResult] = {}
        todo: list[AssetPlan] = []
        for ap in plan.assets:
            if ap.status == "up-to-date":
                res = AssetResult(ap.name, "up-to-date", outputs=[f for o in ap.outputs for f in o.locked_files])
                results[ap.name] = res
                self.reporter.asset_finished(res)
            else:
                todo.append(ap)

        failed_styles = self._ensure_styles(todo, style_refs or {})
        interrupted = False
        aborted = False
        chains = ChainScheduler(plan, todo, self.lock)  # takes out of todo what must wait for others
        # Two pools: `jobs` workers wait on the network (generations), and as soon as a
        # picture is stored its steps and outputs move to a CPU-sized pool, so a network
        # worker starts its next request instead of resizing and encoding.
        # A provider that caps its own paid calls at `jobs` (HttpProvider.max_in_flight)
        # gets twice the workers: one worker's next call starts while another downloads.
        # (Not with -j 1, which keeps its promise: one asset after another, in order.)
        gated = self.jobs > 1 and getattr(self.provider, "max_in_flight", None) == self.jobs
        net_workers = self.jobs * (2 if gated else 1)
        net = ThreadPoolExecutor(max_workers=net_workers, thread_name_prefix="rb-net")
        if not self._in_process and sum(ap.status == "generate" for ap in todo) > 1:
            _start_workers(net, net_workers)
        cpu = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="rb-cpu")
        # A provider that draws in this process (the placeholder) is CPU work too: its
        # assets run whole on the CPU workers, so no more threads than cores contend
        # for the GIL, and nothing is handed from one thread to another.
        first = cpu if self._in_process else net
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
                submit(first, self._guarded, ap, self._first_stage)
            if any(ap.status == "generate" for ap in todo):
                cpu.submit(getattr, self.steps, "run_step")  # load the steps while the first calls wait
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
                out.credits = self.meter.credits_for(out.name)
                results[out.name] = out
                self.reporter.asset_finished(out)
                chains.release(out, results, self.reporter, lambda a: submit(first, self._guarded, a, self._first_stage))
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
                        out.credits = self.meter.credits_for(out.name)
                        results[out.name] = out
                    # A handoff's pictures are already stored: the next build restores them free.
            except KeyboardInterrupt:
                # A second Ctrl-C: stop waiting. What finished is saved below; calls still
                # in flight are abandoned (their pictures, if billed, are lost).
                aborted = True
        finally:
            net.shutdown(wait=not aborted, cancel_futures=True)
            cpu.shutdown(wait=not aborted, cancel_futures=True)
            self._saver.save(force=True)
            self.state.save()
        chains.unfinished(results)
        ordered = [results[a.name] for a in plan.assets if a.name in results]
        return BuildResult(assets=ordered, output_dir=self.out, interrupted=interrupted, spend=self.meter.totals())

    def _first_stage(self, ap: AssetPlan) -> "AssetResult | _Handoff":
        """On a network worker: make the picture (if needed), then hand the rest off.
        On a CPU worker (an in-process provider): build the whole asset there."""
        if ap.status != "generate":
            return self._build_asset(ap)
        made = self._generate(ap)
        if self._in_process:
            return self._build_asset_once(ap, made=made)

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
            return AssetResult(
                ap.name, "failed", error=_asset_message(ap.name, exc), reasons=ap.reasons,
                lock_mismatch=isinstance(exc, LockMismatch),
            )
        except Exception as exc:  # a bug: report it on the asset, keep the others safe
            self._failed.set()
            return AssetResult(
                ap.name,
                "failed",
                error=f"asset {ap.name!r}: internal error {type(exc).__name__}: {exc} (please report this bug)",
            )

    # -- custom styles -------------------------------------------------------------
    def _ensure_styles(self, todo: Sequence[AssetPlan], style_refs: Mapping[str, Any]) -> dict[str, str]:
        """Create (once) the custom styles that assets to generate need. Returns failures."""
        ids, failed = ensure_styles(
            (ap.asset.request.style_ref for ap in todo if ap.asset.request.style_ref and ap.status == "generate"),
            style_refs, lock=self.lock, records=self.records, store=self.store, provider=self.provider,
            meter=self.meter, price=float(self.pricing.operation("create_style")) if self.provider.paid else 0.0,
            saved=lambda: self._saver.save(force=True), warn=self.reporter.warning,
        )
        self._style_ids.update(ids)
        return failed

    # -- one asset -----------------------------------------------------------------
    def _build_asset(self, ap: AssetPlan) -> AssetResult:
        try:
            return self._build_asset_once(ap)
        except PictureLost as exc:
            if ap.status != "restore" or not self.allow_generate:
                raise
            if ap.pinned:
                # The lock is the authority: its approved picture is never repainted
                # behind the user's back, even when the cache lost it mid-build.
                raise PictureLost(
                    f"{exc}; it is the approved picture pinned in the lock, so it is not made again "
                    f"(restore it from a remote cache, or `recraft-build reroll {ap.name}` to replace it)"
                ) from exc
            # The cache lost the pinned picture (corrupt or removed) after planning:
            # nothing usable is left of it, so it is made again, as the plan would have.
            self.reporter.warning(f"asset {ap.name!r}: {exc}; generating it again")
            return self._build_asset_once(dataclasses.replace(ap, status="generate", reasons=ap.reasons + ["cached picture lost"]))

    def _build_asset_once(self, ap: AssetPlan, *, made: "_Made | None" = None) -> AssetResult:
        """Build one asset; ``made`` is its generation when a worker already made it."""
        generation: GenerationRecord | None = None
        fresh: Mapping[str, Picture] = {}
        if ap.status == "generate":
            made = made if made is not None else self._generate(ap)
            generation, fresh = made.record, made.pictures
            candidates = generation.candidates
            pick = 0
            status = "generated"
        else:
            candidates = tuple(ap.candidates or ())
            pick = ap.pick
            status = "restored"
        cand = candidates[pick]
        # A picture just made is used as it is: not read back from the cache.
        start = _Node(step=None, digest=cand.sha256, media_type=cand.media_type, picture=fresh.get(cand.sha256))
        # Outputs the plan found up to date keep what the lock says of them: their chains
        # are not walked again, so a provider step whose cached result was evicted is
        # not paid for again just to confirm files that are already right. Nor are those
        # the lock pins whole: written from their blobs (a fresh clone's restore).
        entry = self.lock.asset(ap.name) if ap.status != "generate" else None
        kept = {o.path: o for o in entry.outputs} if entry is not None else {}
        fresh = {id(op) for op in ap.outputs if not (op.spec.path in kept and (op.status == "up-to-date" or write_pinned(
            self.out, self.state, op.final.name, op.final.key, kept[op.spec.path], self.store.get_blob,
            lambda rel, digest, spec=op.spec: self.file_names(spec, rel, digest))))}
        if fresh or entry is None:
            asset_nodes = self._chain(start, ap.steps, ap)
            locked_steps = tuple(self._step_entry(n) for n in asset_nodes[1:])
        else:
            locked_steps = entry.steps
        outputs_entries = []
        files_out: list[LockedFile] = []
        for op in ap.outputs:
            if id(op) not in fresh:
                outputs_entries.append(kept[op.spec.path])
                files_out.extend(kept[op.spec.path].files)
                continue
            nodes = self._chain(asset_nodes[-1], op.steps, ap)
            final_plan = dataclasses.replace(op.final, key=None, digest=None, status="run")
            last = nodes[-1]
            key, files = self.exports.final(last, lambda: self._picture(last, ap, [last]), final_plan, op, ap.name)
            steps = tuple(self._step_entry(n) for n in nodes[1:])
            outputs_entries.append(LockedOutput(op.spec.path, key, steps, files))
            files_out.extend(files)

        gen_entry = self._generation_entry(ap, candidates, pick, generation)
        self.lock.set_asset(ap.name, LockedAsset(gen_entry, locked_steps, tuple(outputs_entries)))
        self._saver.save(force=(status == "generated" and self.provider.paid))
        return AssetResult(ap.name, status, outputs=files_out, reasons=ap.reasons)

    def _generation_entry(
        self,
        ap: AssetPlan,
        candidates: tuple[Candidate, ...],
        pick: int,
        generation: GenerationRecord | None,
    ) -> LockedGeneration:
        """The lock's generation entry after building ``ap``: who made the pictures and
        what they cost stay those of the purchase, whoever restores them later."""
        entry = self.lock.asset(ap.name)
        old = entry.generation if entry is not None else None
        if generation is not None:
            provider, credits = generation.provider, generation.credits
        elif old is not None and old.key == ap.gen_key:
            provider, credits = old.provider, old.credits
        else:
            # Restored from a cache record: keep who sold it and what it cost.
            provider, credits = ap.bought_from, ap.bought_credits
        return LockedGeneration(
            key=ap.gen_key,
            family=ap.family,
            provider=provider,
            request=keys.request_fields(ap.asset.request, style_key=ap.style_key),
            candidates=candidates,
            pick=pick,
            credits=credits,
            roll=ap.roll,
        )

    def _generate(self, ap: AssetPlan) -> "_Made":
        """Make (or find, if another worker/process just made) the asset's candidates."""
        key = ap.gen_key
        # A free provider that draws in this process needs no exclusion: two makers of
        # one picture draw the same bytes and store them idempotently, at no cost.
        free = self._in_process and not self.provider.paid
        with nullcontext() if free else self.store.key_lock(key):
            rec = self.records.generation(key)
            if rec is not None and all(self.store.has_blob(c.sha256) for c in rec.candidates):
                return _Made(rec, {})
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
            try:
                if self.provider.paid:
                    # Appended to the spend ledger as soon as the provider answers; a
                    # server that does not say what it charged (Replicate) is counted at
                    # the price table's figure, so the summary and --max-credits never see 0.
                    result, actual = self.meter.call(
                        lambda: self.provider.generate(request, asset=ap.name),
                        asset=ap.name, operation="generate", key=key, model=request.model,
                        estimate=float(self.pricing.generation(ap.asset.request)), pictures=request.n,
                    )
                else:
                    result, actual = self.provider.generate(request, asset=ap.name), 0.0
            except ProviderError as exc:
                if exc.asset is None:
                    exc.asset = ap.name
                raise
            # Store first, before any check that could fail: this picture is paid for. The
            # blobs and their record go in one index transaction (nothing in it can fail
            # but the store itself), so the record never names a blob the index lacks.
            cands = []
            pictures: dict[str, Picture] = {}
            for pic in result.pictures:
                digest = keys.digest_bytes(pic.data)
                # Kept for the first step, without provider meta (as read from the cache).
                pictures[digest] = Picture(pic.data, pic.media_type, pixels=pic.pixels)
                w, h = self._size(pic)
                cands.append(Candidate(digest, pic.media_type, w, h, len(pic.data), dict(pic.meta)))
            record = GenerationRecord(
                candidates=tuple(cands),
                provider=self.provider.name,
                family=self.provider.family,
                credits=actual,
                credits_estimated=(result.credits is None and self.provider.paid) or None,
                meta=dict(result.meta),
            )
            with self.store.batch():
                for pic in result.pictures:
                    self.store.put_blob(pic.data)
                if cands:
                    self.store.put_record(key, record.to_json())
        if len(cands) != ap.asset.request.n:
            raise ProviderError(
                f"asked for {ap.asset.request.n} picture(s), got {len(cands)} (the ones received are cached)",
                provider=self.provider.name,
                asset=ap.name,
            )
        return _Made(record, pictures)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("interrupted")

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
            _drop_pixels(prev)
        return nodes

    def _resolve_step(self, prev: _Node, sp: StepPlan, ap: AssetPlan, history: list[_Node]) -> _Node:
        assert prev.digest is not None
        key = keys.step_key(
            sp.name, sp.params, sp.version, prev.digest, family=self.provider_family(ap) if sp.operation else None
        )
        plan = dataclasses.replace(sp, key=key)
        pinned = sp.pinned if sp.pinned and key == sp.key else None
        rec = self.records.step(key)
        if rec is not None and pinned and rec.output.sha256 != pinned:
            # The lock is the authority: a record (local or from a shared remote) that
            # disagrees with it is ignored, and the step recomputed here.
            self.reporter.warning(
                f"asset {ap.name!r}: the cache's record of step {sp.name} disagrees with the lock; recomputing it"
            )
            rec = None
        if rec is not None and self.store.has_blob(rec.output.sha256):
            return _Node(step=plan, digest=rec.output.sha256, media_type=rec.output.media_type)
        node = self._run_step(prev, plan, ap, history)
        if pinned and node.digest != pinned and not self.allow_generate:
            raise LockMismatch(
                f"asset {ap.name!r}: step {sp.name} gives {str(node.digest)[:12]}, not the {pinned[:12]} the lock "
                "pins (--frozen writes only what the lock pins: rebuild without --frozen and commit the lock)"
            )
        return node

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
        provider: Any = None
        if sp.operation:
            provider = self.provider
            if self.provider.paid:
                # The call is appended to the ledger (and settled) when the provider
                # answers, before the step checks its result.
                provider = MeteredProvider(self.provider, self.meter, key=sp.key, estimate=self.pricing.operation)
        try:
            if sp.operation and ap.family != self.provider.family:
                raise StepError(
                    f"needs provider {ap.family} to re-run it, but the active provider is "
                    f"{self.provider.name} (set the provider's token, or restore the cache)",
                    step=sp.name,
                    asset=ap.name,
                )
            result, _reported = self.steps.run_step(sp.name, sp.params, src, provider=provider, asset=ap.name)
        except (StepError, ProviderError) as exc:
            if exc.asset is None:
                exc.asset = ap.name
            raise
        actual = provider.credits if isinstance(provider, MeteredProvider) else None
        if sp.operation:
            # A provider result is paid for: store it before checking it.
            digest = self.store.put_blob(result.data)
            self.steps.check_step_output(sp.name, sp.params, src, result, asset=ap.name)
        else:
            self.steps.check_step_output(sp.name, sp.params, src, result, asset=ap.name)
            digest = keys.digest_bytes(result.data)
        w, h = self._size(result)
        output = StepOutput(digest, result.media_type, w, h, len(result.data))
        with self.store.batch():  # a local step's blob and its record: one transaction
            if not sp.operation:
                self.store.put_blob(result.data)
            self.store.put_record(sp.key, StepRecord(sp.name, output, actual).to_json())
        return _Node(step=sp, digest=digest, media_type=result.media_type, picture=result)

    @staticmethod
    def _step_entry(node: _Node) -> LockedStep:
        assert node.step is not None and node.step.key is not None and node.digest is not None
        return LockedStep(node.step.name, node.step.key, node.digest)

def _drop_pixels(node: _Node) -> None:
    """Keep only the bytes of a picture the next step has used: its decoded image
    (``Picture.pixels``) can be large, and a chain would otherwise hold one per step
    until the asset is done. Should it be needed again, it is decoded again."""
    pic = node.picture
    if pic is not None and pic.pixels is not None:
        node.picture = Picture(pic.data, pic.media_type, pic.meta)


def _asset_message(name: str, exc: BaseException) -> str:
    text = str(exc)
    if name in text:
        return text
    return f"asset {name!r}: {text}"
