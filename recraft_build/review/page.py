"""The review gallery on disk: one self-contained HTML page and the pictures it shows.

``recraft-build gallery`` writes ``index.html`` and, beside it, ``img/<sha256>.<ext>``:
every picture the page shows, copied from the store (or, for an output file no longer
cached, from the output tree when its digest still matches), with WebP thumbnails of
big raster candidates. The page has its CSS and script inline, loads nothing from the
network and works from ``file://``. ``recraft-build review`` serves the same page with
a token so its candidates can be picked (see :mod:`recraft_build.review.server`).

Where: ``--gallery-dir``, else ``.recraft-build/gallery/`` beside the spec; never
inside the output folder by default, since that folder is what gets published and the
gallery holds every candidate and prompt. ``.recraft-build/`` is a local folder (it
gets a ``.gitignore`` of ``*`` when created here).

Writes never go through a symbolic link: the gallery's folders (``.recraft-build``,
``gallery`` and ``img`` by default; the ``--gallery-dir`` folder and its ``img``
otherwise) must be real folders, or the write is refused with an :class:`OutputError`
naming the path; a file is written to a new temp file beside it and renamed over the
old name (which replaces a link there rather than writing through it). New files get
the usual ``0o666`` less the umask (``0644`` under umask 022), like any file a tool
writes, not the ``0600`` of a private temp file.

The page's markup, style and script are package data (``assets/page.html``,
``page.css``, ``page.js``). Every string from the spec or a lock (prompts arrive in
pull requests) reaches the page as JSON inside a ``<script type="application/json">``
block with ``<``, ``>`` and ``&`` escaped, and the page's script puts it into the DOM
as text only. A Content-Security-Policy with the hashes of the page's own style and
script blocks means injected markup could run nothing anyway.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import io
import json
import os
import re
import secrets
import stat
import string
from pathlib import Path
from typing import Any, Callable, Mapping

from recraft_build import api
from recraft_build.engine.results import WarningReporter
from recraft_build.settings import Settings
from recraft_build.domain import Spec
from recraft_build.engine.outputs import file_sha256
from recraft_build.errors import OutputError
from recraft_build.review import model as gallery_model

__all__ = [
    "GALLERY_DIR",
    "IMAGE_NAME",
    "LOCAL_DIR",
    "THUMB_SIZE",
    "PictureFolder",
    "build_model",
    "content_security_policy",
    "gallery_folder",
    "old_gallery_warning",
    "render_page",
    "write_gallery",
]

#: The local, never-published folder beside the spec that holds the gallery by default.
LOCAL_DIR = ".recraft-build"
#: The gallery's folder inside :data:`LOCAL_DIR` (and, before, inside the output folder).
GALLERY_DIR = "gallery"
#: Names of the gallery's picture files (content-addressed, so copies are never redone).
IMAGE_NAME = re.compile(r"^[0-9a-f]{64}(\.t[0-9]+)?\.(png|webp|jpg|svg|ico)$")
#: Longest side of the thumbnails the page shows for big raster pictures (the full
#: picture is one click away), so a gallery of hundreds of 1-2 MP candidates stays light.
THUMB_SIZE = 384

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# -- where, and writing safely ------------------------------------------------------------------
def gallery_folder(spec: Spec, gallery_dir: str | os.PathLike[str] | None = None) -> Path:
    """The gallery's folder: ``gallery_dir`` (relative to the working folder, like
    ``-o``), else ``.recraft-build/gallery`` beside the spec. No I/O."""
    if gallery_dir:
        return Path(gallery_dir)
    return spec.path.parent / LOCAL_DIR / GALLERY_DIR


def old_gallery_warning(out: Path, folder: Path) -> str | None:
    """A warning when an older recraft-build left its gallery in the output folder,
    where publishing the output folder would publish it; None otherwise."""
    old = out / GALLERY_DIR
    if not (old / "index.html").is_file() or os.path.abspath(old) == os.path.abspath(folder):
        return None
    return (
        f"{old} holds a gallery from an older recraft-build (the gallery is now written to {folder}); "
        f"delete {old} before publishing {out}: it shows every candidate and prompt"
    )


def _real_folders(anchor: Path, parts: list[str]) -> Path:
    """``anchor/parts...``, each part made when missing; refused when one is a symbolic
    link (or not a folder), so nothing is ever written through a link."""
    path = anchor
    for part in parts:
        path = path / part
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot create the gallery folder {path}: {exc.strerror or exc}") from exc
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            raise OutputError(f"cannot use the gallery folder {path}: {exc.strerror or exc}") from exc
        if stat.S_ISLNK(mode):
            raise OutputError(
                f"refusing to write the gallery through {path}: it is a symbolic link (to {os.readlink(path)}); "
                "remove the link, or choose another folder with --gallery-dir"
            )
        if not stat.S_ISDIR(mode):
            raise OutputError(f"cannot write the gallery into {path}: it is not a folder")
    return path


def _prepare_folder(spec: Spec, gallery_dir: str | os.PathLike[str] | None) -> Path:
    """Make the gallery's folder and its ``img`` (see the module's docstring); return the
    gallery's folder. The default location's ``.recraft-build`` gets a ``.gitignore``."""
    folder = gallery_folder(spec, gallery_dir)
    if gallery_dir:
        whole = Path(os.path.abspath(folder))
        anchor, owned = whole.parent, [whole.name] if whole.name else []
    else:
        anchor, owned = spec.path.parent, [LOCAL_DIR, GALLERY_DIR]
    try:
        anchor.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the gallery folder {anchor}: {exc.strerror or exc}") from exc
    _real_folders(anchor, [*owned, "img"])
    if not gallery_dir:
        ignore = anchor / LOCAL_DIR / ".gitignore"
        if not os.path.lexists(ignore):
            _write_file(ignore, b"# recraft-build's local files (the review gallery): never committed or published\n*\n")
    return folder


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a new temp file beside it, then rename), never through
    a symbolic link, with the permissions of any new file (``0o666`` less the umask)."""
    tmp = path.with_name(f".rbtmp-{path.name}.{secrets.token_hex(8)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)  # O_EXCL: a fresh file, never an existing one or a link
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _is_regular(path: Path) -> bool:
    """Whether ``path`` itself (not what a link points to) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


# -- pictures -----------------------------------------------------------------------------
class PictureFolder:
    """The :class:`recraft_build.review.model.Pictures` of a gallery on disk: copies
    pictures into ``folder`` (the gallery's ``img``, made by :func:`_prepare_folder`) by
    digest, makes thumbnails, and remembers which the page uses so others can be pruned.
    """

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
        if not _is_regular(target):
            data = self.store.get_blob(sha256)
            if data is None and fallback:
                data = self._from_outputs(fallback, sha256)
            if data is None:
                return None
            _write_file(target, data)
        self.used.add(name)
        return f"img/{name}"

    def thumb(self, sha256: Any, ext: str | None, full: str | None) -> str | None:
        """A WebP thumbnail (longest side :data:`THUMB_SIZE`) of a big raster picture,
        ``img/<sha>.t<size>.webp``; ``full`` (from :meth:`add`) when it is small or SVG."""
        if full is None or ext not in ("png", "webp", "jpg"):
            return full
        name = f"{sha256}.t{THUMB_SIZE}.webp"
        target = self.folder / name
        if not _is_regular(target):
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
            except (OSError, ValueError, Image.DecompressionBombError):
                return full  # the full picture still shows; a thumbnail is a nicety
            _write_file(target, buf.getvalue())
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


# -- the model with its pictures ------------------------------------------------------------
def build_model(spec_path: str | os.PathLike[str] | None, **options: Any) -> dict[str, Any]:
    """The gallery's data (plain JSON, see :mod:`recraft_build.review.model`), with the
    pictures it shows copied into ``<gallery folder>/img``. Options as for
    :func:`write_gallery`, plus ``provider`` (adds each asset's re-roll cost) and
    ``prune`` (default True: remove pictures the page no longer shows)."""
    return _collect(spec_path, **options)[0]


def _collect(
    spec_path: str | os.PathLike[str] | None,
    *,
    gallery_dir: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_rev: str | None = "HEAD",
    env: Mapping[str, str] | None = None,
    provider: str | None = None,
    warn: Callable[[str], None] | None = None,
    git: Any = None,
    prune: bool = True,
) -> tuple[dict[str, Any], Path, str | None]:
    """(model, gallery folder, old-gallery warning or None)."""
    warn = warn or (lambda message: None)
    settings = Settings(provider=provider or "auto", cache_dir=cache_dir, output_dir=output_dir, env=env)
    spec = api.load(spec_path)
    folder = _prepare_folder(spec, gallery_dir)
    with api.open_session(spec_path, settings, WarningReporter(warn)) as session:
        pics = PictureFolder(folder / "img", session.store, session.out)
        data = gallery_model.assemble(
            session.spec, pics, lock=session.lock, base_rev=base_rev,
            pricing=session.pricing if (provider is not None and session.provider.paid) else None,
            provider_name=session.provider.name if provider is not None else None, git=git,
        )
        if prune:
            pics.prune()
        out = session.out
    return data, folder, old_gallery_warning(out, folder)


# -- the page ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _asset(name: str) -> str:
    """A file of the page's package data (``assets/<name>``), read once."""
    return (importlib.resources.files("recraft_build.review") / "assets" / name).read_text(encoding="utf-8")


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
        f"default-src 'none'; img-src {img}; style-src {_hash_source(_asset('page.css'))}; "
        f"script-src {_hash_source(_asset('page.js'))}; connect-src {connect}; base-uri 'none'; form-action 'none'"
    )


def render_page(model: Mapping[str, Any], *, review: Mapping[str, Any] | None = None) -> str:
    """The HTML of the gallery for ``model`` (from :func:`build_model`).

    ``review`` (``{"token": ...}``) turns on review mode: candidates become clickable
    and writes go to ``/api/...`` with the token.
    """
    data = dict(model)
    data["review"] = dict(review) if review else None
    # Only the data block holds text from the spec or lock, escaped for <script>; the
    # title, CSP, style and script are ours. (Template fills the page's placeholders
    # only; a "$" inside a filled-in value is left alone.)
    return string.Template(_asset("page.html")).substitute(
        csp=content_security_policy(served=bool(review)),
        title="recraft-build review" if review else "recraft-build gallery",
        style=_asset("page.css"),
        data=_json_for_script(data),
        script=_asset("page.js"),
    )


def write_gallery(
    spec_path: str | os.PathLike[str] | None = None,
    *,
    gallery_dir: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_rev: str | None = "HEAD",
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
    git: Any = None,
) -> Path:
    """``recraft-build gallery``: write ``index.html`` and its pictures (in ``img``) into
    the gallery's folder (:func:`gallery_folder`); return the page's path. Open it from
    disk: it needs no server and loads nothing from the network. ``base_rev``: the git
    revision whose lock the states compare with (None: no comparison)."""
    data, folder, old = _collect(
        spec_path, gallery_dir=gallery_dir, output_dir=output_dir, cache_dir=cache_dir, base_rev=base_rev,
        env=env, warn=warn, git=git,
    )
    page = folder / "index.html"
    _write_file(page, render_page(data).encode("utf-8"))
    if old and warn:
        warn(old)
    return page
