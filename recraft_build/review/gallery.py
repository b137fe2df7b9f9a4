"""The review gallery: one self-contained HTML page of every asset and its candidates.

``recraft-build gallery`` writes ``<output folder>/gallery/index.html`` and, beside it,
``gallery/img/<sha256>.<ext>``: every picture the page shows, copied from the store
(or, for an output file no longer cached, from the output tree when its digest still
matches). The page has its CSS and script inline, loads nothing from the network and
works from ``file://``. ``recraft-build review`` serves the same page with a token so
its candidates can be picked (see :mod:`recraft_build.review.server`).

For each asset the page shows its candidates (the pick marked), the request that made
them (rendered prompt and parameters), its steps, its outputs with pixel and byte
sizes, the credits the lock records, and its **state** relative to the lock committed
at ``base_rev`` (``HEAD`` by default):

* ``new``: not in the base lock (or no base: git missing, not a repository, no commit);
* ``changed``: its entry differs (re-picked, regenerated, outputs changed), shown with
  the previously picked picture beside the new candidates;
* ``up-to-date``: identical to the base;
* ``not-built``: in the spec but not in the lock yet;
* ``removed``: in the base lock only.

Every string from the spec or a lock (prompts arrive in pull requests) reaches the
page as JSON inside a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` escaped, and the page's script puts it into the DOM as text only. A
Content-Security-Policy with the hashes of the page's own style and script blocks
means injected markup could run nothing anyway.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from recraft_build import __version__, api
from recraft_build.engine import keys
from recraft_build.domain import Asset
from recraft_build.errors import OutputError, RecraftBuildError
from recraft_build.engine.lock import Lock, atomic_write_bytes
from recraft_build.review.lockdiff import AssetChange, compare, read_lock_at
from recraft_build.engine.outputs import file_sha256

__all__ = [
    "GALLERY_DIR",
    "IMAGE_NAME",
    "build_model",
    "collect",
    "content_security_policy",
    "render_page",
    "write_gallery",
]

#: The gallery's folder inside the output folder.
GALLERY_DIR = "gallery"
#: Names of the gallery's picture files (content-addressed, so copies are never redone).
IMAGE_NAME = re.compile(r"^[0-9a-f]{64}(\.t[0-9]+)?\.(png|webp|jpg|svg|ico)$")
#: Longest side of the thumbnails the page shows for big raster pictures (the full
#: picture is one click away), so a gallery of hundreds of 1-2 MP candidates stays light.
THUMB_SIZE = 384

_EXT_BY_MEDIA = {
    "image/png": "png",
    "image/webp": "webp",
    "image/jpeg": "jpg",
    "image/svg+xml": "svg",
    "image/x-icon": "ico",
    "image/vnd.microsoft.icon": "ico",
}
_EXT_BY_FORMAT = {"png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg", "svg": "svg", "ico": "ico"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# -- pictures -----------------------------------------------------------------------------
class _Pictures:
    """Copies pictures into ``gallery/img`` by digest and remembers which the page uses."""

    def __init__(self, folder: Path, store: Any, out: Path):
        self.folder = folder
        self.store = store
        self.out = out
        self.used: set[str] = set()

    def add(self, sha256: Any, ext: str | None, fallback: str | None = None) -> str | None:
        """``img/<sha>.<ext>`` (relative to the page) or None when the bytes are nowhere.

        ``fallback`` is an output-relative path whose file is used when the store no
        longer has the blob and the file's digest still matches.
        """
        if not isinstance(sha256, str) or not _HEX64.match(sha256) or not ext:
            return None
        name = f"{sha256}.{ext}"
        target = self.folder / name
        if not target.is_file():
            data = self.store.get_blob(sha256)
            if data is None and fallback:
                data = self._from_outputs(fallback, sha256)
            if data is None:
                return None
            try:
                atomic_write_bytes(target, data)
            except OSError as exc:
                raise OutputError(f"cannot write the gallery picture {target}: {exc.strerror or exc}") from exc
        self.used.add(name)
        return f"img/{name}"

    def thumb(self, sha256: Any, ext: str | None, full: str | None) -> str | None:
        """A WebP thumbnail (longest side :data:`THUMB_SIZE`) of a big raster picture,
        ``img/<sha>.t<size>.webp``; ``full`` (from :meth:`add`) when it is small or SVG."""
        if full is None or ext not in ("png", "webp", "jpg"):
            return full
        name = f"{sha256}.t{THUMB_SIZE}.webp"
        target = self.folder / name
        if not target.is_file():
            from PIL import Image  # only galleries pay for the import

            try:
                with Image.open(self.folder / full[len("img/"):]) as im:
                    if max(im.size) <= THUMB_SIZE:
                        return full
                    im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
                    small = im.convert("RGBA")
                small.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                small.save(buf, "WEBP", quality=82, method=4)
                atomic_write_bytes(target, buf.getvalue())
            except (OSError, ValueError, Image.DecompressionBombError):
                return full  # the full picture still shows; a thumbnail is a nicety
        self.used.add(name)
        return f"img/{name}"

    def _from_outputs(self, rel: str, sha256: str) -> bytes | None:
        path = self.out / rel
        try:
            root = self.out.resolve()
            real = path.resolve()
            if root not in real.parents or not real.is_file() or file_sha256(real) != sha256:
                return None
            return real.read_bytes()
        except OSError:
            return None

    def prune(self) -> int:
        """Remove pictures of earlier runs the page no longer shows; return how many."""
        removed = 0
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        for name in names:
            if IMAGE_NAME.match(name) and name not in self.used:
                try:
                    os.unlink(self.folder / name)
                    removed += 1
                except OSError:
                    pass
        return removed


# -- the model ------------------------------------------------------------------------------
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


def _spec_changes(asset: Asset, entry: Mapping[str, Any]) -> list[str]:
    """What in the spec differs from what the lock was built from (cheap: no plan).

    The custom style's key is taken from the lock (computing it means reading the
    reference files), so a changed reference picture is not noticed here; ``status``
    tells the whole truth.
    """
    gen = _dict(entry.get("generation"))
    locked = _dict(gen.get("request"))
    now = keys.request_fields(asset.request, style_key=locked.get("custom_style"))
    notes = sorted(k for k in set(locked) | set(now) if locked.get(k) != now.get(k))
    out = [f"changed: {', '.join(notes)}"] if notes else []
    locked_paths = {str(_dict(o).get("path")) for o in _list(entry.get("outputs"))}
    spec_paths = {o.path for o in asset.outputs}
    if spec_paths - locked_paths:
        out.append("new outputs: " + ", ".join(sorted(spec_paths - locked_paths)))
    if locked_paths - spec_paths:
        out.append("outputs removed: " + ", ".join(sorted(locked_paths - spec_paths)))
    return out


def _candidate(pics: _Pictures, index: int, cand: Any) -> dict[str, Any]:
    c = _dict(cand)
    media = str(c.get("media_type") or "")
    return {
        "index": index,
        "sha256": str(c.get("sha256") or ""),
        "media_type": media,
        "width": _int(c.get("width"), 0) or None,
        "height": _int(c.get("height"), 0) or None,
        "bytes": _int(c.get("bytes"), 0) or None,
        "img": (img := pics.add(c.get("sha256"), _EXT_BY_MEDIA.get(media))),
        "thumb": pics.thumb(c.get("sha256"), _EXT_BY_MEDIA.get(media), img),
    }


def _outputs(pics: _Pictures, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
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
                    "img": pics.add(f.get("sha256"), _EXT_BY_FORMAT.get(fmt), fallback=rel or None),
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


def _previous(pics: _Pictures, base_entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
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


def build_model(
    spec_path: str | os.PathLike[str] | None,
    **options: Any,
) -> dict[str, Any]:
    """The gallery's data (plain JSON), copying the pictures it shows into ``gallery/img``.

    Options as for :func:`collect`, which also returns the gallery folder.
    """
    return collect(spec_path, **options)[0]


def collect(
    spec_path: str | os.PathLike[str] | None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_rev: str | None = "HEAD",
    env: Mapping[str, str] | None = None,
    provider: str | None = None,
    warn: Callable[[str], None] | None = None,
    git: Any = None,
    prune: bool = True,
) -> tuple[dict[str, Any], Path]:
    """(model, gallery folder): the gallery's data as plain JSON, with the pictures it
    shows copied into ``<gallery folder>/img``.

    ``base_rev`` None skips git (every built asset is then ``new``). When git cannot
    give the base (not installed, not a repository, no such revision), the reason is in
    ``model["base"]["note"]`` and every built asset is ``new``: no error. ``provider``
    (``auto``, a name...) adds each asset's estimated re-roll cost, for the review page.
    """
    env = os.environ if env is None else env
    warn = warn or (lambda message: None)
    spec = api.load(spec_path)
    out = api.resolve_output_dir(spec, output_dir)
    lock = Lock.load(spec.lock_path)
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

    reroll_cost: Callable[[Asset], float] | None = None
    provider_name = None
    if provider is not None:
        info = api.provider_info(provider, spec, env)
        provider_name = info.name
        if info.paid:
            from recraft_build.engine.pricing import Pricing

            pricing = Pricing(spec.styles, info.family)

            def reroll_cost(a: Asset) -> float:
                return pricing.generation(a.request)

    folder = out / GALLERY_DIR / "img"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the gallery folder {folder}: {exc.strerror or exc}") from exc
    store = api.open_store(cache_dir, env, warn)
    try:
        pics = _Pictures(folder, store, out)
        assets = []
        spec_assets = {a.name: a for a in spec.assets}
        names = [a.name for a in spec.assets]
        names += sorted((set(head) | set(base or {})) - set(spec_assets))
        for name in names:
            assets.append(
                _asset_model(
                    name, spec_assets.get(name), head.get(name), (base or {}).get(name), base is not None,
                    changes.get(name), pics, reroll_cost,
                )
            )
        if prune:
            pics.prune()
    finally:
        store.close()

    counts: dict[str, int] = {}
    for a in assets:
        counts[a["state"]] = counts.get(a["state"], 0) + 1
    model = {
        "version": __version__,
        "spec": spec.path.name,
        "lock": spec.lock_path.name,
        "base": {"rev": base_rev, "found": base is not None, "note": base_note},
        "provider": provider_name,
        "assets": assets,
        "counts": counts,
        "credits": sum(a["credits"] or 0 for a in assets if a["state"] != "removed"),
    }
    return model, out / GALLERY_DIR


def _asset_model(
    name: str,
    asset: Asset | None,
    entry: Any,
    base_entry: Any,
    have_base: bool,
    change: AssetChange | None,
    pics: _Pictures,
    reroll_cost: Callable[[Asset], float] | None,
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
        "reroll_credits": reroll_cost(asset) if (reroll_cost and asset is not None) else None,
        "in_spec": asset is not None,
    }


# -- the page ----------------------------------------------------------------------------------
def _json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` block or open markup (``</script>``, ``<!--``)."""
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _hash_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(*, served: bool = False) -> str:
    """The page's CSP: its own style and script only (by hash), pictures from beside it,
    requests only back to the review server."""
    img = "'self' data:" if served else "'self' data: file:"
    connect = "'self'" if served else "'none'"
    return (
        f"default-src 'none'; img-src {img}; style-src {_hash_source(_CSS)}; "
        f"script-src {_hash_source(_JS)}; connect-src {connect}; base-uri 'none'; form-action 'none'"
    )


def render_page(model: Mapping[str, Any], *, review: Mapping[str, Any] | None = None) -> str:
    """The HTML of the gallery for ``model`` (from :func:`build_model`).

    ``review`` (``{"token": ...}``) turns on review mode: candidates become clickable
    and writes go to ``/api/...`` with the token.
    """
    data = dict(model)
    data["review"] = dict(review) if review else None
    title = "recraft-build review" if review else "recraft-build gallery"
    csp = content_security_policy(served=bool(review))
    # The data block is escaped for <script>; the title and CSP hold no spec text.
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{_BODY}\n"
        f"<script id=\"gallery-data\" type=\"application/json\">{_json_for_script(data)}</script>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_gallery(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_rev: str | None = "HEAD",
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
    git: Any = None,
) -> Path:
    """``recraft-build gallery``: write ``<output folder>/gallery/index.html`` (and its
    pictures in ``gallery/img``); return the page's path. Open it from disk: it needs no
    server and loads nothing from the network."""
    model, folder = collect(
        spec_path, output_dir=output_dir, cache_dir=cache_dir, base_rev=base_rev, env=env, warn=warn, git=git
    )
    page = folder / "index.html"
    try:
        atomic_write_bytes(page, render_page(model).encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot write the gallery page {page}: {exc.strerror or exc}") from exc
    return page


_BODY = """<header class="top">
  <div class="brand"><span class="logo">◧</span> <b>recraft-build</b> <span id="mode"></span>
    <span class="specname" id="specname"></span></div>
  <div class="tools">
    <input id="filter" type="search" placeholder="Filter by name   /" autocomplete="off" spellcheck="false"
      aria-label="Filter assets by name">
    <div class="chips" id="chips" role="toolbar" aria-label="Filter by state"></div>
  </div>
  <div class="summary" id="summary"></div>
  <button class="help-btn" id="help-btn" title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">?</button>
</header>
<div class="basenote" id="basenote" hidden></div>
<main id="list" aria-live="polite"></main>
<p class="empty" id="empty" hidden>No asset matches the filter.</p>
<div class="toast" id="toast" role="status" hidden></div>
<div class="overlay" id="help" hidden>
  <div class="help-card" role="dialog" aria-label="Keyboard shortcuts">
    <h3>Keyboard</h3>
    <dl>
      <dt>j / ↓</dt><dd>next asset</dd>
      <dt>k / ↑</dt><dd>previous asset</dd>
      <dt>h ← / l →</dt><dd>previous / next candidate</dd>
      <dt>1 … 6</dt><dd id="help-digits">choose candidate 1 … 6</dd>
      <dt>Enter</dt><dd id="help-enter">pick the selected candidate</dd>
      <dt>o</dt><dd>open the selected picture full size</dd>
      <dt>r</dt><dd id="help-r">reroll the asset (asks first; costs credits)</dd>
      <dt>/</dt><dd>filter by name (Esc leaves the filter)</dd>
      <dt>a n c u b x</dt><dd>show all / new / changed / up to date / not built / removed</dd>
      <dt>?</dt><dd>this help</dd>
    </dl>
    <p class="muted">Candidates are numbered from 0, as in <code>recraft-build pick ASSET INDEX</code>.</p>
  </div>
</div>"""

_CSS = r"""
:root{--bg:#f4f4f6;--card:#fff;--ink:#1d1f24;--muted:#6b7080;--line:#e2e3e8;--accent:#4f46e5;
--accent-soft:#eef0ff;--new:#0e7c4a;--new-bg:#e3f6ec;--chg:#b45309;--chg-bg:#fdf0dc;--ok:#5b6170;--ok-bg:#eceef2;
--nb:#7c3aed;--nb-bg:#f1eafe;--rm:#b91c1c;--rm-bg:#fde8e8;--chk1:#fff;--chk2:#e9e9ee;--shadow:0 1px 2px rgba(0,0,0,.06),0 2px 8px rgba(0,0,0,.04)}
@media (prefers-color-scheme:dark){:root{--bg:#15161a;--card:#1e2026;--ink:#e8e9ee;--muted:#9aa0ae;--line:#2e313a;
--accent:#8b85ff;--accent-soft:#27264a;--new:#4ade80;--new-bg:#173326;--chg:#fbbf24;--chg-bg:#3a2c12;--ok:#aab0bf;--ok-bg:#2a2d35;
--nb:#c4a5ff;--nb-bg:#2e2544;--rm:#f87171;--rm-bg:#3d1c1c;--chk1:#2a2c33;--chk2:#23252b;--shadow:0 0 0 0 transparent}}
*{box-sizing:border-box}
html{scroll-padding-top:84px}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.top{position:sticky;top:0;z-index:5;display:flex;align-items:center;gap:14px;padding:10px 20px;background:var(--card);
border-bottom:1px solid var(--line);box-shadow:var(--shadow);flex-wrap:wrap}
.brand{white-space:nowrap;font-size:15px}.logo{color:var(--accent)}
#mode{font-size:11px;text-transform:uppercase;letter-spacing:.06em;padding:2px 7px;border-radius:99px;background:var(--accent-soft);color:var(--accent);margin-left:4px}
.specname{color:var(--muted);margin-left:6px}
.tools{display:flex;align-items:center;gap:10px;flex:1;min-width:300px;flex-wrap:wrap}
#filter{flex:0 1 220px;min-width:140px;padding:7px 10px;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--ink);font:inherit}
#filter:focus{outline:2px solid var(--accent);outline-offset:-1px}
.chips{display:flex;gap:5px;flex-wrap:wrap}
.chip{border:1px solid var(--line);background:var(--card);color:var(--ink);border-radius:99px;padding:3px 9px;font:inherit;font-size:12px;cursor:pointer}
.chip .n{color:var(--muted);margin-left:4px}
.chip[aria-pressed=true]{background:var(--accent);border-color:var(--accent);color:#fff}.chip[aria-pressed=true] .n{color:#dcdcff}
.chip:disabled{opacity:.45;cursor:default}
.summary{color:var(--muted);font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:34ch}
.help-btn{width:28px;height:28px;border-radius:50%;border:1px solid var(--line);background:var(--card);color:var(--muted);cursor:pointer;font-weight:600}
.basenote{margin:12px auto 0;max-width:1400px;padding:8px 14px;border-radius:8px;background:var(--chg-bg);color:var(--chg);font-size:13px}
main{max-width:1400px;margin:0 auto;padding:16px 20px 80px;display:flex;flex-direction:column;gap:14px}
.asset{background:var(--card);border:1px solid var(--line);border-radius:12px;box-shadow:var(--shadow);padding:14px 16px;outline:none;
border-left:4px solid var(--line)}
.asset.st-new{border-left-color:var(--new)}.asset.st-changed{border-left-color:var(--chg)}.asset.st-not-built{border-left-color:var(--nb)}
.asset.st-removed{border-left-color:var(--rm)}
.asset.current{box-shadow:0 0 0 2px var(--accent),var(--shadow)}
.head{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-bottom:10px}
.head h2{font-size:16px;margin:0;font-weight:650;word-break:break-all}
.badge{font-size:11.5px;padding:2px 8px;border-radius:99px;background:var(--ok-bg);color:var(--ok);white-space:nowrap}
.badge.new{background:var(--new-bg);color:var(--new)}.badge.changed{background:var(--chg-bg);color:var(--chg)}
.badge.not-built{background:var(--nb-bg);color:var(--nb)}.badge.removed{background:var(--rm-bg);color:var(--rm)}
.badge.note{background:transparent;border:1px dashed var(--line);color:var(--muted);white-space:normal}
.spacer{flex:1}
.cost{color:var(--muted);font-size:12.5px;white-space:nowrap}
.btn{border:1px solid var(--line);background:var(--card);color:var(--ink);border-radius:8px;padding:5px 11px;font:inherit;font-size:12.5px;cursor:pointer}
.btn:hover{border-color:var(--accent);color:var(--accent)}.btn:disabled{opacity:.5;cursor:wait}
.body{display:grid;grid-template-columns:minmax(0,1.45fr) minmax(300px,1fr);gap:20px}
@media (max-width:980px){.body{grid-template-columns:1fr}}
.pics{display:flex;gap:10px;align-items:flex-start;flex-wrap:wrap}
.cands{display:flex;gap:10px;flex-wrap:wrap}
.cand,.prev{margin:0;width:160px;position:relative}
.frame{width:160px;height:160px;border-radius:9px;border:2px solid var(--line);display:flex;align-items:center;justify-content:center;overflow:hidden;
background-color:var(--chk1);background-image:linear-gradient(45deg,var(--chk2) 25%,transparent 25%,transparent 75%,var(--chk2) 75%),
linear-gradient(45deg,var(--chk2) 25%,transparent 25%,transparent 75%,var(--chk2) 75%);background-size:16px 16px;background-position:0 0,8px 8px;
padding:0;cursor:pointer;transition:border-color .12s,transform .12s}
.frame img{max-width:100%;max-height:100%;display:block}
.cand .frame:hover{border-color:var(--muted)}
.cand.cursor .frame{border-color:var(--accent);border-style:dashed}
.cand.picked .frame{border-color:var(--new);border-style:solid;box-shadow:0 0 0 3px var(--new-bg)}
.cand.busy .frame{opacity:.5}
.prev .frame{border-style:dotted;cursor:default;opacity:.92}
.missing{color:var(--muted);font-size:12px;text-align:center;padding:10px}
figcaption{font-size:12px;color:var(--muted);margin-top:5px;display:flex;gap:6px;align-items:center;white-space:nowrap}
figcaption .idx{font-weight:650;color:var(--ink)}
.tag{font-size:10.5px;text-transform:uppercase;letter-spacing:.05em;padding:1px 6px;border-radius:4px;background:var(--new);color:#fff}
.tag.was{background:var(--muted)}
.open{position:absolute;top:6px;right:6px;width:24px;height:24px;border-radius:6px;background:var(--card);border:1px solid var(--line);color:var(--muted);text-decoration:none;font-size:13px;display:flex;align-items:center;justify-content:center;opacity:0;transition:opacity .12s}
.cand:hover .open,.prev:hover .open,.cand.cursor .open,.open:focus{opacity:1}.open:hover{color:var(--accent);border-color:var(--accent)}
.arrow{margin-top:66px;color:var(--muted);font-size:20px}
.details{min-width:0}
.prompt{margin:0 0 10px;padding:9px 12px;border-radius:8px;background:var(--bg);white-space:pre-wrap;word-break:break-word}
.params{display:flex;flex-wrap:wrap;gap:5px 6px;margin:0 0 10px}
.kv{font-size:12px;border:1px solid var(--line);border-radius:6px;padding:1px 7px;max-width:100%;word-break:break-word}
.kv b{font-weight:600;color:var(--muted);margin-right:4px}
.sw{display:inline-block;width:11px;height:11px;border-radius:3px;border:1px solid var(--line);vertical-align:-1px;margin-right:3px}
.section{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:10px 0 4px}
.chain{display:flex;flex-wrap:wrap;gap:4px;align-items:center;font-size:12.5px}
.chain .st{padding:1px 7px;border-radius:5px;background:var(--accent-soft);color:var(--accent)}
.chain .st i{font-style:normal;color:var(--muted);margin-left:4px}
.chain .to{color:var(--muted)}
table.outs{width:100%;border-collapse:collapse;font-size:12.5px}
table.outs td{padding:4px 6px;border-top:1px solid var(--line);vertical-align:middle}
table.outs td.num{text-align:right;white-space:nowrap;color:var(--muted)}
table.outs .thumb{width:34px;height:34px;border-radius:5px;display:flex;align-items:center;justify-content:center;overflow:hidden;
background:var(--chk1)}
.thumb img{max-width:100%;max-height:100%}
.notes{margin:0 0 8px;padding:0;list-style:none;font-size:12.5px;color:var(--chg)}
.hint{font-size:12px;color:var(--muted);margin-top:8px}
.hint code{user-select:all;background:var(--bg);padding:1px 5px;border-radius:4px}
.empty{text-align:center;color:var(--muted);margin-top:40px}
.toast{position:fixed;left:50%;bottom:22px;transform:translateX(-50%);background:#1d1f24;color:#fff;padding:9px 16px;border-radius:9px;
box-shadow:0 6px 24px rgba(0,0,0,.25);font-size:13.5px;max-width:80vw;z-index:9}
.toast.err{background:#991b1b}
.overlay{position:fixed;inset:0;background:rgba(10,10,20,.45);display:flex;align-items:center;justify-content:center;z-index:10}
.overlay[hidden]{display:none}
.help-card{background:var(--card);color:var(--ink);border-radius:12px;padding:18px 24px;min-width:340px;box-shadow:0 10px 40px rgba(0,0,0,.3)}
.help-card h3{margin:0 0 10px}.help-card dl{display:grid;grid-template-columns:auto 1fr;gap:5px 16px;margin:0}
.help-card dt{font-family:ui-monospace,monospace;color:var(--accent)}.help-card dd{margin:0}
.muted{color:var(--muted);font-size:12.5px}
"""

_JS = r"""
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("gallery-data").textContent);
var REVIEW = DATA.review;
var STATES = [["all","All","a"],["new","New","n"],["changed","Changed","c"],["up-to-date","Up to date","u"],
  ["not-built","Not built","b"],["removed","Removed","x"]];
var IMG_RE = /^img\/[0-9a-f]{64}(\.t[0-9]+)?\.(png|webp|jpg|svg|ico)$/;
var ui = {filter:"", state:"all", current:null, cursor:{}, busy:false};
var list = document.getElementById("list");
var filterBox = document.getElementById("filter");

function h(tag, attrs){
  var el = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "cls") el.className = v;
    else if (k.slice(0,2) === "on") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (var i = 2; i < arguments.length; i++) {
    var c = arguments[i];
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) c.forEach(function(x){ if (x) el.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
    else el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}
function kb(n){ if (!n) return ""; return n < 1024 ? n + " B" : n < 1048576 ? (n/1024).toFixed(1) + " KB" : (n/1048576).toFixed(2) + " MB"; }
function dims(o){ return o && o.width && o.height ? o.width + "×" + o.height : ""; }
function stateLabel(s){ for (var i = 0; i < STATES.length; i++) if (STATES[i][0] === s) return STATES[i][1]; return s; }
function shq(s){ return /^[A-Za-z0-9_.\/:@%+=-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
function picture(img, alt){
  if (img && IMG_RE.test(img)) return h("img", {src: img, alt: alt, loading: "lazy", decoding: "async"});
  return h("div", {cls: "missing", text: "picture not in this machine's cache"});
}
function toast(msg, err){
  var t = document.getElementById("toast");
  t.textContent = msg; t.className = "toast" + (err ? " err" : ""); t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(function(){ t.hidden = true; }, err ? 9000 : 3500);
}

function matches(a){
  if (ui.state !== "all" && a.state !== ui.state) return false;
  var q = ui.filter.trim().toLowerCase();
  if (!q) return true;
  var name = a.name.toLowerCase();
  if (/[*?]/.test(q)) {
    var re = new RegExp("^" + q.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
    return re.test(name);
  }
  return name.indexOf(q) >= 0;
}
function visible(){ return DATA.assets.filter(matches); }
function findAsset(name){ for (var i = 0; i < DATA.assets.length; i++) if (DATA.assets[i].name === name) return DATA.assets[i]; return null; }

function renderChips(){
  var box = document.getElementById("chips"); box.textContent = "";
  STATES.forEach(function(s){
    var n = s[0] === "all" ? DATA.assets.length : (DATA.counts[s[0]] || 0);
    box.appendChild(h("button", {cls: "chip", type: "button", "aria-pressed": String(ui.state === s[0]),
      disabled: (n === 0 && s[0] !== "all" && ui.state !== s[0]) ? true : null, title: "key " + s[2],
      onclick: function(){ setState(s[0]); }}, s[1], h("span", {cls: "n", text: String(n)})));
  });
}
function setState(s){ ui.state = s; saveHash(); render(); }

function renderHeader(){
  document.getElementById("mode").textContent = REVIEW ? "review" : "gallery";
  document.getElementById("specname").textContent = DATA.spec + " · " + DATA.lock;
  var parts = [DATA.assets.length + " assets"];
  if (DATA.credits) parts.push(DATA.credits.toLocaleString() + " credits");
  parts.push(DATA.base.found ? "vs " + DATA.base.rev : "no git base");
  var summary = document.getElementById("summary");
  summary.textContent = parts.join(" · ");
  summary.title = (DATA.credits ? DATA.credits + " credits recorded in the lock; " : "") +
    (DATA.base.found ? "states compare with the lock in " + DATA.base.rev : "no base lock: " + DATA.base.note);
  var note = document.getElementById("basenote");
  if (!DATA.base.found && DATA.base.note) { note.hidden = false; note.textContent = "Every built asset shows as new: " + DATA.base.note; }
  else note.hidden = true;
  if (!REVIEW) {
    document.getElementById("help-enter").textContent = "show the pick command for the selected candidate";
    document.getElementById("help-digits").textContent = "select candidate 1 … 6";
    document.getElementById("help-r").textContent = "(review mode only) reroll";
  }
}

function paramChip(k, v){
  var kids = [h("b", {text: k})];
  if (k === "controls" && v && typeof v === "object") {
    Object.keys(v).sort().forEach(function(ck){
      var cv = v[ck];
      var colors = Array.isArray(cv) ? cv : (typeof cv === "string" ? [cv] : null);
      if (colors && colors.every(function(c){ return typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c); })) {
        kids.push(ck + " ");
        colors.forEach(function(c){ var s = h("span", {cls: "sw", title: c}); s.style.background = c; kids.push(s); });
      } else kids.push(ck + "=" + JSON.stringify(cv) + " ");
    });
  } else kids.push(typeof v === "string" ? v : JSON.stringify(v));
  return h("span", {cls: "kv"}, kids);
}
function chain(steps){
  if (!steps || !steps.length) return null;
  var kids = [];
  steps.forEach(function(s, i){
    if (i) kids.push(h("span", {cls: "to", text: "→"}));
    kids.push(h("span", {cls: "st", title: s.params || ""}, s.name, s.params ? h("i", {text: s.params}) : null));
  });
  return h("div", {cls: "chain"}, kids);
}

function renderAsset(a){
  var cur = ui.cursor[a.name];
  if (cur === undefined || cur >= a.candidates.length) cur = a.pick === null ? 0 : a.pick;
  var head = h("div", {cls: "head"},
    h("h2", {text: a.name}),
    h("span", {cls: "badge " + a.state, text: stateLabel(a.state)}),
    a.changes.map(function(c){ return h("span", {cls: "badge", text: c}); }),
    h("span", {cls: "spacer"}),
    a.credits ? h("span", {cls: "cost", text: a.credits + " credits" + (a.roll ? " · roll " + a.roll : "")}) : null,
    (REVIEW && a.in_spec && a.candidates.length) ? h("button", {cls: "btn reroll", type: "button",
      title: "ask the provider for new candidates (key r)", onclick: function(){ reroll(a); }}, "Reroll…") : null);

  var cands = a.candidates.map(function(c){
    var picked = c.index === a.pick;
    var label = "candidate " + c.index + " of " + a.name;
    var frame = h(REVIEW ? "button" : "div", {cls: "frame", type: REVIEW ? "button" : null,
      title: REVIEW ? (picked ? "the picked candidate" : "pick candidate " + c.index) : "select candidate " + c.index,
      "aria-label": REVIEW ? "pick " + label : label,
      onclick: function(){ ui.current = a.name; ui.cursor[a.name] = c.index; if (REVIEW) pick(a, c.index); else render(); }},
      picture(c.thumb || c.img, label));
    return h("figure", {cls: "cand" + (picked ? " picked" : "") + (c.index === cur ? " cursor" : ""), "data-index": c.index},
      frame,
      h("figcaption", null, h("span", {cls: "idx", text: "#" + c.index}), picked ? h("span", {cls: "tag", text: "picked"}) : null,
        h("span", {text: dims(c)})),
      c.img ? h("a", {cls: "open", href: c.img, target: "_blank", rel: "noopener", title: "open full size (o)", text: "↗"}) : null);
  });
  var pics = [];
  if (a.previous) {
    pics.push(h("figure", {cls: "prev"},
      h("div", {cls: "frame", title: "picked in " + DATA.base.rev}, picture(a.previous.thumb || a.previous.img, "previous pick of " + a.name)),
      h("figcaption", null, h("span", {cls: "tag was", text: "before"}), "#" + a.previous.index + " in " + DATA.base.rev),
      a.previous.img ? h("a", {cls: "open", href: a.previous.img, target: "_blank", rel: "noopener", title: "open full size", text: "↗"}) : null));
    if (cands.length) pics.push(h("div", {cls: "arrow", text: "→"}));
  }
  if (cands.length) pics.push(h("div", {cls: "cands"}, cands));
  else if (!a.previous) pics.push(h("div", {cls: "missing", text: a.state === "not-built" ? "not built yet" : "no candidates"}));

  var details = h("div", {cls: "details"},
    a.notes.length ? h("ul", {cls: "notes"}, a.notes.map(function(n){ return h("li", {text: "⚠ " + n}); })) : null,
    a.prompt ? h("p", {cls: "prompt", text: a.prompt}) : null,
    h("div", {cls: "params"}, Object.keys(a.params).map(function(k){ return paramChip(k, a.params[k]); })),
    a.steps.length ? h("div", {cls: "section", text: "Steps"}) : null,
    chain(a.steps),
    a.outputs.length ? h("div", {cls: "section", text: "Outputs"}) : null,
    a.outputs.length ? h("table", {cls: "outs"}, h("tbody", null, outputRows(a))) : null,
    (!REVIEW && a.in_spec && a.candidates.length > 1 && cur !== a.pick) ? h("div", {cls: "hint"}, "to use #" + cur + ": ",
      h("code", {text: "recraft-build pick " + shq(a.name) + " " + cur})) : null);

  var sec = h("section", {cls: "asset st-" + a.state + (ui.current === a.name ? " current" : ""), tabindex: "-1",
    "data-name": a.name, onclick: function(){ if (ui.current !== a.name) { ui.current = a.name; markCurrent(); } }},
    head, h("div", {cls: "body"}, h("div", {cls: "pics"}, pics), details));
  return sec;
}
function outputRows(a){
  var rows = [];
  a.outputs.forEach(function(o){
    var files = o.files.length ? o.files : [{path: o.path}];
    files.forEach(function(f, i){
      rows.push(h("tr", null,
        h("td", null, f.img ? h("a", {cls: "thumb", href: f.img, target: "_blank", rel: "noopener"}, picture(f.img, f.path)) : h("div", {cls: "thumb"})),
        h("td", null, h("span", {cls: "mono", text: f.path}), (i === 0 && o.steps && o.steps.length) ? chain(o.steps) : null),
        h("td", {cls: "num", text: (f.format || "").toUpperCase()}),
        h("td", {cls: "num", text: dims(f)}),
        h("td", {cls: "num", text: f.bytes ? kb(f.bytes) : (a.state === "not-built" ? "not built" : "")})));
    });
  });
  return rows;
}

function render(){
  renderChips();
  var shown = visible();
  if (ui.current && !shown.some(function(a){ return a.name === ui.current; })) ui.current = shown.length ? shown[0].name : null;
  if (!ui.current && shown.length) ui.current = shown[0].name;
  var y = window.scrollY;
  list.textContent = "";
  shown.forEach(function(a){ list.appendChild(renderAsset(a)); });
  document.getElementById("empty").hidden = shown.length > 0;
  window.scrollTo(0, y);
}
function markCurrent(){
  Array.prototype.forEach.call(list.children, function(el){ el.classList.toggle("current", el.getAttribute("data-name") === ui.current); });
}
function currentEl(){
  var kids = list.children;
  for (var i = 0; i < kids.length; i++) if (kids[i].getAttribute("data-name") === ui.current) return kids[i];
  return null;
}
function move(step){
  var shown = visible(); if (!shown.length) return;
  var i = shown.findIndex(function(a){ return a.name === ui.current; });
  i = Math.max(0, Math.min(shown.length - 1, (i < 0 ? 0 : i + step)));
  ui.current = shown[i].name; markCurrent();
  var el = currentEl(); if (el) { el.scrollIntoView({block: "nearest"}); el.focus({preventScroll: true}); }
}
function moveCursor(step){
  var a = findAsset(ui.current); if (!a || !a.candidates.length) return;
  var cur = ui.cursor[a.name]; if (cur === undefined) cur = a.pick || 0;
  ui.cursor[a.name] = Math.max(0, Math.min(a.candidates.length - 1, cur + step));
  rerenderOne(a);
}
function rerenderOne(a){
  var el = currentEl(); if (!el) return;
  var fresh = renderAsset(a); list.replaceChild(fresh, el); fresh.focus({preventScroll: true});
}

function api(path, body){
  return fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Review-Token": REVIEW.token},
    body: JSON.stringify(body), credentials: "same-origin", cache: "no-store"})
    .then(function(r){ return r.json().catch(function(){ return {error: "HTTP " + r.status}; })
      .then(function(j){ if (!r.ok || j.error) throw new Error(j.error || ("HTTP " + r.status)); return j; }); });
}
function refresh(){
  return fetch("/api/state", {cache: "no-store"}).then(function(r){ if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function(state){ state.review = REVIEW; DATA = state; renderHeader(); render(); });
}
function setBusy(a, on, idx){
  ui.busy = on;
  var el = currentEl();
  if (!el) return;
  Array.prototype.forEach.call(el.querySelectorAll("button"), function(b){ b.disabled = on; });
  if (idx !== undefined) { var f = el.querySelector('.cand[data-index="' + idx + '"]'); if (f) f.classList.toggle("busy", on); }
}
function pick(a, index){
  if (!REVIEW || ui.busy) return;
  if (index === a.pick) { toast("#" + index + " is already the pick of " + a.name); return; }
  ui.current = a.name; markCurrent();
  setBusy(a, true, index);
  toast("picking #" + index + " for " + a.name + "…");
  api("/api/pick", {asset: a.name, index: index})
    .then(function(j){ ui.cursor[a.name] = index; return refresh().then(function(){ toast("picked #" + index + " for " + a.name + (j.summary ? " · outputs rebuilt" : "")); }); })
    .catch(function(e){ toast(e.message, true); setBusy(a, false, index); })
    .then(function(){ ui.busy = false; });
}
function reroll(a){
  if (!REVIEW || ui.busy) return;
  var cost = a.reroll_credits ? "about " + a.reroll_credits + " credits" : (DATA.provider === "placeholder" ? "nothing (placeholder provider)" : "credits");
  var n = a.candidates.length;
  if (!window.confirm("Reroll " + a.name + "?\n\nThis asks " + (DATA.provider || "the provider") + " for " + n +
      " new candidate(s) and costs " + cost + ". The current candidates stay in the cache.")) return;
  ui.current = a.name; markCurrent(); setBusy(a, true);
  toast("rerolling " + a.name + "… (waiting for the provider)");
  api("/api/reroll", {asset: a.name})
    .then(function(){ ui.cursor[a.name] = 0; return refresh().then(function(){ toast("new candidates for " + a.name); }); })
    .catch(function(e){ toast(e.message, true); setBusy(a, false); })
    .then(function(){ ui.busy = false; });
}

function saveHash(){
  var parts = [];
  if (ui.filter) parts.push("q=" + encodeURIComponent(ui.filter));
  if (ui.state !== "all") parts.push("state=" + encodeURIComponent(ui.state));
  try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search); } catch (e) {}
}
function loadHash(){
  location.hash.replace(/^#/, "").split("&").forEach(function(p){
    var kv = p.split("="); if (kv.length !== 2) return;
    var v = decodeURIComponent(kv[1]);
    if (kv[0] === "q") ui.filter = v;
    if (kv[0] === "state" && STATES.some(function(s){ return s[0] === v; })) ui.state = v;
  });
  filterBox.value = ui.filter;
}

filterBox.addEventListener("input", function(){ ui.filter = filterBox.value; ui.current = null; saveHash(); render(); });
filterBox.addEventListener("keydown", function(e){
  if (e.key === "Escape" || e.key === "Enter" || e.key === "ArrowDown") {
    e.preventDefault(); filterBox.blur(); move(0);
  }
});
var help = document.getElementById("help");
document.getElementById("help-btn").addEventListener("click", function(){ help.hidden = !help.hidden; });
help.addEventListener("click", function(e){ if (e.target === help) help.hidden = true; });

document.addEventListener("keydown", function(e){
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
  var k = e.key;
  if (!help.hidden && k !== "?") { if (k === "Escape") help.hidden = true; return; }
  var a = findAsset(ui.current);
  if (k === "j" || k === "ArrowDown") { e.preventDefault(); move(1); }
  else if (k === "k" || k === "ArrowUp") { e.preventDefault(); move(-1); }
  else if (k === "h" || k === "ArrowLeft") { e.preventDefault(); moveCursor(-1); }
  else if (k === "l" || k === "ArrowRight") { e.preventDefault(); moveCursor(1); }
  else if (k === "/") { e.preventDefault(); filterBox.focus(); filterBox.select(); }
  else if (k === "?") { help.hidden = !help.hidden; }
  else if (k === "Escape") { help.hidden = true; }
  else if (/^[1-6]$/.test(k) && a) {
    var i = parseInt(k, 10) - 1;
    if (i < a.candidates.length) { ui.cursor[a.name] = i; if (REVIEW) pick(a, i); else rerenderOne(a); }
  }
  else if (k === "Enter" && a && a.candidates.length) {
    var c = ui.cursor[a.name]; if (c === undefined) c = a.pick || 0;
    if (REVIEW) { e.preventDefault(); pick(a, c); }
  }
  else if (k === "o" && a) {
    var ci = ui.cursor[a.name]; if (ci === undefined) ci = a.pick || 0;
    var cand = a.candidates[ci]; if (cand && cand.img) window.open(cand.img, "_blank", "noopener");
  }
  else if (k === "r" && a && REVIEW) { reroll(a); }
  else {
    for (var s = 0; s < STATES.length; s++) if (STATES[s][2] === k) { setState(STATES[s][0]); break; }
  }
});

loadHash();
renderHeader();
render();
window.__gallery = {ready: true};
})();
"""
