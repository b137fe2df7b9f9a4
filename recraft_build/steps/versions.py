"""Implementation versions of the steps: part of every step's cache key.

Kept apart from the implementations (which import numpy, Pillow, vtracer) so that
planning and a no-op build never pay for those imports. Bump a step's number when a
change to its code changes its output bytes: every cached result of that step is
then recomputed (never re-generated: generation keys do not hold step versions).
Only local runs take these versions: a step the provider runs keeps version 1 in its
key (``engine.plan``), so a local change never pays for a provider call again.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["EXPORT_VERSION", "FAVICON_VERSION", "STEP_VERSIONS", "step_versions"]

STEP_VERSIONS: Mapping[str, int] = {
    "remove_background": 1,
    "vectorize": 2,  # 2: colours snap to white, black and the palette
    # 2: large downscales reduce by whole blocks first (geometry._REDUCING_GAP).
    "resize": 2,
    "crop": 1,
    "trim": 1,
    "pad": 1,
    "upscale": 1,
}

#: Version of the encoders in :mod:`recraft_build.steps.export`; part of output keys.
EXPORT_VERSION = 1
#: Version of the favicon set (2: the set gained ``favicon.html``, so every cached set
#: is made again once, locally).
FAVICON_VERSION = 2


def step_versions() -> dict[str, int]:
    """Every keyed operation's version: the steps, plus ``export`` and ``favicon``."""
    versions = dict(STEP_VERSIONS)
    versions.setdefault("export", EXPORT_VERSION)
    versions.setdefault("favicon", FAVICON_VERSION)
    return versions
