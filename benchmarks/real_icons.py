"""Real icons with true alpha for the post-processing benchmarks, from npm packages.

Nothing here is committed art: each package is fetched with ``npm pack`` (the npm
registry's ordinary client) into a cache folder the first time, then read from there.

Sets (all MIT-licensed icon packages):

=============  =================================================  ==========================
set            package                                            what
=============  =================================================  ==========================
``twemoji``    ``@twemoji/svg`` 15.0.0                            flat emoji (SVG)
``fluent``     ``@iconify-json/fluent-emoji`` 1.2.7               gradient-shaded emoji (SVG)
``fluent3d``   ``@lobehub/fluent-emoji-3d`` 1.1.0                 3D-rendered emoji (256 px WebP)
``lineart``    ``@iconify-json/fluent-emoji-high-contrast`` 1.2.6 black line art (SVG)
=============  =================================================  ==========================

SVGs are rendered with resvg at the size asked; the 3D set is enlarged from 256 px
with Lanczos (soft, wide edges: the hardest alpha in the benchmark). Each icon takes
80 % of the canvas, centred, like a generated icon with a margin. ``prompt`` is the
icon's name (Unicode name of the emoji, or the icon set's name), which is what the
key picker sees in place of a prompt.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import tarfile
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from recraft_build.steps.images import rasterize_svg

PACKAGES = {
    "twemoji": "@twemoji/svg@15.0.0",
    "fluent": "@iconify-json/fluent-emoji@1.2.7",
    "fluent3d": "@lobehub/fluent-emoji-3d@1.1.0",
    "lineart": "@iconify-json/fluent-emoji-high-contrast@1.2.6",
}
DEFAULT_CACHE = Path(os.environ.get("RECRAFT_BENCH_ICONS", Path(tempfile.gettempdir()) / "recraft-bench-icons"))


@dataclass(frozen=True)
class Icon:
    """One icon: its set, name, a prompt-like description and a loader."""

    set: str
    name: str
    prompt: str
    svg: bytes | None = None
    raster: bytes | None = None

    def render(self, size: int, fill: float = 0.8) -> np.ndarray:
        """The icon on a transparent ``size`` x ``size`` canvas: H x W x 4 float32, 0..255."""
        inner = max(1, round(size * fill))
        if self.svg is not None:
            art = rasterize_svg(self.svg, inner, inner)
        else:
            assert self.raster is not None
            art = Image.open(io.BytesIO(self.raster)).convert("RGBA")
            # Resize premultiplied, so transparent pixels' colour does not bleed in.
            art = art.convert("RGBa").resize((inner, inner), Image.Resampling.LANCZOS).convert("RGBA")
        canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        canvas.alpha_composite(art, ((size - inner) // 2, (size - inner) // 2))
        return np.asarray(canvas, dtype=np.float32)


def _tarball(spec: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    stem = spec.lstrip("@").replace("/", "-").replace("@", "-")
    found = sorted(cache.glob(f"{stem}*.tgz"))
    if found:
        return found[0]
    out = subprocess.run(["npm", "pack", "--silent", spec], cwd=cache, check=True,
                         capture_output=True, text=True)
    return cache / out.stdout.strip().splitlines()[-1]


def _emoji_name(stem: str) -> str:
    try:
        chars = "".join(chr(int(part, 16)) for part in stem.split("-"))
        names = [unicodedata.name(ch) for ch in chars if unicodedata.category(ch) not in ("Mn", "Cf")]
        return " ".join(names).lower() or stem
    except (ValueError, KeyError, OverflowError):
        return stem


def _iconify(path: Path, set_name: str) -> Iterator[Icon]:
    with tarfile.open(path) as tar:
        data = json.load(tar.extractfile("package/icons.json"))  # type: ignore[arg-type]
    width, height = data.get("width", 16), data.get("height", 16)
    for name, icon in sorted(data["icons"].items()):
        w, h = icon.get("width", width), icon.get("height", height)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
               f'width="{w}" height="{h}">{icon["body"]}</svg>')
        yield Icon(set_name, name, name.replace("-", " "), svg=svg.encode())


def load_set(set_name: str, count: int, *, seed: int = 14, cache: Path = DEFAULT_CACHE) -> list[Icon]:
    """``count`` icons of ``set_name``, the same ones on every run (a seeded sample)."""
    path = _tarball(PACKAGES[set_name], cache)
    if set_name in ("fluent", "lineart"):
        icons = list(_iconify(path, set_name))
    else:
        icons = []
        suffix = ".svg" if set_name == "twemoji" else ".webp"
        with tarfile.open(path) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if not member.name.endswith(suffix):
                    continue
                stem = Path(member.name).stem
                if "-" in stem and set_name == "twemoji" and len(stem.split("-")) > 2:
                    continue  # skin-tone and family sequences: near-duplicates
                blob = tar.extractfile(member).read()  # type: ignore[union-attr]
                kw = {"svg": blob} if suffix == ".svg" else {"raster": blob}
                icons.append(Icon(set_name, stem, _emoji_name(stem), **kw))
    rng = random.Random(seed)
    return sorted(rng.sample(icons, min(count, len(icons))), key=lambda i: i.name)


def load_mix(count: int, *, cache: Path = DEFAULT_CACHE) -> list[Icon]:
    """The benchmark's mix: 40 % flat, 40 % gradient-shaded, 20 % 3D-rendered."""
    flat = round(count * 0.4)
    shaded = round(count * 0.4)
    return (load_set("twemoji", flat, cache=cache) + load_set("fluent", shaded, cache=cache)
            + load_set("fluent3d", count - flat - shaded, cache=cache))
