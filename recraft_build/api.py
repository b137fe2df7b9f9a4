"""The library API: one function per command. Nothing here prints.

Each function takes the spec path and options, does its job through a
:class:`~recraft_build.engine.session.Session`, and returns a result object (or
raises a :class:`~recraft_build.errors.RecraftBuildError`). The command line
(``cli``) is a thin layer over these; other tools can call them directly::

    from recraft_build import api
    result = api.build("assets.yaml", jobs=8)
    print(result.summary())

Options are keyword arguments: those of :class:`~recraft_build.settings.Settings`
(``provider``, ``cache_dir``, ``output_dir``, ``remote_cache``, ``remote_mode``,
``env``) and, for ``build``, of :class:`~recraft_build.engine.options.BuildOptions`
(``jobs``, ``keep_going``, ``force``, ``frozen``, ``max_credits``). I/O comes in
through arguments: ``env`` (defaults to the process environment), ``client`` (an
``httpx.Client`` for providers), ``reporter`` (progress events).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from recraft_build.cache.base import CacheStore
from recraft_build.cache.ledger import FileLedger, SpendReport, parse_since, summarize
from recraft_build.cache.roots import GcReport
from recraft_build.domain import Spec
from recraft_build.engine.clean import CleanResult, clean_outputs
from recraft_build.engine.executor import BuildResult, NullReporter, Reporter
from recraft_build.engine.lock import Lock
from recraft_build.engine.options import BuildOptions
from recraft_build.engine.plan import Plan
from recraft_build.engine.session import DEFAULT_SPEC, Session, load_spec_file, output_root, select_targets
from recraft_build.errors import LockError, SpecError, UsageError
from recraft_build.providers.capabilities import ProviderInfo
from recraft_build.settings import Settings, choose_provider

__all__ = [
    "DEFAULT_SPEC",
    "BuildOptions",
    "CleanResult",
    "Settings",
    "build",
    "cache_gc",
    "cache_info",
    "cache_verify",
    "clean",
    "load",
    "lock_references",
    "open_session",
    "open_store",
    "plan",
    "provider_info",
    "resolve_output_dir",
    "select_targets",
    "spend",
    "status",
    "validate",
]

_SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))
_BUILD_FIELDS = frozenset(f.name for f in dataclasses.fields(BuildOptions))


def _split(options: Mapping[str, Any], allowed: frozenset[str], command: str) -> tuple[Settings, dict[str, Any]]:
    """Settings from ``options``; the rest (only names in ``allowed``) returned apart."""
    unknown = sorted(set(options) - _SETTINGS_FIELDS - allowed)
    if unknown:
        raise TypeError(f"{command}() got unexpected option(s): {', '.join(unknown)}")
    settings = Settings(**{k: v for k, v in options.items() if k in _SETTINGS_FIELDS})
    return settings, {k: v for k, v in options.items() if k in allowed}


# -- loading -----------------------------------------------------------------------
def load(spec_path: str | os.PathLike[str] | None = None) -> Spec:
    """Load and validate a spec (raises SpecError listing every problem)."""
    return load_spec_file(spec_path)


def validate(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    provider: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Spec:
    """``recraft-build validate``: the loaded spec, or SpecError.

    With ``provider``, also what that provider cannot take (every asset, placed).
    """
    from recraft_build.providers.capabilities import refusals

    spec = load(spec_path)
    if provider:
        info = provider_info(provider, spec, Settings(env=env).environ)
        problems = refusals(list(spec.assets), info, str(spec.path))
        if problems:
            raise SpecError(problems)
    return spec


def resolve_output_dir(spec: Spec, output_dir: str | os.PathLike[str] | None) -> Path:
    """``-o``, else the spec's ``output_dir`` (relative to the spec), else ``build/`` beside
    it; see :func:`recraft_build.engine.session.output_root` (the one rule)."""
    return output_root(spec, output_dir)


def provider_info(name: str, spec: Spec, env: Mapping[str, str]) -> ProviderInfo:
    """What planning needs of provider ``name`` (``auto`` resolved), without any I/O."""
    from recraft_build.providers.capabilities import provider_info as info

    return info(name, profiles=spec.providers, env=env)


def open_session(
    spec_path: str | os.PathLike[str] | None, settings: Settings, reporter: Reporter | None = None
) -> Session:
    """A :class:`Session` on ``spec_path`` with the cache :func:`open_store` opens."""
    return Session.open(spec_path, settings, open_store=_store_for, reporter=reporter, open_ledger=_ledger_for)


def _cache_folder(cache_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The local cache folder: ``cache_dir`` (``--cache-dir``), else the default one."""
    from recraft_build.cache.local import default_cache_dir

    return Path(cache_dir) if cache_dir else default_cache_dir(env)


def _ledger_for(settings: Settings, warn: Callable[[str], None]) -> FileLedger:
    """The spend ledger of the local cache folder (a remote cache has none: money is
    counted where the build ran)."""
    return FileLedger(_cache_folder(settings.cache_dir, settings.environ), warn=warn)


def _store_for(settings: Settings, warn: Callable[[str], None]) -> Any:
    return open_store(
        settings.cache_dir, settings.environ, warn, remote_cache=settings.remote_cache, remote_mode=settings.remote_mode
    )


# -- the cache ----------------------------------------------------------------------
def open_store(
    cache_dir: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    warn: Callable[[str], None],
    *,
    remote_cache: str | None = None,
    remote_mode: str | None = None,
) -> CacheStore:
    """The local store, wrapped with the shared remote cache when one is configured.

    Remote: ``remote_cache`` (``--remote-cache``), else ``RECRAFT_BUILD_REMOTE_CACHE``:
    an ``http(s)://`` Bazel HTTP cache, ``s3://BUCKET/PREFIX``, or a folder (a path or
    ``file:///path``); see :mod:`recraft_build.cache.remotes`. Mode: ``remote_mode``,
    else ``RECRAFT_BUILD_REMOTE_CACHE_MODE``, else ``read-write`` (a picture paid for is
    shared at once; set ``read`` on laptops to leave writing to CI). The caller closes
    the store (which closes the remote's client too).
    """
    from recraft_build.cache.local import Store
    from recraft_build.cache.remotes import remote_url, with_remote

    directory = _cache_folder(cache_dir, env)
    local = Store(directory, warn=warn)
    return with_remote(local, remote_url(remote_cache, env), env=env, mode=remote_mode, warn=warn)


# -- plan / status ----------------------------------------------------------------------
def plan(
    spec_path: str | os.PathLike[str] | None = None,
    targets: Sequence[str] | None = None,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
    shard: str | None = None,
    stamp: Any = None,
    **options: Any,
) -> Plan:
    """``recraft-build plan``: what a build would do and what it would cost.

    No provider call and no writes (beyond opening the cache folder); with a remote
    cache configured it may ask the remote which records it has. ``shard``
    (``"K/N"``) plans that part of the targets only. ``stamp`` (an
    :class:`~recraft_build.engine.stamp.NoopStamp`) records what the no-op fast path
    needs when every target is up to date.
    """
    settings, _ = _split(options, frozenset(), "plan")
    with open_session(spec_path, settings, reporter) as session:
        the_plan = session.plan(targets, force=force, shard=shard)
        if stamp is not None:
            stamp.capture(session, the_plan)
        return the_plan


def status(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    reporter: Reporter | None = None,
    stamp: Any = None,
    **options: Any,
) -> Plan:
    """``recraft-build status``: every asset's plan, so each is up to date or stale with
    reasons, and pictures swapped in the lock by hand reported as such. ``stamp`` as
    for :func:`plan`."""
    options.pop("shard", None)  # status is about every asset
    settings, _ = _split(options, frozenset(), "status")
    with open_session(spec_path, settings, reporter) as session:
        the_plan = session.plan(None, audit=True)
        if stamp is not None:
            stamp.capture(session, the_plan)
        return the_plan


# -- build ----------------------------------------------------------------------------------
def build(
    spec_path: str | os.PathLike[str] | None = None,
    targets: Sequence[str] | None = None,
    *,
    client: Any = None,
    reporter: Reporter | None = None,
    shard: str | None = None,
    stamp: Any = None,
    **options: Any,
) -> BuildResult:
    """``recraft-build build``: make every target up to date; return what happened.

    Raises SpecError/PlanError (FrozenError, BudgetError) before any provider call.
    Failed assets are in the result (``result.failed``); it does not raise for them.
    KeyboardInterrupt propagates after the lock and outputs finished so far are saved.
    ``shard`` (``"K/N"``) builds that part of the targets only
    (:mod:`recraft_build.engine.shards`). ``stamp`` (an
    :class:`~recraft_build.engine.stamp.NoopStamp`) records, when every target ends up
    up to date, what the no-op fast path needs.
    """
    settings, rest = _split(options, _BUILD_FIELDS, "build")
    build_options = BuildOptions(**rest)
    if client is None and choose_provider(settings.provider, settings.environ) != "placeholder":
        from recraft_build.providers.tls import warm_up

        warm_up()  # the HTTP client's TLS context, made while the spec loads
    with open_session(spec_path, settings, reporter) as session:
        the_plan = session.plan(targets, force=build_options.force, shard=shard)
        result = session.build(the_plan, build_options, client=client)
        if stamp is not None:
            stamp.capture(session, the_plan, result)
        return result


# -- spend ------------------------------------------------------------------------------------
def spend(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    by: str | None = None,
    since: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
) -> SpendReport:
    """``recraft-build spend``: what the paid calls appended to the cache folder's spend
    ledger cost, grouped ``by`` asset, spec or day (UTC).

    With ``spec_path``, only that spec's calls (matched by its absolute path; the spec
    is not loaded, so a broken or deleted spec's spending can still be read) and ``by``
    defaults to ``asset``; without, every spec sharing the cache and ``by`` defaults to
    ``spec``. ``since`` (``YYYY-MM-DD``) leaves out earlier days. UsageError for a bad
    ``by`` or ``since``; StoreError if the ledger cannot be read.
    """
    env = Settings(env=env).environ
    first_day = parse_since(since)
    spec = str(Path(spec_path).resolve()) if spec_path is not None else None
    ledger = FileLedger(_cache_folder(cache_dir, env), warn=(reporter or NullReporter()).warning)
    return summarize(
        ledger.entries(), by=by or ("asset" if spec else "spec"), spec=spec, since=first_day, ledger=str(ledger.path)
    )


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
    env = Settings(env=env).environ
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
    env = Settings(env=env).environ
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
    for entry in lock.entries().values():
        keep_keys.update(entry.keys())
        keep_digests.update(entry.digests())
    for name in lock.style_names():
        style = lock.style(name)
        if style is not None:
            keep_keys.add(style.key)
    return keep_keys, keep_digests


def cache_gc(
    lock_paths: Sequence[str | os.PathLike[str]] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    dry_run: bool = False,
) -> GcReport:
    """``recraft-build cache gc``: keep what any live gc root's lock pins, remove the rest.

    Roots are the locks builds registered in this cache (:mod:`recraft_build.cache.roots`),
    so every project sharing the cache keeps its pictures; ``lock_paths`` are extra roots
    for this run (each must exist). A root whose lock file is gone is pruned. With
    ``dry_run`` nothing is removed (roots included): the report says what would go.

    Raises UsageError when a named lock is missing or nothing pins anything (that would
    empty the whole cache: delete the folder for that); LockError (exit 3) for a root's
    lock that cannot be read, since gc cannot tell what it pins.
    """
    env = Settings(env=env).environ
    named = [Path(p) for p in lock_paths]
    for path in named:
        if not path.exists():
            raise UsageError(f"lock file {path} does not exist")
    store = open_store(cache_dir, env, (reporter or NullReporter()).warning)
    try:
        keep_keys: set[str] = set()
        keep_digests: set[str] = set()
        live: list[str] = []
        pruned: list[str] = []
        for root in store.roots():
            if not root.lock.exists():
                pruned.append(str(root.lock))
                if not dry_run:
                    store.remove_root(root)
                continue
            try:
                lock = Lock.load(root.lock)
            except LockError as exc:
                raise LockError(
                    f"{exc} (it is a gc root of the cache {root.file.parent.parent}; cache gc "
                    "removes nothing until it can read every root's lock)"
                ) from exc
            k, d = lock_references(lock)
            keep_keys |= k
            keep_digests |= d
            live.append(str(root.lock))
        for path in named:
            k, d = lock_references(Lock.load(path))
            keep_keys |= k
            keep_digests |= d
            if str(path.resolve()) not in live:
                live.append(str(path.resolve()))
        if not live:
            raise UsageError(
                "cache gc: no lock pins anything in this cache (no build has registered its "
                "lock here yet), so it would remove everything; name the lock files to keep "
                "(recraft-build cache gc path/to/assets.lock), or delete the cache folder to "
                "empty it"
            )
        result = store.gc(keep_keys, keep_digests, dry_run=dry_run)
        return GcReport.of(result, roots=live, pruned_roots=pruned)
    finally:
        store.close()
