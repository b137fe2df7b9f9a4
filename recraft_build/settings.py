"""The environment, read in one place.

Every environment variable recraft-build understands is named here, and read only
through :func:`env_value` (stripped: a variable holding only spaces is unset, for
every reader alike). Which provider ``--provider auto`` means is decided only by
:func:`choose_provider`. A :class:`Settings` value carries a command's options and the
environment into a :class:`~recraft_build.engine.session.Session`, which resolves it
once.

=================================== ==================================================
``RECRAFT_API_TOKEN``               token of the built-in ``recraft`` provider
``RECRAFT_API_BASE``                its base URL (default the official API, with /v1)
``REPLICATE_API_TOKEN``             token of the built-in ``replicate`` provider
``REPLICATE_API_BASE``              its base URL
``RECRAFT_BUILD_CACHE``             the local cache folder
``RECRAFT_BUILD_REMOTE_CACHE``      the shared remote cache (URL, s3://, or a folder)
``RECRAFT_BUILD_REMOTE_CACHE_MODE`` ``read`` or ``read-write``
``RECRAFT_BUILD_REMOTE_CACHE_AUTH`` an Authorization header for the remote cache
``RECRAFT_BUILD_S3_ENDPOINT``       an S3-compatible endpoint (MinIO, R2)
``RECRAFT_BUILD_REQUESTS_PER_SECOND`` the built-in providers' request rate limit
``RECRAFT_BUILD_IMAGES_PER_MINUTE`` their pictures-per-minute limit
``RECRAFT_BUILD_CREATES_PER_MINUTE`` Replicate's prediction creates per minute
``RECRAFT_BUILD_RESEND_AMBIGUOUS``  ``0`` restores the strict never-resend rule
=================================== ==================================================

A provider profile in the spec may name its own token variable (``token_env``); it
is read through :func:`env_value` too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

__all__ = [
    "RECRAFT_TOKEN_ENV",
    "REPLICATE_TOKEN_ENV",
    "Settings",
    "choose_provider",
    "env_value",
]

RECRAFT_TOKEN_ENV = "RECRAFT_API_TOKEN"
REPLICATE_TOKEN_ENV = "REPLICATE_API_TOKEN"
REMOTE_CACHE_ENV = "RECRAFT_BUILD_REMOTE_CACHE"
REMOTE_MODE_ENV = "RECRAFT_BUILD_REMOTE_CACHE_MODE"

#: The notice printed when ``auto`` falls back to the placeholder.
PLACEHOLDER_NOTICE = (
    f"no {RECRAFT_TOKEN_ENV} or {REPLICATE_TOKEN_ENV} set: building placeholder pictures "
    "(set one of them to generate real ones)"
)


def env_value(env: Mapping[str, str], name: str) -> str:
    """The value of variable ``name``, stripped; ``""`` when unset or blank."""
    return (env.get(name) or "").strip()


def choose_provider(requested: str, env: Mapping[str, str]) -> str:
    """``requested`` with ``auto`` resolved: ``recraft`` when its token is set, else
    ``replicate`` when its token is set, else ``placeholder``. Other names unchanged."""
    if requested != "auto":
        return requested
    if env_value(env, RECRAFT_TOKEN_ENV):
        return "recraft"
    if env_value(env, REPLICATE_TOKEN_ENV):
        return "replicate"
    return "placeholder"


@dataclass(frozen=True)
class Settings:
    """Where a command works and who makes its pictures: the command line's options plus
    the environment. ``env`` None means ``os.environ``; nothing else reads it."""

    provider: str = "auto"
    cache_dir: str | os.PathLike[str] | None = None
    output_dir: str | os.PathLike[str] | None = None
    remote_cache: str | None = None
    remote_mode: str | None = None
    env: Mapping[str, str] | None = None

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self.env is None else self.env

    def provider_name(self) -> str:
        """The provider this command uses (``auto`` resolved)."""
        return choose_provider(self.provider, self.environ)

    def remote_url(self) -> str:
        """The remote cache: ``--remote-cache``, else the variable, else ``""`` (none)."""
        return (self.remote_cache or "").strip() or env_value(self.environ, REMOTE_CACHE_ENV)

    def remote_access(self) -> str:
        """``read`` or ``read-write`` (the default: a paid picture is shared at once)."""
        return self.remote_mode or env_value(self.environ, REMOTE_MODE_ENV) or "read-write"

    def explicit_output_dir(self) -> Path | None:
        return Path(self.output_dir) if self.output_dir else None
