"""Which remote a ``--remote-cache`` value names, and the store that puts it behind the local one.

* ``http://`` or ``https://``: a Bazel HTTP cache (:mod:`recraft_build.cache.http`);
  the ``Authorization`` header comes from ``RECRAFT_BUILD_REMOTE_CACHE_AUTH``.
* ``s3://BUCKET/PREFIX``: a bucket (:mod:`recraft_build.cache.s3`; endpoint from
  ``RECRAFT_BUILD_S3_ENDPOINT``, credentials from boto3's own environment chain).
* ``file:///path`` or a plain path: a folder (:mod:`recraft_build.cache.folder`).
* Any other ``scheme://`` is a :class:`UsageError` listing these.
"""

from __future__ import annotations

from typing import Callable, Mapping

from recraft_build.cache.base import CacheStore, Closeable
from recraft_build.cache.folder import FolderCache, is_folder_location
from recraft_build.cache.policy import REMOTE_CACHE_ENV, remote_mode
from recraft_build.cache.remote_base import RemoteBase, redact_url
from recraft_build.cache.tiered import TieredStore
from recraft_build.errors import UsageError

__all__ = ["open_remote", "remote_url", "with_remote"]


def remote_url(flag: str | None, env: Mapping[str, str]) -> str:
    """The remote to use: ``flag`` (``--remote-cache``), else :data:`REMOTE_CACHE_ENV`;
    ``""`` for none."""
    return (flag or env.get(REMOTE_CACHE_ENV, "")).strip()


def open_remote(
    url: str, *, env: Mapping[str, str], mode: str, warn: Callable[[str], None]
) -> tuple[RemoteBase, Closeable | None]:
    """The remote client ``url`` names, and the network client it talks through (which
    the caller must close: :class:`TieredStore` does), or None for a folder.

    :class:`UsageError` for a malformed or unknown ``url`` or ``mode``, or boto3 missing.
    """
    lowered = url.strip().lower()
    if lowered.startswith("s3://"):
        from recraft_build.cache.s3 import S3Cache, s3_client

        client = s3_client(env)
        try:
            return S3Cache(url, client=client, mode=mode, warn=warn), client
        except BaseException:
            client.close()
            raise
    if lowered.startswith(("http://", "https://")):
        import httpx

        from recraft_build.cache.http import RemoteCache, auth_headers
        from recraft_build.cache.httpconn import KeepAliveClient, proxies_configured

        # Thousands of small requests: the lean keep-alive client, unless a proxy must
        # be used (httpx honours the proxy variables; the lean client does not).
        http: Closeable = (
            httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), limits=httpx.Limits(max_connections=16))
            if proxies_configured(env)
            else KeepAliveClient(max_connections=16)
        )
        try:
            return RemoteCache(url, client=http, mode=mode, headers=auth_headers(env), warn=warn), http
        except BaseException:
            http.close()
            raise
    if is_folder_location(url):
        return FolderCache(url, mode=mode, warn=warn), None
    raise UsageError(
        f"--remote-cache {redact_url(url)!r} is not a remote cache this tool knows: give an "
        "http(s):// URL (a Bazel HTTP cache), s3://BUCKET/PREFIX, or a folder (a path or file:///path)"
    )


def with_remote(
    local: CacheStore,
    url: str,
    *,
    env: Mapping[str, str],
    mode: str | None,
    warn: Callable[[str], None],
) -> CacheStore:
    """``local`` behind the remote ``url`` (a :class:`TieredStore` that owns, and closes,
    the remote's network client); ``local`` itself when ``url`` is empty. ``mode`` is the
    ``--remote-cache-mode`` flag (else the environment's, else read-write).

    On a :class:`UsageError` (bad URL or mode) ``local`` is closed before it propagates.
    """
    if not url:
        return local
    try:
        remote, client = open_remote(url, env=env, mode=remote_mode(mode, env), warn=warn)
    except BaseException:
        local.close()
        raise
    return TieredStore(local, remote, client=client)
