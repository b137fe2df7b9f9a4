"""Picking a provider: auto, built-ins, profiles, tokens from the environment only."""

from __future__ import annotations

import importlib.util
from typing import Any, Iterator

import httpx
import pytest

from fakeserver import FakeServer, local_client
from recraft_build.domain import GenerationRequest, ProviderProfile
from recraft_build.errors import AmbiguousError, AuthError, PlanError, UsageError
from recraft_build.providers.recraft import RecraftProvider
from recraft_build.providers.registry import make_provider
from recraft_build.providers.replicate import ReplicateProvider

HAS_PLACEHOLDER = importlib.util.find_spec("recraft_build.providers.placeholder") is not None
TOKEN = "tok-REGISTRY-0123456789"


def counting_client() -> tuple[httpx.Client, list[httpx.Request]]:
    calls: list[httpx.Request] = []
    return httpx.Client(transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500))), calls


def make(name: str, env: dict[str, str], profiles: dict[str, ProviderProfile] | None = None, **kw: Any) -> Any:
    kw.setdefault("client", counting_client()[0])
    return make_provider(name, profiles=profiles or {}, env=env, **kw)


def test_auto_prefers_recraft_then_replicate() -> None:
    both = make("auto", {"RECRAFT_API_TOKEN": TOKEN, "REPLICATE_API_TOKEN": TOKEN})
    assert isinstance(both, RecraftProvider) and both.name == "recraft"
    only_replicate = make("auto", {"RECRAFT_API_TOKEN": "  ", "REPLICATE_API_TOKEN": TOKEN})
    assert isinstance(only_replicate, ReplicateProvider) and only_replicate.name == "replicate"


@pytest.mark.skipif(not HAS_PLACEHOLDER, reason="placeholder provider not written yet")
def test_auto_without_tokens_falls_back_to_placeholder_with_a_notice() -> None:
    notices: list[str] = []
    provider = make("auto", {}, notice=notices.append)
    assert provider.family == "placeholder"
    assert len(notices) == 1 and "RECRAFT_API_TOKEN" in notices[0] and "\n" not in notices[0]
    assert make("placeholder", {}).family == "placeholder"


def test_builtins_read_their_base_url_from_the_environment() -> None:
    r = make("recraft", {"RECRAFT_API_TOKEN": TOKEN, "RECRAFT_API_BASE": "https://proxy.test/recraft/v1/"})
    assert r.base_url == "https://proxy.test/recraft/v1"
    d = make("recraft", {"RECRAFT_API_TOKEN": TOKEN})
    assert d.base_url == "https://external.api.recraft.ai/v1"
    p = make("replicate", {"REPLICATE_API_TOKEN": TOKEN})
    assert p.base_url == "https://api.replicate.com/v1"


@pytest.mark.parametrize("name,var", [("recraft", "RECRAFT_API_TOKEN"), ("replicate", "REPLICATE_API_TOKEN")])
def test_missing_token_is_an_auth_error_before_any_call(name: str, var: str) -> None:
    client, calls = counting_client()
    with pytest.raises(AuthError, match=f"set the environment variable {var}") as info:
        make(name, {var: ""}, client=client)
    assert info.value.provider == name
    assert calls == []


def test_profiles_for_both_proxies() -> None:
    profiles = {
        "elkapi": ProviderProfile("elkapi", "recraft", base_url="https://api.elkapi.test/recraft/v1", auth="raw", token_env="ELKAPI_KEY"),
        "kkiai": ProviderProfile("kkiai", "replicate", base_url="https://www.kkiai.test/replicate/v1", token_env="KKIAI_KEY"),
    }
    env = {"ELKAPI_KEY": TOKEN, "KKIAI_KEY": TOKEN}
    elk = make("elkapi", env, profiles)
    assert isinstance(elk, RecraftProvider) and elk.name == "elkapi" and elk.base_url.endswith("/recraft/v1")
    kki = make("kkiai", env, profiles)
    assert isinstance(kki, ReplicateProvider) and kki.name == "kkiai"
    assert elk.family == kki.family == "recraft"
    with pytest.raises(AuthError, match="ELKAPI_KEY"):
        make("elkapi", {}, profiles)


def test_profile_options_are_applied_and_checked() -> None:
    profiles = {
        "recraft": ProviderProfile("recraft", "recraft", options={"requests_per_second": 2, "images_per_minute": 0, "read_timeout": 30, "file_field": "image"}),
        "typo": ProviderProfile("typo", "recraft", options={"request_per_second": 2}),
        "wrongproto": ProviderProfile("wrongproto", "openai"),
        "badwait": ProviderProfile("badwait", "replicate", options={"wait_seconds": 600}),
        "insecure": ProviderProfile("insecure", "recraft", base_url="http://proxy.example/v1"),
    }
    env = {"RECRAFT_API_TOKEN": TOKEN, "REPLICATE_API_TOKEN": TOKEN}
    p = make("recraft", env, profiles)
    assert p._limiter.limits == {"requests": 2.0}
    assert p._policy.read_timeout == 30.0 and p.file_field == "image"
    with pytest.raises(PlanError, match="unknown option.*request_per_second"):
        make("typo", env, profiles)
    with pytest.raises(PlanError, match="protocol"):
        make("wrongproto", env, profiles)
    with pytest.raises(PlanError, match="wait_seconds"):
        make("badwait", env, profiles)
    with pytest.raises(PlanError, match="plain http"):
        make("insecure", env, profiles)


def test_default_rate_limits() -> None:
    env = {"RECRAFT_API_TOKEN": TOKEN, "REPLICATE_API_TOKEN": TOKEN}
    assert make("recraft", env)._limiter.limits == {"requests": 5.0, "images": pytest.approx(100 / 60)}
    assert make("replicate", env)._limiter.limits == {"requests": 50.0, "creates": 10.0}


def test_unknown_name_lists_the_known_ones() -> None:
    profiles = {"elkapi": ProviderProfile("elkapi", "recraft", token_env="ELKAPI_KEY")}
    with pytest.raises(UsageError, match="auto, recraft, replicate, placeholder, elkapi"):
        make("dalle", {}, profiles)


def test_own_client_is_closed_by_the_provider_and_a_given_one_is_not() -> None:
    env = {"RECRAFT_API_TOKEN": TOKEN}
    own = make_provider("recraft", profiles={}, env=env)
    own_client = own._client
    own.close()
    assert own_client.is_closed
    given, _ = counting_client()
    make_provider("recraft", profiles={}, env=env, client=given).close()
    assert not given.is_closed


def test_token_is_not_in_the_provider_repr() -> None:
    p = make("recraft", {"RECRAFT_API_TOKEN": TOKEN})
    assert TOKEN not in repr(p) and TOKEN not in str(vars(p))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    c = local_client()
    yield c
    c.close()


@pytest.mark.parametrize("protocol", ["recraft", "replicate"])
def test_two_environment_variables_are_enough(client: httpx.Client, protocol: str) -> None:
    with FakeServer(latency=0.01) as server:
        if protocol == "recraft":
            env = {"RECRAFT_API_TOKEN": server.token, "RECRAFT_API_BASE": server.recraft_base}
        else:
            env = {"REPLICATE_API_TOKEN": server.token, "REPLICATE_API_BASE": server.replicate_base}
        with make_provider("auto", profiles={}, env=env, client=client) as provider:
            result = provider.generate(GenerationRequest(model="recraftv3", prompt="a house", style="digital_illustration"), asset="house")
        assert len(result.pictures) == 1
        assert server.paid_calls == 1


def test_spec_profile_options_are_understood():
    """The spec's shape (rate_limit mapping, timeout, max_retries) reaches the provider."""
    from recraft_build.domain import ProviderProfile
    from recraft_build.providers.registry import make_provider

    profile = ProviderProfile(
        name="proxy",
        protocol="recraft",
        base_url="https://proxy.example/recraft/v1",
        token_env="PROXY_KEY",
        options={"rate_limit": {"requests_per_second": 50, "images_per_minute": 600}, "timeout": 90, "max_retries": 2},
    )
    provider = make_provider("proxy", profiles={"proxy": profile}, env={"PROXY_KEY": "k"})
    try:
        assert provider.name == "proxy"
    finally:
        provider.close()


def test_rate_limits_of_the_built_ins_can_be_raised_from_the_environment() -> None:
    env = {
        "RECRAFT_API_TOKEN": TOKEN,
        "REPLICATE_API_TOKEN": TOKEN,
        "RECRAFT_BUILD_REQUESTS_PER_SECOND": "20",
        "RECRAFT_BUILD_IMAGES_PER_MINUTE": "600",
        "RECRAFT_BUILD_CREATES_PER_MINUTE": "0",
    }
    assert make("recraft", env)._limiter.limits == {"requests": 20.0, "images": pytest.approx(10.0)}
    assert make("auto", env)._limiter.limits == {"requests": 20.0, "images": pytest.approx(10.0)}
    replicate = make("replicate", env)._limiter.limits
    assert replicate == {"requests": 20.0, "images": pytest.approx(10.0)}  # creates: 0 turns it off
    # A profile from the spec keeps its own settings (its rate_limit, else the protocol's).
    profiles = {"elk": ProviderProfile("elk", "recraft", token_env="ELK_KEY", options={"rate_limit": {"images_per_minute": 60}})}
    elk = make("elk", {**env, "ELK_KEY": TOKEN}, profiles)._limiter.limits
    assert elk == {"requests": 5.0, "images": pytest.approx(1.0)}


@pytest.mark.parametrize("value", ["fast", "-5", "inf", "nan"])
def test_a_rate_limit_variable_that_is_not_a_number_is_a_usage_error(value: str) -> None:
    env = {"RECRAFT_API_TOKEN": TOKEN, "RECRAFT_BUILD_IMAGES_PER_MINUTE": value}
    with pytest.raises(UsageError, match="RECRAFT_BUILD_IMAGES_PER_MINUTE"):
        make("recraft", env)


def test_waiting_for_the_rate_limit_is_reported_through_notice() -> None:
    notices: list[str] = []
    provider = make("recraft", {"RECRAFT_API_TOKEN": TOKEN}, notice=notices.append, clock=lambda: 0.0, sleep=lambda s: None)
    for _ in range(8):  # eight workers at once: the last ones wait for the 100/min limit
        provider._limiter.acquire(images=1)
    assert any("rate limit (100 images/min)" in n and "RECRAFT_BUILD_IMAGES_PER_MINUTE" in n for n in notices)


# -- issue 11: resending ambiguous paid calls is the default; one switch restores the strict rule


def test_ambiguous_calls_are_resent_by_default_and_a_variable_turns_it_off() -> None:
    env = {"RECRAFT_API_TOKEN": TOKEN, "REPLICATE_API_TOKEN": TOKEN}
    assert make("recraft", env)._policy.resends == 3
    for value in ("0", "false", "No", "off"):
        strict = {**env, "RECRAFT_BUILD_RESEND_AMBIGUOUS": value}
        assert make("recraft", strict)._policy.resends == 0
        assert make("replicate", strict)._policy.resends == 0
    assert make("recraft", {**env, "RECRAFT_BUILD_RESEND_AMBIGUOUS": "yes"})._policy.resends == 3
    with pytest.raises(UsageError, match="RECRAFT_BUILD_RESEND_AMBIGUOUS"):
        make("recraft", {**env, "RECRAFT_BUILD_RESEND_AMBIGUOUS": "sometimes"})


def test_a_profile_says_for_itself_whether_it_resends() -> None:
    env = {"ELK_KEY": TOKEN, "RECRAFT_BUILD_RESEND_AMBIGUOUS": "1"}
    strict = ProviderProfile("elk", "recraft", token_env="ELK_KEY", options={"resend_ambiguous": False})
    assert make("elk", env, {"elk": strict})._policy.resends == 0  # the variable is for the built-ins
    twice = ProviderProfile("elk", "recraft", token_env="ELK_KEY", options={"max_resends": 1, "response_deadline": 30})
    policy = make("elk", env, {"elk": twice})._policy
    assert (policy.resends, policy.response_deadline) == (1, 30.0)
    with pytest.raises(PlanError, match="resend_ambiguous must be true or false"):
        make("elk", env, {"elk": ProviderProfile("elk", "recraft", token_env="ELK_KEY", options={"resend_ambiguous": "no"})})


def test_the_spec_s_profile_keys_reach_the_provider(tmp_path: Any) -> None:
    from recraft_build.spec.loader import load_spec as load

    spec = tmp_path / "assets.yaml"
    spec.write_text(
        "version: 1\n"
        "providers:\n"
        "  elk:\n"
        "    protocol: recraft\n"
        "    base_url: https://proxy.example/recraft/v1\n"
        "    token_env: ELK_KEY\n"
        "    resend_ambiguous: false\n"
        "    max_resends: 2\n"
        "    response_deadline: 45\n"
        "    download_deadline: 20\n"
        "assets:\n"
        "  - name: a\n"
        "    prompt: a fox\n"
        "    output: a.png\n"
    )
    profiles = load(spec).providers
    policy = make("elk", {"ELK_KEY": TOKEN}, profiles)._policy
    assert (policy.resend_ambiguous, policy.max_resends) == (False, 2)
    assert (policy.response_deadline, policy.download_deadline) == (45.0, 20.0)


def test_the_resend_permit_reaches_the_provider() -> None:
    with FakeServer(token=TOKEN) as server:
        server.add_fault("generate", "drop_after", times=1)
        env = {"RECRAFT_API_TOKEN": TOKEN, "RECRAFT_API_BASE": server.recraft_base}
        client = local_client()
        with make_provider("recraft", profiles={}, env=env, client=client, resend_permit=lambda: False) as p:
            with pytest.raises(AmbiguousError, match="credit limit"):
                p.generate(GenerationRequest(model="recraftv3", prompt="a house", style="digital_illustration"), asset="a")
        client.close()
        assert server.counts["generations"] == 1
