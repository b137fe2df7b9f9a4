"""Custom styles: created once at the provider, before the assets that use them.

A custom style (``styles:`` in the spec) is made from reference pictures by a paid call
(``create_style``). :func:`ensure_styles` makes each style the assets to generate need,
at most once across builds sharing a cache: the lock's entry is used when its key
matches; else a cache record (looked up again under the key's lock, so two builds do
not both pay); else the provider makes it, through the build's
:class:`~recraft_build.engine.metering.Meter` (budget and spend ledger). The lock then
records who made it and what it cost, whoever made it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from recraft_build.cache.base import BuildStore
from recraft_build.cache.records import RecordReader, StyleRecord
from recraft_build.engine.lock import Lock
from recraft_build.engine.lockdata import LockedStyle
from recraft_build.engine.metering import Meter
from recraft_build.errors import RecraftBuildError

__all__ = ["ensure_styles"]


def ensure_styles(
    needed: Iterable[str],
    style_refs: Mapping[str, Any],
    *,
    lock: Lock,
    records: RecordReader,
    store: BuildStore,
    provider: Any,
    meter: Meter,
    price: float,
    saved: Callable[[], None],
    warn: Callable[[str], None],
) -> tuple[dict[str, str], dict[str, str]]:
    """Make the ``needed`` styles (names; ``style_refs`` maps each to its
    :class:`~recraft_build.engine.session.StyleRef`); ``price`` is a creation's estimate.

    Returns (style ids by name, failures by name: the reason). A failure is warned and
    never raised: only the assets that use the style are skipped. ``saved()`` is called
    after each style enters the lock (a paid style is saved at once).
    """
    ids: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in sorted(set(needed)):
        ref = style_refs.get(name)
        if ref is None:
            failed[name] = "not declared"
            continue
        locked = lock.style(name)
        if locked is not None and locked.key == ref.key:
            ids[name] = locked.style_id
            continue
        try:
            with store.key_lock(ref.key):
                rec = records.style(ref.key)
                if rec is not None:
                    # Made earlier (or elsewhere): keep who sold it and what it cost.
                    entry = LockedStyle(ref.key, rec.style_id, rec.provider, rec.credits)
                elif not provider.paid:
                    sid = f"placeholder-{ref.key[:16]}"
                    store.put_record(ref.key, StyleRecord(sid, provider.name).to_json())
                    entry = LockedStyle(ref.key, sid, provider.name, 0.0)
                else:
                    base, pictures = ref.style.base_style, list(ref.pictures)
                    made, credits = meter.call(
                        lambda: provider.create_style(base, pictures, name=name),
                        asset=None, operation="create_style", style=name, key=ref.key, estimate=price,
                    )
                    store.put_record(ref.key, StyleRecord(made.style_id, provider.name, credits).to_json())
                    entry = LockedStyle(ref.key, made.style_id, provider.name, credits)
            ids[name] = entry.style_id
            lock.set_style(name, entry)
            saved()
        except RecraftBuildError as exc:
            failed[name] = str(exc)
            warn(f"custom style {name!r}: {exc}")
    return ids, failed
