"""One command's view of a project: the spec, its lock, the cache and the provider.

Every command (``plan``, ``build``, ``status``, ``pick``, ``reroll``, ``gallery``,
``review``, ``clean``...) opens a :class:`Session` and works through it, so the
environment is read once (:class:`~recraft_build.settings.Settings`), ``auto`` is
resolved once, and the same spec, lock, store and prices serve the whole command::

    with Session.open("assets.yaml", Settings(), open_store=open_store) as s:
        plan = s.plan(["icon-*"])
        result = s.build(plan, BuildOptions(jobs=8))

The session owns the store it opened and closes it. It never prints: notices and
warnings go to the ``reporter`` it is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from recraft_build.cache.base import CacheStore
from recraft_build.cache.ledger import Ledger, MemoryLedger
from recraft_build.cache.records import RecordReader
from recraft_build.domain import Picture, Spec, StyleSpec, sniff_media_type
from recraft_build.engine import keys
from recraft_build.engine.executor import BuildResult, Executor, NullReporter, Reporter
from recraft_build.engine.results import BuildInterrupted
from recraft_build.engine.fastpath import DEFAULT_SPEC  # defined beside the fast path, which cannot import this
from recraft_build.engine.inputs import InputPictures, SourcePicture, read_sources, store_sources
from recraft_build.engine.lock import Lock
from recraft_build.engine.options import BuildOptions
from recraft_build.engine.outputs import OutputState, check_output_root, sweep_temp_files
from recraft_build.engine.plan import Plan, PlanInputs, make_plan
from recraft_build.engine.pricing import Pricing
from recraft_build.errors import (BudgetError, FrozenError, LockMismatch, OutputError, PinnedPictureMissing, Problem,
                                  SpecError, UsageError)
from recraft_build.providers.capabilities import ProviderInfo, refusals
from recraft_build.settings import Settings

if TYPE_CHECKING:
    from recraft_build.engine.shards import Shard

__all__ = ["DEFAULT_SPEC", "Session", "StyleRef", "load_spec_file", "output_root", "select_targets"]



def load_spec_file(spec_path: str | os.PathLike[str] | None) -> Spec:
    """Load and validate a spec (SpecError listing every problem); a missing file is a
    usage error (exit 2), like ``make -f``."""
    from recraft_build.spec.loader import load_spec

    path = Path(spec_path or DEFAULT_SPEC)
    if not path.exists():
        if spec_path is None:
            raise UsageError(
                f"no {DEFAULT_SPEC} in {Path.cwd()} (pass -f SPEC, or create {DEFAULT_SPEC}; see examples/)"
            )
        raise UsageError(f"spec file {path} does not exist")
    return load_spec(path)


def select_targets(
    spec: Spec, targets: Sequence[str] | None, shard: "str | Shard | None" = None
) -> list[str] | None:
    """Asset names matched by ``targets`` (names or globs); None means all.

    A target that matches nothing is a UsageError with the closest names. With
    ``shard`` (``"K/N"``), only the part of those names that shard builds
    (:mod:`recraft_build.engine.shards`), in spec order.
    """
    if shard is not None:
        from recraft_build.engine import shards

        chosen = select_targets(spec, targets)
        names = chosen if chosen is not None else [a.name for a in spec.assets]
        from recraft_build.spec.graph import components

        # A parent and everything made from it stay in one shard: no shard waits for a
        # picture another is making.
        group = components(spec.assets)
        return shards.select(names, shards.parse_shard(shard), group_of=lambda n: group.get(n, n))
    if not targets:
        return None
    names = [a.name for a in spec.assets]
    chosen: list[str] = []
    seen: set[str] = set()
    for t in targets:
        hits = [n for n in names if n == t or fnmatch.fnmatchcase(n, t)]
        if not hits:
            import difflib

            close = difflib.get_close_matches(t, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (run `recraft-build plan` to list assets)"
            raise UsageError(f"target {t!r} matches no asset in {spec.path}{hint}")
        for n in hits:
            if n not in seen:
                seen.add(n)
                chosen.append(n)
    return chosen


def output_root(spec: Spec, explicit: str | os.PathLike[str] | None) -> Path:
    """Where outputs go: ``-o`` (the user's choice, anywhere), else the spec's
    ``output_dir`` (relative to the spec), else ``build/`` beside it. The folder from the
    spec must resolve inside the spec's folder, symlinks included (SpecError, exit 3):
    a pull request cannot point the build at another folder."""
    if explicit:
        return Path(explicit)
    out = spec.default_output_dir()
    check_output_root(spec.path.parent, out, spec_file=str(spec.path))
    return out


@dataclass(frozen=True)
class StyleRef:
    """A custom style a build may need: its spec, key and reference pictures."""

    style: StyleSpec
    key: str
    pictures: tuple[Picture, ...]


@contextlib.contextmanager
def _bulk_load() -> Iterator[bool]:
    """No cyclic GC while the spec, lock and plan are built, then freeze what was made.

    Loading a 10,000-asset spec and lock allocates a few hundred thousand small objects;
    without this the collector re-scans them again and again (about a quarter of a
    no-op build's time). Frozen objects are never scanned again. The freeze is undone
    when the session closes (:meth:`Session.close`), so a long-running process (the
    review server) does not keep growing its frozen set.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield True
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


class Session:
    """A spec with its lock, cache, output folder and provider, resolved once."""

    def __init__(
        self,
        spec: Spec,
        settings: Settings,
        *,
        lock: Lock,
        store: CacheStore,
        provider: ProviderInfo,
        output_dir: Path,
        reporter: Reporter | None = None,
        frozen_gc: bool = False,
        ledger: Ledger | None = None,
    ):
        self.spec = spec
        # Where builds append every paid call (the cache folder's spend ledger).
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.settings = settings
        self.lock = lock
        self.store = store
        self.provider = provider
        self.out = output_dir
        self.reporter: Reporter = reporter or NullReporter()
        self.state = OutputState(output_dir)
        self.pricing = Pricing(spec.styles, provider.family)
        self._styles: dict[str, StyleRef] | None = None
        self._sources: dict[str, SourcePicture] | None = None
        self._frozen_gc = frozen_gc
        self._closed = False

    # -- opening and closing -------------------------------------------------------
    @classmethod
    def open(
        cls,
        spec_path: str | os.PathLike[str] | None,
        settings: Settings,
        *,
        open_store: Callable[[Settings, Callable[[str], None]], CacheStore],
        reporter: Reporter | None = None,
        open_ledger: Callable[[Settings, Callable[[str], None]], Ledger] | None = None,
    ) -> "Session":
        """Load the spec and lock, resolve the provider and output folder, open the cache.

        ``open_store(settings, warn)`` opens the store (the local cache, tiered with a
        remote one when configured); ``open_ledger(settings, warn)`` the spend ledger of
        the same cache folder (default: one in memory). Raises SpecError, LockError or
        UsageError before opening anything that needs closing.
        """
        from recraft_build.providers.capabilities import provider_info

        reporter = reporter or NullReporter()
        with _bulk_load():
            spec = load_spec_file(spec_path)
            info = provider_info(settings.provider, profiles=spec.providers, env=settings.environ)
            out = output_root(spec, settings.output_dir)
            lock = Lock.load(spec.lock_path)
        ledger = open_ledger(settings, reporter.warning) if open_ledger is not None else None
        store = open_store(settings, reporter.warning)
        return cls(spec, settings, lock=lock, store=store, provider=info, output_dir=out, reporter=reporter,
                   frozen_gc=True, ledger=ledger)

    def close(self) -> None:
        """Close the store (idempotent) and undo the load's GC freeze."""
        if self._closed:
            return
        self._closed = True
        try:
            self.store.close()
        finally:
            if self._frozen_gc:
                gc.unfreeze()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- planning ------------------------------------------------------------------
    def styles(self) -> dict[str, StyleRef]:
        """The custom styles the spec's assets use, with their keys (reads reference files)."""
        if self._styles is None:
            used = {a.request.style_ref for a in self.spec.assets if a.request.style_ref}
            self._styles = _style_refs(self.spec, self.provider.family, used) if used else {}
        return self._styles

    def sources(self) -> dict[str, SourcePicture]:
        """The picture files the spec's assets take (``image: {file: ...}``), read and
        hashed once per session (SpecError for one that is not a readable picture)."""
        if self._sources is None:
            self._sources = read_sources(self.spec) if any(a.image for a in self.spec.assets) else {}
        return self._sources

    def plan(
        self,
        targets: Sequence[str] | None = None,
        *,
        force: bool = False,
        audit: bool = False,
        shard: "str | Shard | None" = None,
    ) -> Plan:
        """What building ``targets`` (names or globs; all when None) needs, and costs;
        with ``shard`` (``"K/N"``) only that shard's part of them (:func:`select_targets`).

        Pure over what the session read: no provider call and no write. ``audit``
        (``status``) also compares each pinned generation with the cache's record of its
        key, to report pictures swapped in the lock by hand.
        """
        from recraft_build.steps.versions import step_versions

        self._warm_remote()
        # With a remote, a first plan asks it nothing: the blobs it does not know of are
        # collected, asked about at once, and the plan made again with the answers.
        known = getattr(self.store, "known_blob", None)
        unknown: dict[str, None] = {}

        def first_look(digest: str) -> bool:
            if known(digest):
                return True
            unknown[digest] = None
            return False

        with _bulk_load():
            inputs = PlanInputs(
                provider=self.provider,
                records=RecordReader(self.store, self.reporter.warning, memo=True),
                blob_present=self.store.has_blob if known is None else first_look,
                observe=self._observe(),
                pricing=self.pricing,
                step_versions=step_versions(),
                style_keys={name: ref.key for name, ref in self.styles().items()},
                locked_styles={n: st.key for n in self.lock.style_names() if (st := self.lock.style(n)) is not None},
                sources=self.sources(),
            )
            chosen = select_targets(self.spec, targets, shard)
            plan = make_plan(self.spec, self.lock.entries(), inputs, targets=chosen, force=force)
            if unknown:
                asked = set(unknown)
                self.store.warm(asked)  # type: ignore[attr-defined]
                inputs = dataclasses.replace(inputs, blob_present=lambda d: known(d) or (
                    d not in asked and self.store.has_blob(d)))
                plan = make_plan(self.spec, self.lock.entries(), inputs, targets=chosen, force=force)
        # What the provider cannot take is refused now, with the line, not after paying
        # for half the build (only assets that would call it: approved ones stay usable).
        problems = refusals([a.asset for a in plan.assets if a.status == "generate"], self.provider, str(self.spec.path))
        if problems:
            raise SpecError(problems)
        if audit:
            self._audit(plan, inputs.records)
        if self.spec.atlases:
            plan.atlases = self.publisher().check(frozenset(a.name for a in plan.assets if a.status != "up-to-date"))
        return plan

    def _file_names(self) -> Any:
        """The file written for an output file: content-hashed with ``manifest.hashed_names``."""
        from recraft_build.engine.manifests import output_path

        manifest = self.spec.manifest
        return lambda output, rel, digest: output_path(manifest, output, rel, digest)

    def _observe(self) -> Callable[[str], str | None]:
        """The planner's look at an output file by its logical name (the lock's): with
        hashed names, the file written under its hashed name is the one looked at."""
        if not self.spec.manifest.hashed_names:
            return self.state.observe
        from recraft_build.engine.manifests import file_views

        disk = {v.file.path: v.path for v in file_views(self.spec, self.lock)}
        return lambda rel: self.state.observe(disk.get(rel, rel))

    def _audit(self, plan: Plan, records: RecordReader) -> None:
        """Mark assets whose locked candidates differ from what their key made."""
        for ap in plan.assets:
            entry = self.lock.asset(ap.name)
            if entry is None or entry.generation.key != ap.gen_key:
                continue
            rec = records.generation(ap.gen_key)
            if rec is None:
                continue
            locked = [c.sha256 for c in entry.generation.candidates]
            made = [c.sha256 for c in rec.candidates]
            if locked != made:
                ap.hand_edited = (
                    f"the lock's pictures ({', '.join(d[:12] for d in locked)}) are not what generation "
                    f"{ap.gen_key[:12]} made ({', '.join(d[:12] for d in made)}): edited by hand? "
                    "(restore the lock from git, or reroll the asset)"
                )
    def _warm_remote(self) -> None:
        """With a remote cache, fetch at once the files the lock pins for assets whose
        files are missing here (a fresh clone): the plan finds them in the cache, and the
        executor writes them without another request. A hint only: the plan decides as
        it always does (and asks about any other blob it needs at once, see :meth:`plan`)."""
        warm = getattr(self.store, "warm", None)
        if warm is None:
            return
        disk: dict[str, str] = {}
        if self.spec.manifest.hashed_names:
            from recraft_build.engine.manifests import file_views

            disk = {v.file.path: v.path for v in file_views(self.spec, self.lock)}
        files = []
        for entry in self.lock.entries().values():
            first = next(entry.files(), None)
            if first is not None and not os.path.lexists(os.path.join(self.out, disk.get(first.path, first.path))):
                files.extend(f.sha256 for f in entry.files())
        if files:
            warm((), fetch=files)

    # -- building ------------------------------------------------------------------
    def build(self, plan: Plan, options: BuildOptions, *, client: Any = None) -> BuildResult:
        """Carry out ``plan``: pictures into the cache first, then outputs, the lock after
        each asset, the manifest at the end; remote uploads finish before it returns.

        Raises FrozenError / BudgetError (exit 3) before any provider call; failed
        assets are in the result. KeyboardInterrupt propagates after everything
        finished so far is saved.
        """
        if options.frozen:
            needs = [a.name for a in plan.assets if a.status == "generate" or a.credits > 0]
            if needs:
                raise FrozenError(needs)
        missing = [(a.name, a.candidates[a.pick].sha256) for a in plan.assets if a.pinned_missing and a.candidates]
        # A child to make from a parent's pinned picture that no cache holds: the parent's.
        missing += [a.missing_input for a in plan.assets if a.missing_input is not None]
        missing = list(dict.fromkeys(missing))
        if missing:
            raise PinnedPictureMissing(missing, self.spec.lock_path.name)
        if options.max_credits is not None and plan.credits > options.max_credits:
            raise BudgetError(plan.credits, options.max_credits)
        removed = sweep_temp_files(self.out)
        if removed:
            self.reporter.warning(f"removed {removed} partial file(s) left by an interrupted build in {self.out}")
        needs_provider = any(a.status != "up-to-date" for a in plan.assets)
        if needs_provider and self.sources():
            # The project's picture files go into the cache first: from there they are an
            # asset's picture, or a provider's input, like any other picture.
            store_sources(self.store, self.spec.path.parent, self.sources())
        permit = _LatePermit()
        provider = self._make_provider(client, permit, options.jobs) if needs_provider else None
        if provider is not None:
            # Requests made from pictures get their input pictures from the cache.
            provider = InputPictures(provider, self.store)
        steps = _steps_module() if needs_provider else None
        executor = Executor(
            store=self.store,
            provider=provider or _NoProvider(self.provider),
            lock=self.lock,
            output_dir=self.out,
            state=self.state,
            steps=steps,
            pricing=self.pricing,
            options=options,
            reporter=self.reporter,
            ledger=self.ledger,
            file_names=self._file_names(),
        )
        permit.target = executor.meter.permit_resend
        result: BuildResult | None = None
        try:
            result = executor.run(plan, self.styles() if needs_provider else {})
        finally:
            if provider is not None:
                provider.close()
            # Assets removed from the spec drop out of the lock; the manifest follows the lock.
            dropped = self.lock.retain([a.name for a in self.spec.assets], list(self.spec.styles))
            self.lock.save()
            if self.lock.path.exists():
                self.store.register_root(self.lock.path)  # cache gc keeps what this lock pins
            changed = result is None or dropped or any(a.status != "up-to-date" for a in result.assets)
            # Atlases (not after an interruption), then manifest.json and the TypeScript module.
            publish_errors = self.publisher().run(
                build_atlases=result is not None and not result.interrupted, changed=bool(changed)
            )
            flush = getattr(self.store, "flush", None)
            if flush is not None:
                # Uploads to the shared cache finish before the build reports success.
                summary = flush()
                if summary.failed:
                    self.reporter.warning(
                        f"{summary.failed} upload(s) to the remote cache failed; pictures are safe locally"
                    )
        if result.interrupted:
            raise BuildInterrupted(result)  # a KeyboardInterrupt that carries what was spent
        mismatched = [a for a in result.assets if a.lock_mismatch]
        if mismatched:
            # --frozen: a file would not have been the one the lock pins (nothing of it was
            # written). Not an asset failure but a plan refusal: exit 3.
            raise LockMismatch("; ".join(a.error for a in mismatched))
        if publish_errors:
            raise OutputError("; ".join(publish_errors))
        if self.spec.manifest.hashed_names:
            # Say where each file went: the lock's name is the logical one.
            from recraft_build.engine.manifests import file_views

            disk = {v.file.path: v.path for v in file_views(self.spec, self.lock)}
            for a in result.assets:
                a.files = {o.path: disk[o.path] for o in a.outputs if disk.get(o.path, o.path) != o.path}
        return result

    def _make_provider(self, client: Any, permit: Any = None, jobs: int | None = None) -> Any:
        """The provider for a build. A missing token is a usage error (exit 2), found
        before any call: the command was run without the environment it needs."""
        from recraft_build.errors import AuthError
        from recraft_build.providers.registry import make_provider

        try:
            return make_provider(
                self.settings.provider,
                profiles=self.spec.providers,
                env=self.settings.environ,
                client=client,
                notice=self.reporter.notice,
                # Retries and resends are said as they happen: a flaky network is visible.
                on_retry=self.reporter.notice,
                resend_permit=permit,
                max_in_flight=jobs,  # -j: paid calls under way at once
            )
        except AuthError as exc:
            raise UsageError(exc.args[0] if exc.args else str(exc)) from exc

    def write_manifest(self) -> None:
        """``manifest.json`` (and the TypeScript module) from the lock, as they stand."""
        self.publisher().run(build_atlases=False, changed=True)

    def publisher(self) -> Any:
        """The build's last phase over this session (see :mod:`recraft_build.engine.publish`)."""
        from recraft_build.engine.publish import Publisher

        return Publisher(self.spec, self.lock, store=self.store, out=self.out, state=self.state,
                         warn=self.reporter.warning, notice=self.reporter.notice)


class _NoProvider:
    """Stands in when nothing needs a provider (a no-op build makes no client at all)."""

    def __init__(self, info: ProviderInfo):
        self.name, self.family, self.paid = info.name, info.family, info.paid

    def close(self) -> None:
        pass


def _steps_module() -> Any:
    """The step functions the executor calls, imported when the first one is called: a
    restore whose results are all cached never loads numpy or Pillow for them."""
    return _LazySteps()


class _LazySteps:
    """``steps.registry``, imported on first use (thread-safe: imports are)."""

    def __getattr__(self, name: str) -> Any:
        from recraft_build.steps import registry

        return getattr(registry, name)


def _style_refs(spec: Spec, family: str, used: set[str]) -> dict[str, StyleRef]:
    """Custom styles used by the plan: name -> StyleRef (reference files read and hashed)."""
    out = {}
    base = spec.path.parent
    for name in sorted(used):
        style = spec.styles.get(name)
        if style is None:
            continue
        pictures = []
        digests = []
        for ref in style.references:
            try:
                data = (base / ref).read_bytes()
            except OSError as exc:
                raise SpecError(
                    [Problem(str(spec.path), 0, 0, f"styles.{name}.references", f"cannot read {ref}: {exc.strerror}")]
                ) from exc
            digests.append(keys.digest_bytes(data))
            pictures.append(Picture(data, sniff_media_type(data) or "application/octet-stream"))
        out[name] = StyleRef(style, keys.style_key(family, style.base_style, digests), tuple(pictures))
    return out


class _LatePermit:
    """The meter's resend permit, bound once the executor (and its meter) exists."""

    target: Any = None

    def __call__(self) -> bool:
        return True if self.target is None else bool(self.target())
