"""A bucket in S3-compatible storage as the shared remote cache (AWS S3, MinIO, R2...).

A remote-cache target beside :class:`~recraft_build.cache.http.RemoteCache`, with
the same interface and failure model (:mod:`recraft_build.cache.remote_base`), so
:class:`~recraft_build.cache.tiered.TieredStore` uses either without knowing which.
Selected by a ``--remote-cache`` (or ``RECRAFT_BUILD_REMOTE_CACHE``) of the form
``s3://BUCKET/PREFIX``.

Layout
------
The names of the HTTP protocol under ``PREFIX``, so a bucket and an nginx or
bazel-remote mirror look alike (and a bucket can be served as an HTTP cache by a
gateway, or filled by copying a mirror's files):

* ``PREFIX/cas/<sha256>``: a blob's bytes, checked against the digest when read;
* ``PREFIX/ac/<name>``: an action record in our JSON envelope, byte for byte what
  :class:`~recraft_build.cache.http.RemoteCache` writes (``name`` is
  :func:`~recraft_build.cache.remote_base.remote_name` of the key).

Configuration
-------------
* The endpoint: AWS S3 unless ``RECRAFT_BUILD_S3_ENDPOINT`` names another
  (``http://127.0.0.1:9000`` for MinIO, ``https://<account>.r2.cloudflarestorage.com``);
  with an endpoint, requests use path-style addressing, which every S3-compatible
  server accepts.
* Credentials and region: **only** boto3's own chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, the shared config
  files, instance roles...), read from the process environment by boto3. Never in the
  URL (refused), never in a message.
* boto3 is an optional dependency (``pip install 'recraft-build[s3]'``), imported only
  when an ``s3://`` remote is used.

Failure model
-------------
As :mod:`recraft_build.cache.remote_base`: nothing here fails a build, every problem is a warning
through ``warn`` and a miss (or a skipped upload).

* Connection errors, timeouts, throttling (``SlowDown``, ``429``) and ``5xx`` are
  retried with :class:`~recraft_build.cache.policy.RemotePolicy`'s backoff (boto3's own
  retries are off so there is one policy and one ``sleep``; a ``Retry-After`` header is
  honoured as for HTTP); when retries run out the cache turns **unavailable** with one
  warning for the whole build.
* No credentials, credentials refused (``InvalidAccessKeyId``,
  ``SignatureDoesNotMatch``, an expired token...), or a bucket that does not exist:
  unavailable at once, with one warning saying what to do.
* ``AccessDenied`` on a read is a miss with one warning (a credential without
  ``s3:ListBucket`` sees a missing object as ``403``, so it cannot mean "stop");
  on an upload it turns uploads off, with one warning (a read-only credential).
* Wrong bytes for a blob, or a record that is not our envelope for this key: a
  warning, and a miss.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from recraft_build.errors import UsageError

# The transport-independent half (digest checks, the record envelope, read mode, one
# warning then unavailable) is every remote's base class, so all targets store
# byte-identical records, refuse the same malformed digests and fail the same way.
from recraft_build.cache.policy import RemotePolicy
from recraft_build.cache.remote_base import PutResult, RemoteBase, Reply, RetryLater, redact_url

__all__ = [
    "S3Cache",
    "S3_ENDPOINT_ENV",
    "S3_INSTALL_HINT",
    "is_s3_url",
    "parse_s3_url",
    "s3_client",
]

#: Environment variable naming a non-AWS endpoint (MinIO, R2, a local test server).
S3_ENDPOINT_ENV = "RECRAFT_BUILD_S3_ENDPOINT"

#: What to run when boto3 is missing.
S3_INSTALL_HINT = "pip install 'recraft-build[s3]'"

# botocore's own bucket-name rule: anything else fails every request, so refuse it up front.
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")

# Error codes that mean "these credentials are not accepted here": every later request
# would fail the same way.
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "InvalidSecurity",
        "AccountProblem",
        "AllAccessDisabled",
    }
)
# Codes worth a retry besides any 429/5xx status (S3 throttles with 503 SlowDown, but
# some compatible servers use other statuses for the same codes).
_RETRY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
     "ServiceUnavailable", "RequestLimitExceeded"}
)
_ACCESS_DENIED = frozenset({"AccessDenied", "403", "Forbidden"})
_UNSUPPORTED = frozenset({"NotImplemented", "MethodNotAllowed"})


# --------------------------------------------------------------------------- helpers


def is_s3_url(url: str) -> bool:
    """Whether a ``--remote-cache`` value names a bucket (``s3://...``)."""
    return url.strip().lower().startswith("s3://")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")`` (prefix may be "").

    :class:`UsageError` for anything else, and for credentials put in the URL.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "s3":
        raise UsageError(f"--remote-cache {redact_url(url)!r} is not an s3://BUCKET/PREFIX URL")
    if "@" in parts.netloc:
        raise UsageError(
            f"--remote-cache {redact_url(url)!r}: credentials do not go in an s3:// URL; "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        raise UsageError(
            f"--remote-cache {redact_url(url)!r} has no valid bucket name "
            "(expected s3://BUCKET/PREFIX, e.g. s3://team-cache/recraft)"
        )
    if parts.query or parts.fragment:
        raise UsageError(
            f"--remote-cache {redact_url(url)!r}: an s3:// URL takes no ?query or #fragment "
            f"(the endpoint goes in {S3_ENDPOINT_ENV})"
        )
    prefix = "/".join(p for p in parts.path.split("/") if p)
    return bucket, prefix


def _import_boto3() -> tuple[Any, Any, Any]:
    """``(boto3, botocore.config.Config, botocore.exceptions)``, or a UsageError saying
    how to install them (boto3 is an optional dependency)."""
    try:
        import boto3
        import botocore.exceptions
        from botocore.config import Config
    except ImportError as exc:
        raise UsageError(
            f"an s3:// remote cache needs boto3, which is not installed: {S3_INSTALL_HINT}"
        ) from exc
    return boto3, Config, botocore.exceptions


def s3_client(env: Mapping[str, str], *, policy: RemotePolicy | None = None) -> Any:
    """A boto3 S3 client for :class:`S3Cache`, owned (and closed) by the caller.

    The endpoint comes from ``env[S3_ENDPOINT_ENV]`` (AWS when unset); credentials and
    region only from boto3's own chain. boto3's retries are off (:class:`S3Cache`
    retries by ``policy``); timeouts are ``policy``'s. :class:`UsageError` when boto3 is
    missing, the endpoint is not an http(s) URL, or boto3 rejects its configuration
    (e.g. an ``AWS_PROFILE`` that does not exist).
    """
    boto3, Config, exceptions = _import_boto3()
    policy = policy or RemotePolicy()
    endpoint = env.get(S3_ENDPOINT_ENV, "").strip() or None
    options: dict[str, Any] = {
        "connect_timeout": policy.connect_timeout,
        "read_timeout": policy.timeout,
        "retries": {"mode": "standard", "total_max_attempts": 1},
        # The executor's workers and the upload threads share the client.
        "max_pool_connections": 16,
    }
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"{S3_ENDPOINT_ENV}={redact_url(endpoint)!r} is not an http:// or https:// "
                "URL (e.g. http://127.0.0.1:9000 for MinIO)"
            )
        options["s3"] = {"addressing_style": "path"}
    try:
        # Checksums only where the operation requires one: the default since botocore
        # 1.36 (a CRC32 on every upload) is refused by some S3-compatible servers, and
        # we check sha256 digests ourselves. Older botocore has no such options.
        config = Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **options,
        )
    except TypeError:
        config = Config(**options)
    try:
        # A session of its own: boto3's default session is module-global state.
        return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
    except exceptions.BotoCoreError as exc:
        raise UsageError(f"cannot set up the s3:// remote cache: {exc}") from exc


# --------------------------------------------------------------------------- client


class S3Cache(RemoteBase):
    """The remote cache in a bucket: ``url`` is ``s3://BUCKET/PREFIX``.

    ``client`` is a boto3 S3 client owned by the caller (who closes it; see
    :func:`s3_client`). ``mode`` is ``"read"`` (never writes: every ``put_*`` is a
    no-op without a request) or ``"read-write"``. ``policy`` gives retries, backoff and
    ``head_before_put``; ``sleep`` waits between retries; ``warn`` receives one-line
    warnings (see the module docstring).

    The blob, record and state methods are :class:`~recraft_build.cache.remote_base.RemoteBase`'s
    (the same as :class:`~recraft_build.cache.http.RemoteCache`); this class is the S3
    transport under them.

    Thread-safe. No method raises for a remote problem; :class:`UsageError` only for a
    bad ``url`` or ``mode`` (or boto3 missing) at construction, ``ValueError`` for a
    malformed digest (a bug).
    """

    _copy = "the bucket's"

    def __init__(
        self,
        url: str,
        *,
        client: Any,
        mode: str = "read-write",
        policy: RemotePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(mode=mode, policy=policy, sleep=sleep, warn=warn, clock=clock)
        self._bucket, self._prefix = parse_s3_url(url)
        _, _, self._errors = _import_boto3()
        self.url = f"s3://{self._bucket}/{self._prefix}".rstrip("/")
        self._client = client
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        # Where the bucket lives, for messages: the endpoint matters when it is down.
        self._where = f"{self.url} (endpoint {redact_url(endpoint)})" if endpoint else self.url

    # ----- transport

    def _key(self, path: str) -> str:
        return f"{self._prefix}/{path}" if self._prefix else path

    def _describe(self, path: str) -> str:
        return self._key(path)

    def _send(
        self, method: str, path: str, *, what: str, body: bytes | None = None
    ) -> Reply | None:
        """One S3 call with retries; None when the bucket is (or just became) unusable.

        ``method`` is ``GET``, ``HEAD`` or ``PUT``. A ``GET`` reads the whole body
        (inside the retry loop: a connection dropped mid-body is retried too).
        """
        errors = self._errors
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key(path)}
        if body is not None:
            params["Body"] = body
            params["ContentType"] = (
                "application/json" if path.startswith("ac/") else "application/octet-stream"
            )

        def attempt() -> Reply | RetryLater | None:
            self._count_traffic(requests=1, sent=len(body or b""))
            try:
                if method == "GET":
                    response = self._client.get_object(**params)
                    stream = response["Body"]
                    try:
                        data = stream.read()
                    finally:
                        stream.close()
                    self._count_traffic(received=len(data))
                    return Reply(200, body=data)
                if method == "HEAD":
                    self._client.head_object(**params)
                else:
                    self._client.put_object(**params)
                return Reply(200)
            except errors.ClientError as exc:
                error = exc.response.get("Error", {}) or {}
                code = str(error.get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if code in _CREDENTIAL_CODES:
                    self._go_unavailable(
                        f"{code} on {what}: the credentials were refused; check "
                        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN "
                        "(or AWS_PROFILE)"
                    )
                    return None
                if code == "NoSuchBucket":
                    self._go_unavailable(
                        f"bucket {self._bucket!r} does not exist; create it, or fix "
                        "--remote-cache / RECRAFT_BUILD_REMOTE_CACHE"
                    )
                    return None
                if not (status == 429 or status >= 500 or code in _RETRY_CODES):
                    return Reply(status, code)
                headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
                return RetryLater(
                    f"{code or 'error'} (HTTP {status}) on {what}", self.retry_after(headers)
                )
            except errors.NoCredentialsError:
                self._go_unavailable(
                    "no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment"
                )
                return None
            except (
                errors.ConnectionError,  # endpoint down, connect timeout, TLS
                errors.HTTPClientError,  # read timeout, connection closed mid-answer
                errors.IncompleteReadError,
            ) as exc:
                return RetryLater(f"{type(exc).__name__} on {what}: {exc}")
            except errors.BotoCoreError as exc:
                # Anything else boto3 refuses (partial credentials, a bad profile...)
                # will refuse again: stop now rather than retry.
                self._go_unavailable(f"{type(exc).__name__} on {what}: {exc}")
                return None
            except OSError as exc:  # a socket error boto3 did not wrap (reading a body)
                return RetryLater(f"{type(exc).__name__} on {what}: {exc}")

        return self._retrying(attempt)

    def _read_status(self, reply: Reply, what: str) -> None:
        if reply.status == 404:
            return  # a plain miss (NoSuchKey; a HEAD has no code to tell more)
        if reply.code in _ACCESS_DENIED or reply.status == 403:
            self._warn_once(
                "read-403",
                f"remote cache {self.url} denied a read ({reply.code or 'HTTP 403'} on "
                f"{what}); treated as a miss (grant s3:GetObject on {self._key('*')}, "
                "and s3:ListBucket so that a missing object is a plain 404)",
            )
            return
        self._warn_once(
            f"read-{reply.code or reply.status}",
            f"remote cache {self.url} answered {reply.code or 'an error'} (HTTP "
            f"{reply.status}) on {what}; treated as a miss",
        )

    def _put_status(self, reply: Reply, what: str, *, record: bool) -> PutResult:
        if reply.status == 200:
            return PutResult.UPLOADED
        if reply.code in _ACCESS_DENIED or reply.status == 403:
            self._uploads_off()
            self._warn_once(
                "put-refused",
                f"remote cache {self.url} refused an upload ({reply.code or 'HTTP 403'} "
                f"on {what}); uploads are off for this build (use --remote-cache-mode "
                f"read on machines that only read, or grant s3:PutObject on "
                f"{self._key('*')})",
            )
            return PutResult.FAILED
        if reply.code in _UNSUPPORTED or reply.status in (405, 501):
            self._uploads_off()
            self._warn_once(
                "put-unsupported",
                f"remote cache {self.url} does not accept uploads ({reply.code or 'HTTP'} "
                f"{reply.status} on {what}); uploads are off for this build",
            )
            return PutResult.FAILED
        self.warn(
            f"remote cache {self.url} refused an upload ({reply.code or 'error'}, HTTP "
            f"{reply.status} on {what}); the local copy is kept"
        )
        return PutResult.FAILED
