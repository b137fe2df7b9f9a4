"""The gallery's data: from the spec, the lock, the store and the base lock in git to
the plain JSON the page renders.

For each asset the model holds its candidates (the pick marked), the request that
made them (rendered prompt and parameters), its steps, its outputs with pixel and byte
sizes, the credits the lock records, the estimated cost of a re-roll (when a paid
provider is named) and its **state** relative to the lock committed at ``base_rev``
(``HEAD`` by default):

* ``new``: not in the base lock (or no base: git missing, not a repository, no commit);
* ``changed``: its entry differs (re-picked, regenerated, outputs changed), shown with
  the previously picked picture beside the new candidates;
* ``up-to-date``: identical to the base;
* ``not-built``: in the spec but not in the lock yet;
* ``removed``: in the base lock only.

Pictures are named by the :class:`Pictures` given to :func:`assemble` (the page's
folder of copies, :class:`recraft_build.review.page.PictureFolder`): this module reads
the store only through it and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Protocol

from recraft_build import __version__
from recraft_build.domain import Asset, GenerationRequest, Spec
from recraft_build.engine import keys
from recraft_build.engine.lock import Lock
from recraft_build.engine.pricing import Pricing
from recraft_build.errors import RecraftBuildError
from recraft_build.review.lockdiff import AssetChange, compare, read_lock_at


__all__ = ["EXT_BY_FORMAT", "EXT_BY_MEDIA", "Pictures", "assemble"]

#: A picture's file extension by its media type (candidates) ...
EXT_BY_MEDIA = {
    "image/png": "png",
    "image/webp": "webp",
    "image/jpeg": "jpg",
    "image/svg+xml": "svg",
    "image/x-icon": "ico",
    "image/vnd.microsoft.icon": "ico",
}
#: ... and by its format (output files).
EXT_BY_FORMAT = {"png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg", "svg": "svg", "ico": "ico"}


class Pictures(Protocol):
    """Where the model's pictures come from, and the names the page uses for them."""

    def add(self, sha256: Any, ext: str | None, fallback: str | None = None) -> str | None:
        """The page-relative name of the picture with this digest, or None when its
        bytes are nowhere. ``fallback``: an output-relative path to use when the store
        no longer has the blob and the file's digest still matches."""

    def thumb(self, sha256: Any, ext: str | None, full: str | None) -> str | None:
        """A small version of the picture ``full`` (from :meth:`add`), or ``full``."""


def assemble(
    spec: Spec,
    pictures: Pictures,
    *,
    lock: Lock,
    base_rev: str | None = "HEAD",
    pricing: Pricing | None = None,
    provider_name: str | None = None,
    git: Any = None,
) -> dict[str, Any]:
    """The gallery's data for ``spec`` and its ``lock`` as plain JSON, its pictures named
    by ``pictures``.

    ``base_rev`` None skips git (every built asset is then ``new``). When git cannot
    give the base (not installed, not a repository, no such revision), the reason is in
    ``model["base"]["note"]`` and every built asset is ``new``: no error. ``pricing``
    (the session's, when its provider is paid) adds each asset's re-roll cost, priced as
    ``plan`` prices it. ``git`` is the git runner for
    :func:`recraft_build.review.lockdiff.read_lock_at` (tests swap it).
    """
    head = dict(lock.raw_assets())

    base: dict[str, Any] | None = None
    base_note = ""
    if base_rev is None:
        base_note = "no base revision asked for"
    else:
        try:
            base = read_lock_at(spec.lock_path, base_rev, git=git)
            if base is None:
                base_note = f"{spec.lock_path.name} is not in {base_rev}"
        except RecraftBuildError as exc:
            base_note = str(exc)
    changes = {c.name: c for c in compare(base, head).changes} if base is not None else {}

    reroll_cost: Callable[[GenerationRequest], float] | None = pricing.generation if pricing is not None else None

    spec_assets = {a.name: a for a in spec.assets}
    names = _beside_parents(spec)
    names += sorted((set(head) | set(base or {})) - set(spec_assets))
    assets = [
        _asset_model(
            name, spec_assets.get(name), head.get(name), (base or {}).get(name), base is not None,
            changes.get(name), pictures, reroll_cost,
        )
        for name in names
    ]

    counts: dict[str, int] = {}
    for a in assets:
        counts[a["state"]] = counts.get(a["state"], 0) + 1
    return {
        "version": __version__,
        "spec": spec.path.name,
        "lock": spec.lock_path.name,
        "base": {"rev": base_rev, "found": base is not None, "note": base_note},
        "provider": provider_name,
        "assets": assets,
        "counts": counts,
        "credits": sum(a["credits"] or 0 for a in assets if a["state"] != "removed"),
    }


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _step_label(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A step for display: ``resize`` with ``width: 64, fit: contain`` (spec order)."""
    shown = []
    for k, v in params.items():
        if k == "engine" and v in (None, "auto"):
            continue
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        shown.append(f"{k}: {text}")
    return {"name": str(name), "params": ", ".join(shown)}


def _beside_parents(spec: Spec) -> list[str]:
    """Asset names in spec order, each asset made from another placed right after its
    family (a parent, then what is made from it, then the next asset)."""
    from recraft_build.spec.graph import build_order, components

    group = components(spec.assets)
    first: dict[str, int] = {}
    for i, a in enumerate(spec.assets):
        first.setdefault(group[a.name], i)
    order = {a.name: i for i, a in enumerate(build_order(spec.assets))}
    return sorted((a.name for a in spec.assets), key=lambda n: (first[group[n]], order[n]))


def _spec_changes(asset: Asset, entry: Mapping[str, Any]) -> list[str]:
    """What in the spec differs from what the lock was built from (cheap: no plan).

    The custom style's key is taken from the lock (computing it means reading the
    reference files), so a changed reference picture is not noticed here; ``status``
    tells the whole truth.
    """
    gen = _dict(entry.get("generation"))
    locked = _dict(gen.get("request"))
    now = keys.request_fields(asset.request, style_key=locked.get("custom_style"))
    # The digests of input pictures are known only once the parent is picked (the plan
    # fills them in); the spec alone has none, which is no change.
    pending = {"image", "mask"} if asset.inputs() else set()
    notes = sorted(
        k for k in set(locked) | set(now) if locked.get(k) != now.get(k) and not (k in pending and k not in now)
    )
    out = [f"changed: {', '.join(notes)}"] if notes else []
    locked_paths = {str(_dict(o).get("path")) for o in _list(entry.get("outputs"))}
    spec_paths = {o.path for o in asset.outputs}
    if spec_paths - locked_paths:
        out.append("new outputs: " + ", ".join(sorted(spec_paths - locked_paths)))
    if locked_paths - spec_paths:
        out.append("outputs removed: " + ", ".join(sorted(locked_paths - spec_paths)))
    return out


def _candidate(pics: Pictures, index: int, cand: Any) -> dict[str, Any]:
    c = _dict(cand)
    media = str(c.get("media_type") or "")
    return {
        "index": index,
        "sha256": str(c.get("sha256") or ""),
        "media_type": media,
        "width": _int(c.get("width"), 0) or None,
        "height": _int(c.get("height"), 0) or None,
        "bytes": _int(c.get("bytes"), 0) or None,
        "img": (img := pics.add(c.get("sha256"), EXT_BY_MEDIA.get(media))),
        "thumb": pics.thumb(c.get("sha256"), EXT_BY_MEDIA.get(media), img),
    }


def _outputs(pics: Pictures, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    outs = []
    for o in _list(entry.get("outputs")):
        o = _dict(o)
        files = []
        for f in _list(o.get("files")):
            f = _dict(f)
            fmt = str(f.get("format") or "").lower()
            rel = str(f.get("path") or "")
            files.append(
                {
                    "path": rel,
                    "format": fmt,
                    "width": _int(f.get("width"), 0) or None,
                    "height": _int(f.get("height"), 0) or None,
                    "bytes": _int(f.get("bytes"), 0) or None,
                    "sha256": str(f.get("sha256") or ""),
                    "img": pics.add(f.get("sha256"), EXT_BY_FORMAT.get(fmt), fallback=rel or None),
                }
            )
        steps = [{"name": str(_dict(s).get("step") or "?"), "params": ""} for s in _list(o.get("steps"))]
        outs.append({"path": str(o.get("path") or ""), "steps": steps, "files": files})
    return outs


def _change_labels(change: AssetChange | None) -> list[str]:
    if change is None:
        return []
    labels = []
    for kind in change.kinds:
        if kind == "re-picked":
            labels.append(f"re-picked #{change.old_pick} → #{change.new_pick}")
        elif kind == "regenerated":
            labels.append("regenerated" + (f" ({change.reason})" if change.reason else ""))
        elif kind == "outputs":
            n = len(change.outputs_changed) + len(change.outputs_added) + len(change.outputs_removed)
            labels.append(f"{n} output file(s) changed")
    return labels


def _previous(pics: Pictures, base_entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The picture the base lock picked (for a changed or removed asset)."""
    if not base_entry:
        return None
    gen = _dict(base_entry.get("generation"))
    cands = _list(gen.get("candidates"))
    pick = _int(gen.get("pick"), 0)
    if not 0 <= pick < len(cands):
        return None
    c = _candidate(pics, pick, cands[pick])
    c["candidates"] = len(cands)
    c["key"] = str(gen.get("key") or "")
    return c


def _asset_model(
    name: str,
    asset: Asset | None,
    entry: Any,
    base_entry: Any,
    have_base: bool,
    change: AssetChange | None,
    pics: Pictures,
    reroll_cost: Callable[[GenerationRequest], float] | None,
) -> dict[str, Any]:
    entry = _dict(entry) if entry is not None else None
    gen = _dict((entry or {}).get("generation"))
    notes: list[str] = []
    if entry is None and asset is None:
        state = "removed"
    elif entry is None:
        state = "not-built"
    elif not have_base or base_entry is None:
        state = "new"
    elif change is not None:
        state = "changed"
    else:
        state = "up-to-date"
    if asset is None and entry is not None:
        notes.append("no longer in the spec: the next build drops it from the lock")
    if asset is not None and entry is not None:
        notes.extend(_spec_changes(asset, entry))
    if asset is not None and entry is None:
        notes.append(f"not built yet: run recraft-build build {name}")

    if gen:
        request = _dict(gen.get("request"))
    elif asset is not None:
        request = keys.request_fields(asset.request)
    else:
        request = _dict(_dict(_dict(base_entry).get("generation")).get("request"))
    prompt = str(request.pop("prompt", "") or "")
    params = {str(k): v for k, v in sorted(request.items())}

    candidates = [_candidate(pics, i, c) for i, c in enumerate(_list(gen.get("candidates")))]
    pick = _int(gen.get("pick"), 0) if candidates else None
    previous = None
    if state in ("changed", "removed"):
        previous = _previous(pics, _dict(base_entry))
        if previous and candidates and pick is not None and 0 <= pick < len(candidates):
            if previous["sha256"] == candidates[pick]["sha256"]:
                previous = None  # same picture (only outputs changed): nothing to compare

    if asset is not None:
        steps = [_step_label(s.name, s.params) for s in asset.steps]
        spec_outputs = {o.path: [_step_label(s.name, s.params) for s in o.steps] for o in asset.outputs}
    else:
        steps = [{"name": str(_dict(s).get("step") or "?"), "params": ""} for s in _list((entry or {}).get("steps"))]
        spec_outputs = {}
    outputs = _outputs(pics, entry or {})
    for o in outputs:
        if o["path"] in spec_outputs:
            o["steps"] = spec_outputs[o["path"]]
    if entry is None and asset is not None:
        outputs = [{"path": p, "steps": s, "files": []} for p, s in spec_outputs.items()]

    return {
        "name": name,
        "state": state,
        "changes": _change_labels(change),
        "notes": notes,
        "prompt": prompt,
        "params": params,
        "candidates": candidates,
        "pick": pick,
        "previous": previous,
        "steps": steps,
        "outputs": outputs,
        "credits": _num(gen.get("credits")),
        "roll": _int(gen.get("roll"), 0),
        "family": str(gen.get("family") or ""),
        "provider": str(gen.get("provider") or ""),
        "reroll_credits": reroll_cost(asset.request) if (reroll_cost and asset is not None) else None,
        "in_spec": asset is not None,
    }

