"""The library API: one function per command. Nothing here prints.

Each function takes the spec path and options, does its job, and returns a result
object (or raises a :class:`~recraft_build.errors.RecraftBuildError`). The command
line (``cli``) is a thin layer over these; other tools can call them directly::

    from recraft_build import api
    result = api.build("assets.yaml", jobs=8)
    print(result.summary())

I/O comes in through arguments: ``env`` (defaults to ``os.environ``), ``client`` (an
``httpx.Client`` for providers), ``reporter`` (progress events).
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from recraft_build.engine import keys
from recraft_build.domain import Picture, Spec, sniff_media_type
from recraft_build.errors import FrozenError, BudgetError, UsageError, SpecError, Problem
from recraft_build.engine.executor import Budget, BuildResult, Executor, NullReporter, Reporter
from recraft_build.engine.clean import CleanResult, clean_outputs
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import (
    MANIFEST_NAME,
    OutputState,
    check_output_root,
    manifest_entry,
    sweep_temp_files,
    write_manifest,
)
from recraft_build.engine.plan import Plan, ProviderInfo, make_plan
from recraft_build.providers.base import OPERATIONS

__all__ = [
    "CleanResult",
    "build",
    "cache_gc",
    "cache_info",
    "cache_verify",
    "clean",
    "load",
    "lock_references",
    "open_store",
    "plan",
    "provider_info",
    "resolve_output_dir",
    "select_targets",
    "status",
    "validate",
]

DEFAULT_SPEC = "assets.yaml"

#: Tool operations each protocol offers (recraft-api.md 1.2 and 3.1).
_PROTOCOL_OPERATIONS = {
    "recraft": frozenset(OPERATIONS),
    "replicate": frozenset({"remove_background", "vectorize", "crisp_upscale", "creative_upscale"}),
    "placeholder": frozenset(),
}


# -- loading -----------------------------------------------------------------------
def load(spec_path: str | os.PathLike[str] | None = None) -> Spec:
    """Load and validate a spec (raises SpecError listing every problem)."""
    from recraft_build.spec.loader import load_spec

    path = Path(spec_path or DEFAULT_SPEC)
    if not path.exists():
        if spec_path is None:
            raise UsageError(
                f"no {DEFAULT_SPEC} in {Path.cwd()} (pass -f SPEC, or create {DEFAULT_SPEC}; "
                "see examples/)"
            )
        raise UsageError(f"spec file {path} does not exist")
    return load_spec(path)


def validate(spec_path: str | os.PathLike[str] | None = None) -> Spec:
    """``recraft-build validate``: the loaded spec, or SpecError."""
    return load(spec_path)


def resolve_output_dir(spec: Spec, output_dir: str | os.PathLike[str] | None) -> Path:
    """``-o``, else the spec's ``output_dir`` (relative to the spec), else ``build/`` beside it.

    The folder from the spec must resolve inside the spec's folder, through symlinks
    (SpecError, exit 3, otherwise); ``-o`` is the user's choice and may go anywhere.
    """
    if output_dir:
        return Path(output_dir)
    out = spec.default_output_dir()
    check_output_root(spec.path.parent, out, spec_file=str(spec.path))
    return out


def select_targets(spec: Spec, targets: Sequence[str] | None) -> list[str] | None:
    """Asset names matched by ``targets`` (names or globs); None means all.

    A target that matches nothing is a UsageError with the closest names.
    """
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


# -- providers ------------------------------------------------------------------------
def provider_info(name: str, spec: Spec, env: Mapping[str, str]) -> ProviderInfo:
    """What planning needs of provider ``name`` (``auto`` resolved), without any I/O."""
    chosen = name
    if name == "auto":
        if env.get("RECRAFT_API_TOKEN"):
            chosen = "recraft"
        elif env.get("REPLICATE_API_TOKEN"):
            chosen = "replicate"
        else:
            chosen = "placeholder"
    if chosen == "placeholder":
        return ProviderInfo("placeholder", "placeholder", False, _PROTOCOL_OPERATIONS["placeholder"])
    if chosen in ("recraft", "replicate"):
        return ProviderInfo(chosen, "recraft", True, _PROTOCOL_OPERATIONS[chosen])
    profile = spec.providers.get(chosen)
    if profile is None:
        known = ["auto", "recraft", "replicate", "placeholder", *sorted(spec.providers)]
        raise UsageError(f"unknown provider {name!r} (choose one of: {', '.join(known)})")
    return ProviderInfo(chosen, "recraft", True, _PROTOCOL_OPERATIONS.get(profile.protocol, frozenset()))


def _make_provider(name: str, spec: Spec, env: Mapping[str, str], client: Any, notice: Callable[[str], None]):
    """The provider for a build. A missing token is a usage error (exit 2), found before
    any call: the command was run without the environment it needs."""
    from recraft_build.errors import AuthError
    from recraft_build.providers.registry import make_provider

    try:
        return make_provider(name, profiles=spec.providers, env=env, client=client, notice=notice)
    except AuthError as exc:
        raise UsageError(exc.args[0] if exc.args else str(exc)) from exc


# -- the cache ----------------------------------------------------------------------
def open_store(
    cache_dir: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    warn: Callable[[str], None],
    *,
    remote_cache: str | None = None,
    remote_mode: str | None = None,
):
    """The local store, wrapped with the shared remote cache when one is configured.

    Remote: ``remote_cache`` (``--remote-cache``), else ``RECRAFT_BUILD_REMOTE_CACHE``;
    mode: ``remote_mode``, else ``RECRAFT_BUILD_REMOTE_CACHE_MODE``, else ``read-write``
    (a picture paid for is shared at once; set ``read`` on laptops to leave writing to CI).
    The ``Authorization`` header comes from ``RECRAFT_BUILD_REMOTE_CACHE_AUTH``.
    An ``s3://BUCKET/PREFIX`` remote is a bucket (``remote_s3``: endpoint from
    ``RECRAFT_BUILD_S3_ENDPOINT``, credentials from boto3's own environment chain).
    """
    from recraft_build.cache.local import Store, default_cache_dir

    directory = Path(cache_dir) if cache_dir else default_cache_dir(env)
    local = Store(directory, warn=warn)
    url = remote_cache or env.get("RECRAFT_BUILD_REMOTE_CACHE", "").strip()
    if not url:
        return local
    from recraft_build.cache.remote import RemoteCache, TieredStore, auth_headers
    from recraft_build.cache.s3 import S3Cache, is_s3_url, s3_client

    mode = remote_mode or env.get("RECRAFT_BUILD_REMOTE_CACHE_MODE", "").strip() or "read-write"
    client: Any = None
    try:
        if is_s3_url(url):
            client = s3_client(env)
            remote: Any = S3Cache(url, client=client, mode=mode, warn=warn)
        else:
            import httpx

            client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), limits=httpx.Limits(max_connections=16))
            remote = RemoteCache(url, client=client, mode=mode, headers=auth_headers(env), warn=warn)
    except BaseException:
        if client is not None:
            client.close()
        local.close()
        raise
    return _ClosingTiered(TieredStore(local, remote), client)


class _ClosingTiered:
    """A TieredStore that also closes the HTTP client it was given."""

    def __init__(self, tiered: Any, client: Any):
        self._tiered = tiered
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tiered, name)

    def close(self) -> None:
        try:
            self._tiered.close()
        finally:
            self._client.close()


class _Records(Mapping[str, Any]):
    """A read-only, memoised view of the store's action records, for the pure planner."""

    def __init__(self, store: Any):
        self._store = store
        self._memo: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._memo:
            self._memo[key] = self._store.get_record(key)
        value = self._memo[key]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Steps:
    """The step functions the executor calls (steps.registry plus picture sizes)."""

    def __init__(self) -> None:
        from recraft_build.steps import images, registry

        self._registry = registry
        self.run_step = registry.run_step
        self.check_step_output = registry.check_step_output
        self.export = registry.export
        self.favicon = registry.favicon
        self.picture_size = images.picture_size



def _step_versions() -> dict[str, int]:
    from recraft_build.steps.versions import EXPORT_VERSION, STEP_VERSIONS

    versions = dict(STEP_VERSIONS)
    versions.setdefault("export", EXPORT_VERSION)
    versions.setdefault("favicon", EXPORT_VERSION)
    return versions


def _credits_functions(spec: Spec, family: str) -> tuple[Callable[[Any], float], Callable[[str], float]]:
    """The planner's and executor's price functions, from the one :class:`Pricing`."""
    from recraft_build.engine.pricing import Pricing

    pricing = Pricing(spec.styles, family)
    return pricing.generation, pricing.operation


def _style_refs(spec: Spec, family: str, used: Iterable[str]) -> dict[str, tuple[Any, str, list[Picture]]]:
    """Custom styles used by the plan: name -> (StyleSpec, key, reference pictures)."""
    out = {}
    base = spec.path.parent
    for name in sorted(set(used)):
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
        out[name] = (style, keys.style_key(family, style.base_style, digests), pictures)
    return out


# -- plan / status ----------------------------------------------------------------------
@contextlib.contextmanager
def _bulk_load() -> Iterator[None]:
    """No cyclic GC while the spec, lock and plan are built, then freeze what was made.

    Loading a 10,000-asset spec and lock allocates a few hundred thousand small dicts
    and lists; without this the collector re-scans them again and again (about a
    quarter of a no-op build's time). Frozen objects are never scanned again, and
    collection resumes for everything made afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()



@dataclass
class _Context:
    spec: Spec
    out: Path
    lock: Lock
    store: Any
    info: ProviderInfo
    state: OutputState
    style_refs: dict[str, tuple[Any, str, list[Picture]]] = field(default_factory=dict)


def _prepare(
    spec_path: str | os.PathLike[str] | None,
    *,
    provider: str,
    env: Mapping[str, str],
    cache_dir: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str] | None,
    reporter: Reporter,
    remote_cache: str | None = None,
    remote_mode: str | None = None,
) -> _Context:
    spec = load(spec_path)
    info = provider_info(provider, spec, env)
    out = resolve_output_dir(spec, output_dir)
    lock = Lock.load(spec.lock_path)
    store = open_store(cache_dir, env, reporter.warning, remote_cache=remote_cache, remote_mode=remote_mode)
    state = OutputState(out)
    used = {a.request.style_ref for a in spec.assets if a.request.style_ref}
    style_refs = _style_refs(spec, info.family, used) if used else {}
    return _Context(spec, out, lock, store, info, state, style_refs)


def _plan_with(ctx: _Context, targets: Sequence[str] | None, *, force: bool = False) -> Plan:
    selected = select_targets(ctx.spec, targets)
    gen_credits, op_credits = _credits_functions(ctx.spec, ctx.info.family)
    return make_plan(
        ctx.spec,
        ctx.lock.raw_assets(),
        provider=ctx.info,
        step_versions=_step_versions(),
        records=_Records(ctx.store),
        blob_present=ctx.store.has_blob,
        observe=ctx.state.observe,
        gen_credits=gen_credits,
        op_credits=op_credits,
        style_keys={name: key for name, (_s, key, _p) in ctx.style_refs.items()},
        targets=selected,
        force=force,
    )


def _load_and_plan(
    spec_path: str | os.PathLike[str] | None,
    targets: Sequence[str] | None,
    *,
    force: bool,
    provider: str,
    env: Mapping[str, str] | None,
    cache_dir: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str] | None,
    reporter: Reporter,
    remote_cache: str | None,
    remote_mode: str | None,
) -> tuple[_Context, Plan]:
    """Load everything and plan; the caller closes ``ctx.store``."""
    env = os.environ if env is None else env
    with _bulk_load():
        ctx = _prepare(
            spec_path, provider=provider, env=env, cache_dir=cache_dir, output_dir=output_dir, reporter=reporter,
            remote_cache=remote_cache, remote_mode=remote_mode,
        )
        try:
            return ctx, _plan_with(ctx, targets, force=force)
        except BaseException:
            ctx.store.close()
            raise


def plan(
    spec_path: str | os.PathLike[str] | None = None,
    targets: Sequence[str] | None = None,
    *,
    provider: str = "auto",
    env: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    remote_cache: str | None = None,
    remote_mode: str | None = None,
) -> Plan:
    """``recraft-build plan``: what a build would do and what it would cost.

    No provider call and no writes (beyond opening the cache folder); with a remote
    cache configured it may ask the remote which records it has.
    """
    ctx, the_plan = _load_and_plan(
        spec_path, targets, force=force, provider=provider, env=env, cache_dir=cache_dir,
        output_dir=output_dir, reporter=reporter or NullReporter(), remote_cache=remote_cache,
        remote_mode=remote_mode,
    )
    ctx.store.close()
    return the_plan


def status(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    provider: str = "auto",
    env: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
) -> Plan:
    """``recraft-build status``: every asset's plan, so each is up to date or stale with reasons."""
    return plan(spec_path, None, provider=provider, env=env, cache_dir=cache_dir, output_dir=output_dir, reporter=reporter)


# -- build ----------------------------------------------------------------------------------
def build(
    spec_path: str | os.PathLike[str] | None = None,
    targets: Sequence[str] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    provider: str = "auto",
    jobs: int = 8,
    keep_going: bool = False,
    force: bool = False,
    frozen: bool = False,
    max_credits: float | None = None,
    env: Mapping[str, str] | None = None,
    client: Any = None,
    reporter: Reporter | None = None,
    remote_cache: str | None = None,
    remote_mode: str | None = None,
) -> BuildResult:
    """``recraft-build build``: make every target up to date; return what happened.

    Raises SpecError/PlanError (FrozenError, BudgetError) before any provider call.
    Failed assets are in the result (``result.failed``); it does not raise for them.
    KeyboardInterrupt propagates after the lock and outputs finished so far are saved.
    """
    reporter = reporter or NullReporter()
    env = os.environ if env is None else env
    ctx, the_plan = _load_and_plan(
        spec_path, targets, force=force, provider=provider, env=env, cache_dir=cache_dir,
        output_dir=output_dir, reporter=reporter, remote_cache=remote_cache, remote_mode=remote_mode,
    )
    try:
        if frozen:
            needs = [a.name for a in the_plan.assets if a.status == "generate" or a.credits > 0]
            if needs:
                raise FrozenError(needs)
        if max_credits is not None and the_plan.credits > max_credits:
            raise BudgetError(the_plan.credits, max_credits)
        removed = sweep_temp_files(ctx.out)
        if removed:
            reporter.warning(f"removed {removed} partial file(s) left by an interrupted build in {ctx.out}")
        needs_provider = any(a.status != "up-to-date" for a in the_plan.assets)
        if needs_provider:
            prov = _make_provider(provider, ctx.spec, env, client, reporter.notice)
        else:
            prov = _NoProvider(ctx.info)
        gen_credits, op_credits = _credits_functions(ctx.spec, ctx.info.family)
        executor = Executor(
            store=ctx.store,
            provider=prov,
            lock=ctx.lock,
            output_dir=ctx.out,
            state=ctx.state,
            steps=_Steps() if needs_provider else None,
            reporter=reporter,
            jobs=jobs,
            keep_going=keep_going,
            budget=Budget(max_credits),
            allow_generate=not frozen,
            gen_credits=gen_credits,
            op_credits=op_credits,
        )
        result: BuildResult | None = None
        try:
            result = executor.run(the_plan, ctx.style_refs)
        finally:
            prov.close()
            # Assets removed from the spec drop out of the lock; the manifest follows the lock.
            dropped = ctx.lock.retain([a.name for a in ctx.spec.assets], list(ctx.spec.styles))
            ctx.lock.save()
            changed = result is None or dropped or any(a.status != "up-to-date" for a in result.assets)
            if changed or not (ctx.out / MANIFEST_NAME).exists():
                _write_manifest(ctx)
            flush = getattr(ctx.store, "flush", None)
            if flush is not None:
                # Uploads to the shared cache finish before the build reports success.
                summary = flush()
                if summary.failed:
                    reporter.warning(f"{summary.failed} upload(s) to the remote cache failed; pictures are safe locally")
        if result.interrupted:
            raise KeyboardInterrupt
        return result
    finally:
        ctx.store.close()


class _NoProvider:
    """Stands in when nothing needs a provider (a no-op build makes no client at all)."""

    def __init__(self, info: ProviderInfo):
        self.name, self.family, self.paid = info.name, info.family, info.paid

    def close(self) -> None:
        pass


def _write_manifest(ctx: _Context) -> None:
    assets = {}
    for a in ctx.spec.assets:
        entry = ctx.lock.raw_assets().get(a.name)
        if not entry:
            continue
        files = []
        for o in entry.get("outputs") or []:
            for f in o.get("files") or []:
                files.append(manifest_entry(f))
        assets[a.name] = files
    if assets or (ctx.out / MANIFEST_NAME).exists():
        write_manifest(ctx.out, assets)


# -- clean ------------------------------------------------------------------------------------
def clean(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> CleanResult:
    """``recraft-build clean``: remove files this tool wrote that the spec no longer names
    (see :func:`recraft_build.engine.clean.clean_outputs`)."""
    spec = load(spec_path)
    out = resolve_output_dir(spec, output_dir)
    return clean_outputs(spec, out, Lock.load(spec.lock_path), dry_run=dry_run)


# -- cache commands ---------------------------------------------------------------------------
def cache_info(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
):
    """``recraft-build cache info``: what the local cache holds."""
    env = os.environ if env is None else env
    store = open_store(cache_dir, env, (reporter or NullReporter()).warning)
    try:
        return store.info()
    finally:
        store.close()


def cache_verify(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
):
    env = os.environ if env is None else env
    reporter = reporter or NullReporter()
    store = open_store(cache_dir, env, reporter.warning)
    try:
        return store.verify()
    finally:
        store.close()


def lock_references(lock: Lock) -> tuple[set[str], set[str]]:
    """Every key and blob digest a lock pins (what ``cache gc`` keeps)."""
    keep_keys: set[str] = set()
    keep_digests: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "key" and isinstance(v, str):
                    keep_keys.add(v)
                elif k == "sha256" and isinstance(v, str):
                    keep_digests.add(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(dict(lock.raw_assets()))
    walk({n: lock.style(n) for n in lock.style_names()})
    return keep_keys, keep_digests


def cache_gc(
    lock_paths: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
):
    """``recraft-build cache gc``: keep only what the given lock files pin.

    Every project sharing the cache must be named, or its pictures go (they stay pinned
    by its lock, and come back from a remote cache or cost a new generation).
    """
    env = os.environ if env is None else env
    if not lock_paths:
        raise UsageError("cache gc needs the lock files to keep (e.g. assets.lock)")
    keep_keys: set[str] = set()
    keep_digests: set[str] = set()
    for p in lock_paths:
        path = Path(p)
        if not path.exists():
            raise UsageError(f"lock file {path} does not exist")
        k, d = lock_references(Lock.load(path))
        keep_keys |= k
        keep_digests |= d
    store = open_store(cache_dir, env, (reporter or NullReporter()).warning)
    try:
        return store.gc(keep_keys, keep_digests)
    finally:
        store.close()
