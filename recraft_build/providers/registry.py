"""Pick and build the provider a build uses (``--provider NAME``).

Names:

* ``auto`` (the default): ``recraft`` when ``RECRAFT_API_TOKEN`` is set, else
  ``replicate`` when ``REPLICATE_API_TOKEN`` is set, else ``placeholder``, with a
  one-line notice through ``notice``. An empty variable counts as unset.
* ``recraft`` / ``replicate``: the built-ins. Their base URLs come from
  ``RECRAFT_API_BASE`` / ``REPLICATE_API_BASE`` (defaults in the protocol modules),
  their tokens from ``RECRAFT_API_TOKEN`` / ``REPLICATE_API_TOKEN``.
* ``placeholder``: the offline stand-in.
* any profile from the spec's ``providers:`` section. A profile may reuse a built-in
  name to change its settings (rate limits, timeouts...). A profile without
  ``base_url`` uses its protocol's base variable, then the protocol default; without
  ``token_env``, its protocol's token variable.

A token variable that is unset is an :class:`~recraft_build.errors.AuthError` naming
it, raised here, before any call. Tokens are read from ``env`` only (never from the
spec) and wrapped in :class:`~.redact.Secret`.

Profile ``options`` (all optional): ``requests_per_second``, ``images_per_minute``,
``creates_per_minute`` (rate limits; 0 turns one off), the timeouts, deadlines and
retry settings of :class:`~.http.HttpPolicy` (``resend_ambiguous`` and
``max_resends`` among them), ``max_download_bytes``, ``allow_http``; for
the recraft protocol ``response_format`` and ``file_field``; for replicate
``wait_seconds``, ``poll_interval``, ``poll_max_interval`` and ``poll_timeout``. An
unknown option is a :class:`~recraft_build.errors.PlanError` (a typo in a rate limit
must not be ignored).

Rate limits: recraft 5 requests/s and 100 images/min (the documented account
limits); replicate 600 creates/min and 50 requests/s (3000/min for other endpoints).
An account allowed more raises them for the built-in ``recraft`` and ``replicate``
with ``RECRAFT_BUILD_REQUESTS_PER_SECOND``, ``RECRAFT_BUILD_IMAGES_PER_MINUTE`` and
``RECRAFT_BUILD_CREATES_PER_MINUTE`` (read from ``env``; 0 turns a limit off; not a
number is a :class:`~recraft_build.errors.UsageError`); a profile from the spec sets its
own in ``rate_limit:``. A wait of a second or more is reported through ``notice``
(``waiting 4 s for the rate limit (100 images/min)``), with how to raise the limit.

Ambiguous paid calls (answer lost after sending) are sent again by default (see
:mod:`.http`); ``RECRAFT_BUILD_RESEND_AMBIGUOUS=0`` (or ``false``/``no``) restores the
strict never-resend rule for the built-in ``recraft`` and ``replicate``, as the
profile option ``resend_ambiguous: false`` does for a profile (which the variable
does not override: a profile says what it wants in the spec).

When no ``client`` is given, one ``httpx.Client`` is made per provider with a pool
big enough that ``-j`` workers reuse connections instead of opening new ones
(100 connections, all kept alive for 5 s when idle, shorter than typical server
idle timeouts so a reused connection is not one the server is closing); the
provider owns it and closes it in ``close()``.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Mapping

import httpx

from recraft_build import __version__
from recraft_build.domain import ProviderProfile
from recraft_build.errors import AuthError, PlanError, RecraftBuildError, UsageError
from recraft_build.providers import recraft as recraft_mod
from recraft_build.providers import replicate as replicate_mod
from recraft_build.providers.base import Provider
from recraft_build.providers.download import DEFAULT_MAX_BYTES
from recraft_build.providers.http import HttpPolicy, RateLimiter
from recraft_build.providers.capabilities import BUILTIN_NAMES, PROTOCOLS
from recraft_build.providers.tls import tls_context
from recraft_build.providers.redact import Secret
from recraft_build.settings import PLACEHOLDER_NOTICE, choose_provider, env_value

__all__ = [
    "BUILTIN_NAMES",
    "PROTOCOLS",
    "RATE_LIMIT_ENV",
    "RESEND_ENV",
    "default_client",
    "make_provider",
]


_BASE_ENV = {"recraft": "RECRAFT_API_BASE", "replicate": "REPLICATE_API_BASE"}
_TOKEN_ENV = {"recraft": recraft_mod.TOKEN_ENV, "replicate": replicate_mod.TOKEN_ENV}
_DEFAULT_BASE = {"recraft": recraft_mod.DEFAULT_BASE_URL, "replicate": replicate_mod.DEFAULT_BASE_URL}
_DEFAULT_LIMITS = {
    "recraft": {"requests_per_second": 5.0, "images_per_minute": 100.0, "creates_per_minute": None},
    "replicate": {"requests_per_second": 50.0, "images_per_minute": None, "creates_per_minute": 600.0},
}
#: Environment variables that override the built-in providers' rate limits, by option.
RATE_LIMIT_ENV = {
    "requests_per_second": "RECRAFT_BUILD_REQUESTS_PER_SECOND",
    "images_per_minute": "RECRAFT_BUILD_IMAGES_PER_MINUTE",
    "creates_per_minute": "RECRAFT_BUILD_CREATES_PER_MINUTE",
}
#: The environment variable that turns resending ambiguous paid calls off (or on)
#: for the built-in providers.
RESEND_ENV = "RECRAFT_BUILD_RESEND_AMBIGUOUS"
_FLAG_WORDS = {"0": False, "false": False, "no": False, "off": False, "1": True, "true": True, "yes": True, "on": True}
_LIMIT_BUCKETS = {"requests_per_second": "requests", "images_per_minute": "images", "creates_per_minute": "creates"}
_COMMON_OPTIONS = frozenset(
    {"requests_per_second", "images_per_minute", "creates_per_minute", "max_download_bytes", "allow_http"}
    | set(HttpPolicy.OPTION_NAMES)
    | set(HttpPolicy.FLAG_NAMES)
)
_PROTOCOL_OPTIONS = {
    "recraft": frozenset({"response_format", "file_field"}),
    "replicate": frozenset({"wait_seconds", "poll_interval", "poll_max_interval", "poll_timeout"}),
}
_TOKEN_HELP = {
    "recraft": "create one at https://app.recraft.ai/profile/api",
    "replicate": "create one at https://replicate.com/account/api-tokens",
}


def default_client(policy: HttpPolicy | None = None) -> httpx.Client:
    """The client a provider makes for itself: one pool shared by all worker threads."""
    policy = policy or HttpPolicy()
    return httpx.Client(
        verify=tls_context(),
        timeout=policy.timeout(),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=5.0),
        headers={"User-Agent": f"recraft-build/{__version__}"},
        follow_redirects=False,
    )


_env = env_value


def _builtin_profile(name: str, env: Mapping[str, str]) -> ProviderProfile:
    return ProviderProfile(
        name=name, protocol=name, base_url=_env(env, _BASE_ENV[name]) or None,
        options={**_env_rate_limits(env), **_env_resend(env)},
    )


def _env_resend(env: Mapping[str, str]) -> dict[str, bool]:
    """``resend_ambiguous`` as :data:`RESEND_ENV` sets it (UsageError if not a yes/no)."""
    text = _env(env, RESEND_ENV)
    if not text:
        return {}
    flag = _FLAG_WORDS.get(text.lower())
    if flag is None:
        raise UsageError(
            f"{RESEND_ENV} must be 0 (never send an ambiguous paid call again) or 1 (the "
            f"default: send it again and report it), got {text!r}"
        )
    return {"resend_ambiguous": flag}


def _env_rate_limits(env: Mapping[str, str]) -> dict[str, float]:
    """The rate-limit options set by :data:`RATE_LIMIT_ENV` variables (UsageError if not numbers)."""
    options: dict[str, float] = {}
    for option, var in RATE_LIMIT_ENV.items():
        text = _env(env, var)
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= 0 or value == float("inf"):
            raise UsageError(f"{var} must be a number of at least 0 (0 turns the limit off), got {text!r}")
        options[option] = value
    return options


def _number(options: Mapping[str, Any], key: str, default: Any, profile: str) -> Any:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(f"provider {profile}: option {key} must be a number (got {value!r})")
    return value


def _placeholder(notice_text: str | None, notice: Callable[[str], None] | None) -> Provider:
    try:
        from recraft_build.providers.placeholder import PlaceholderProvider
    except ImportError as exc:
        raise RecraftBuildError(
            "the placeholder provider is not available in this installation; set "
            "RECRAFT_API_TOKEN or REPLICATE_API_TOKEN to use a real one"
        ) from exc
    if notice_text and notice is not None:
        notice(notice_text)
    return PlaceholderProvider()


def make_provider(
    name: str,
    *,
    profiles: Mapping[str, ProviderProfile],
    env: Mapping[str, str],
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    notice: Callable[[str], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    resend_permit: Callable[[], bool] | None = None,
    max_in_flight: int | None = None,
) -> Provider:
    """The provider called ``name``, ready to use (see the module docstring).

    ``client`` is shared and left open by the provider; without it the provider makes
    and owns one. ``notice`` gets one line when ``auto`` falls back to the
    placeholder; ``on_retry`` gets a line for every retried call; ``resend_permit()``
    is asked before a paid call whose answer was lost is sent again (False: not).
    ``max_in_flight`` (``build -j``) caps the paid calls an HTTP provider has under way
    at once; downloading their pictures is not counted (see ``HttpProvider``).

    Raises :class:`UsageError` for an unknown name, :class:`AuthError` when the token
    variable is unset, :class:`PlanError` for a bad profile (protocol, option, URL).
    """
    if name == "auto":
        name = choose_provider(name, env)
        if name == "placeholder":
            return _placeholder(PLACEHOLDER_NOTICE, notice)
    if name in profiles:
        profile = profiles[name]
    elif name in ("recraft", "replicate"):
        profile = _builtin_profile(name, env)
    elif name == "placeholder":
        return _placeholder(None, notice)
    else:
        known = ", ".join(list(BUILTIN_NAMES) + sorted(n for n in profiles if n not in BUILTIN_NAMES))
        raise UsageError(f"unknown provider {name!r} (known: {known})")
    return _from_profile(
        profile, env=env, client=client, sleep=sleep, clock=clock, on_retry=on_retry, notice=notice,
        builtin=name not in profiles, resend_permit=resend_permit, max_in_flight=max_in_flight,
    )


def _flatten_spec_options(options: Mapping[str, object]) -> dict[str, object]:
    """The spec's profile shape (``rate_limit: {...}``, ``timeout``) as flat options.

    ``timeout`` (seconds) bounds reading an answer; the schema documents it so.
    """
    flat = dict(options)
    limits = flat.pop("rate_limit", None)
    if isinstance(limits, Mapping):
        flat.update(limits)
    if "timeout" in flat:
        flat.setdefault("read_timeout", flat.pop("timeout"))
    return flat


def _from_profile(
    profile: ProviderProfile,
    *,
    env: Mapping[str, str],
    client: httpx.Client | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    on_retry: Callable[[str], None] | None,
    notice: Callable[[str], None] | None = None,
    builtin: bool = False,
    resend_permit: Callable[[], bool] | None = None,
    max_in_flight: int | None = None,
) -> Provider:
    name, protocol = profile.name, profile.protocol
    if protocol not in PROTOCOLS:
        raise PlanError(f"provider {name}: protocol must be recraft or replicate (got {protocol!r})")
    options = _flatten_spec_options(profile.options or {})
    allowed = _COMMON_OPTIONS | _PROTOCOL_OPTIONS[protocol]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise PlanError(
            f"provider {name}: unknown option(s) {', '.join(unknown)} for protocol {protocol} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    token_env = profile.token_env or _TOKEN_ENV[protocol]
    token = _env(env, token_env)
    if not token:
        raise AuthError(
            f"provider {name} needs a token: set the environment variable {token_env} "
            f"({_TOKEN_HELP[protocol]})",
            provider=name,
        )
    base_url = profile.base_url or _env(env, _BASE_ENV[protocol]) or _DEFAULT_BASE[protocol]
    policy = HttpPolicy.from_options(options)
    limits = _DEFAULT_LIMITS[protocol]
    if builtin:
        advice = {
            bucket: f"set {RATE_LIMIT_ENV[option]} if your account allows more"
            for option, bucket in _LIMIT_BUCKETS.items()
        }
    else:
        advice = {
            bucket: f"raise rate_limit: {{{option}: ...}} in profile {name} if the service allows more"
            for option, bucket in _LIMIT_BUCKETS.items()
        }
    limiter = RateLimiter(
        requests_per_second=_number(options, "requests_per_second", limits["requests_per_second"], name),
        images_per_minute=_number(options, "images_per_minute", limits["images_per_minute"], name),
        creates_per_minute=_number(options, "creates_per_minute", limits["creates_per_minute"], name),
        clock=clock,
        sleep=sleep,
        on_wait=notice,
        advice=advice,
    )
    max_bytes = _number(options, "max_download_bytes", DEFAULT_MAX_BYTES, name)
    allow_http = options.get("allow_http", False)
    if not isinstance(allow_http, bool):
        raise PlanError(f"provider {name}: option allow_http must be true or false")
    owns = client is None
    http_client = client if client is not None else default_client(policy)
    common: dict[str, Any] = dict(
        base_url=base_url,
        token=Secret(token),
        auth=profile.auth or "bearer",
        client=http_client,
        policy=policy,
        limiter=limiter,
        sleep=sleep,
        clock=clock,
        rand=random.random,
        token_env=token_env,
        max_download_bytes=int(max_bytes),
        allow_http=allow_http,
        on_retry=on_retry,
        owns_client=owns,
        resend_permit=resend_permit,
        max_in_flight=max_in_flight,
    )
    try:
        if protocol == "recraft":
            return recraft_mod.RecraftProvider(
                name,
                response_format=options.get("response_format", "url"),
                file_field=options.get("file_field", "file"),
                **common,
            )
        return replicate_mod.ReplicateProvider(
            name,
            wait_seconds=options.get("wait_seconds", 60),
            poll_interval=float(_number(options, "poll_interval", 0.5, name)),
            poll_max_interval=float(_number(options, "poll_max_interval", 5.0, name)),
            poll_timeout=float(_number(options, "poll_timeout", 1800.0, name)),
            **common,
        )
    except BaseException:
        if owns:
            http_client.close()
        raise
