"""The Replicate predictions provider: mapping, refusals, polling through proxies, faults."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx
import pytest

from fakeserver import FakeClock, FakeServer, LocalOnlyTransport, local_client, make_raster
from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import (
    AmbiguousError,
    AuthError,
    BadResultError,
    ProviderError,
    RequestRejected,
    TransientError,
)
from recraft_build.providers.http import HttpPolicy
from recraft_build.providers.replicate import ReplicateProvider, replicate_input, replicate_model

PNG = make_raster(64, 64, "PNG", "ref")
FAST = HttpPolicy(max_retries=8, backoff_base=0.001, backoff_cap=0.01)
#: FAST under the strict rule: an ambiguous paid call is never sent again.
STRICT = HttpPolicy(max_retries=8, backoff_base=0.001, backoff_cap=0.01, resend_ambiguous=False)


def req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"model": "recraftv3", "prompt": "a red fox", "style": "digital_illustration"}
    base.update(kw)
    return GenerationRequest(**base)


# -- mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,model",
    [
        ({}, "recraft-ai/recraft-v3"),
        ({"style": "vector_illustration"}, "recraft-ai/recraft-v3-svg"),
        ({"style": "icon", "model": "recraftv2"}, "recraft-ai/recraft-20b-svg"),
        ({"model": "recraftv3_vector", "style": None}, "recraft-ai/recraft-v3-svg"),
        ({"model": "recraftv2"}, "recraft-ai/recraft-20b"),
        ({"model": "recraftv4", "style": None}, "recraft-ai/recraft-v4"),
        ({"model": "recraftv4_vector", "style": None}, "recraft-ai/recraft-v4-svg"),
        ({"model": "recraftv4_pro", "style": None}, "recraft-ai/recraft-v4-pro"),
    ],
)
def test_models_map_to_replicate_models(kw: dict[str, Any], model: str) -> None:
    assert replicate_model(req(**kw)) == model


@pytest.mark.parametrize("model", ["recraftv4_1", "recraftv4_pro_vector", "flux"])
def test_models_without_a_replicate_version_are_refused(model: str) -> None:
    with pytest.raises(ValueError, match="not available through Replicate|no vector"):
        replicate_model(req(model=model, style=None))


def test_input_joins_style_and_substyle_and_prefers_aspect_ratio() -> None:
    assert replicate_input(req(substyle="pixel_art", size="1365x1024")) == {
        "prompt": "a red fox",
        "style": "digital_illustration/pixel_art",
        "size": "1365x1024",
    }
    assert replicate_input(req(aspect_ratio="16:9", size=None)) == {"prompt": "a red fox", "style": "digital_illustration", "aspect_ratio": "16:9"}


def test_input_for_the_svg_model_uses_its_own_style_names() -> None:
    assert replicate_input(req(style="vector_illustration", substyle="line_art"))["style"] == "line_art"
    assert replicate_input(req(style="vector_illustration"))["style"] == "any"


def test_v4_models_get_no_style() -> None:
    assert "style" not in replicate_input(req(model="recraftv4"))


@pytest.mark.parametrize(
    "kw,word",
    [
        ({"style": None, "style_id": "abc"}, "custom styles"),
        ({"style": None, "style_ref": "house"}, "custom styles"),
        ({"controls": {"colors": ["#ff0000"]}}, "controls"),
        ({"negative_prompt": "blur"}, "negative_prompt"),
        ({"seed": 1}, "seed"),
        ({"text_layout": ({"text": "a", "bbox": []},)}, "text_layout"),
    ],
)
def test_unsupported_fields_are_refused_before_any_call(kw: dict[str, Any], word: str) -> None:
    calls: list[httpx.Request] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500)))
    p = ReplicateProvider(token="t", client=client)
    with pytest.raises(RequestRejected, match=word) as info:
        p.generate(req(**kw), asset="hero")
    assert calls == []
    assert "recraft provider" in str(info.value) and "asset 'hero'" in str(info.value)


# -- against the local server -------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    c = local_client()
    yield c
    c.close()


def provider(server: FakeServer, client: httpx.Client, **kw: Any) -> ReplicateProvider:
    kw.setdefault("policy", FAST)
    kw.setdefault("token", server.token)
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("poll_interval", 0.01)
    kw.setdefault("poll_max_interval", 0.02)
    return ReplicateProvider("replicate", base_url=server.replicate_base, client=client, **kw)


def test_full_generate_with_prefer_wait(client: httpx.Client) -> None:
    with FakeServer(latency=0.02) as server:
        result = provider(server, client).generate(req(substyle="pixel_art", n=3, aspect_ratio="16:9"), asset="fox")
        assert len(result.pictures) == 3 and result.credits is None
        assert result.meta["model"] == "recraft-ai/recraft-v3"
        assert len(set(result.meta["prediction_ids"])) == 3
        assert server.counts["creates"] == 3 and server.paid_calls == 3
        assert server.counts["polls"] == 0
        assert {r.prefer for r in server.requests if r.route == "create"} == {"wait=60"}
        assert server.bodies["create"][0]["input"] == {"prompt": "a red fox", "style": "digital_illustration/pixel_art", "aspect_ratio": "16:9"}
        assert server.download_auth_seen == []


def test_polling_goes_through_the_proxy_base_not_the_foreign_urls(client: httpx.Client) -> None:
    with FakeServer(replicate_prefix="/replicate/v1", foreign_urls=True, honour_wait=False, latency=0.05, output_as_list=True) as server:
        result = provider(server, client).generate(req(style="vector_illustration"), asset="logo")
        assert result.pictures[0].is_svg
        assert server.counts["polls"] >= 1
        assert all(r.path.startswith("/replicate/v1/") or r.route == "download" for r in server.requests)
        transport = client._transport
        assert isinstance(transport, LocalOnlyTransport) and transport.refused == []


def test_tool_models_get_the_picture_as_a_data_uri(client: httpx.Client) -> None:
    with FakeServer() as server:
        p = provider(server, client)
        out = p.transform("vectorize", Picture(PNG, "image/png"), {}, asset="a")
        assert out.picture.is_svg and out.meta["model"] == "recraft-ai/recraft-vectorize"
        up = p.transform("crisp_upscale", Picture(PNG, "image/png"), {}, asset="a")
        assert up.picture.media_type == "image/png"
        assert server.bodies["create"][0]["input"]["image"].startswith("data:image/png;base64,")
        assert not p.supports("image_to_image")
        with pytest.raises(RequestRejected, match="not supported"):
            p.transform("image_to_image", Picture(PNG, "image/png"), {}, asset="a")


def test_failed_prediction_carries_the_model_error(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "prediction_failed", body="NSFW content detected. Try another prompt")
        with pytest.raises(BadResultError, match="NSFW content detected") as info:
            provider(server, client).generate(req(), asset="a")
        assert "failed" in str(info.value)
        assert server.counts["creates"] == 1


def test_canceled_prediction_is_transient(client: httpx.Client) -> None:
    with FakeServer(honour_wait=False) as server:
        server.add_fault("create", "prediction_canceled")
        with pytest.raises(TransientError, match="canceled"):
            provider(server, client).generate(req(), asset="a")


def test_prediction_that_never_finishes_is_cancelled(client: httpx.Client) -> None:
    clock = FakeClock()
    with FakeServer(honour_wait=False, latency=30.0) as server:
        p = provider(server, client, sleep=clock.sleep, clock=clock.now, poll_timeout=5.0, poll_interval=1.0, poll_max_interval=1.0)
        with pytest.raises(AmbiguousError, match="did not finish within 5 s"):
            p.generate(req(), asset="a")
        assert server.counts["cancels"] == 1 and server.counts["creates"] == 1


def test_flaky_network_costs_time_never_money_twice(client: httpx.Client) -> None:
    with FakeServer(honour_wait=False, latency=0.02) as server:
        server.add_fault("create", "status", status=429, retry_after="0", rate=0.2)
        server.add_fault("create", "status", status=503, rate=0.1)
        server.add_fault("poll", "status", status=500, rate=0.2)
        server.add_fault("poll", "drop_before", rate=0.1)
        server.add_fault("poll", "slow", delay=0.02, rate=0.1)
        server.add_fault("download", "status", status=502, rate=0.1)
        server.add_fault("download", "truncate", rate=0.1)
        p = provider(server, client)
        requests = [req(prompt=f"asset {i}", n=1 + i % 2) for i in range(20)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda ir: p.generate(ir[1], asset=f"a{ir[0]}"), enumerate(requests)))
        assert [len(r.pictures) for r in results] == [r.n for r in requests]
        assert server.counts["creates"] == sum(r.n for r in requests) == server.paid_calls


@pytest.mark.parametrize("fault", [{"kind": "drop_after"}, {"kind": "status", "status": 500, "after_work": True}])
@pytest.mark.parametrize("policy", [FAST, STRICT])
def test_lost_create_answer_is_never_resent(client: httpx.Client, fault: dict[str, Any], policy: HttpPolicy) -> None:
    """Issue 11 replaced the old failure here: the lost prediction is found by listing
    recent predictions and followed (in the strict mode too: nothing is sent twice)."""
    with FakeServer() as server:
        server.add_fault("create", times=1, **fault)
        result = provider(server, client, policy=policy).generate(req(), asset="a")
        assert server.counts["creates"] == 1 and server.paid_calls == 1
        assert [r.route for r in server.requests][:2] == ["create", "list"]
        assert result.resends == 0
        assert result.meta["prediction_ids"] == list(server._predictions)


@pytest.mark.parametrize("fault", [{"kind": "drop_after"}, {"kind": "status", "status": 500, "after_work": True}])
def test_lost_create_answer_is_never_resent_in_the_strict_mode_without_a_listing(
    client: httpx.Client, fault: dict[str, Any]
) -> None:
    with FakeServer(list_predictions=False) as server:
        server.add_fault("create", **fault)
        with pytest.raises(AmbiguousError, match="may have been billed") as info:
            provider(server, client, policy=STRICT).generate(req(), asset="a")
        assert server.counts["creates"] == 1
        assert [r.route for r in server.requests] == ["create", "list"]
        assert "not created again" in str(info.value)


def test_poll_that_keeps_failing_is_ambiguous_with_the_prediction_id(client: httpx.Client) -> None:
    with FakeServer(honour_wait=False, latency=1.0) as server:
        server.add_fault("poll", "status", status=503)
        with pytest.raises(AmbiguousError, match="was created but could not be followed") as info:
            provider(server, client, policy=HttpPolicy(max_retries=2, backoff_base=0.001)).generate(req(), asset="a")
        (pid,) = server._predictions
        assert server.counts["creates"] == 1
        assert pid in str(info.value) and "Replicate dashboard" in str(info.value)


def test_401_names_the_variable_and_is_not_retried(client: httpx.Client) -> None:
    with FakeServer() as server:
        with pytest.raises(AuthError) as info:
            provider(server, client, token="bad-token-abcdef").generate(req(), asset="a")
        assert "REPLICATE_API_TOKEN" in str(info.value) and "valid authentication token" in str(info.value)
        assert server.counts["requests"] == 1


def test_422_problem_detail_is_shown_and_not_retried(client: httpx.Client) -> None:
    with FakeServer() as server:
        with pytest.raises(RequestRejected, match="input.style") as info:
            provider(server, client).generate(req(style="oil_paint"), asset="a")
        assert info.value.status == 422
        assert server.counts["requests"] == 1 and server.paid_calls == 0


def test_wrong_proxy_prefix_is_explained(client: httpx.Client) -> None:
    with FakeServer(replicate_prefix="/replicate/v1") as server:
        p = ReplicateProvider("kkiai", base_url=server.url + "/v1", token=server.token, client=client, policy=FAST)
        with pytest.raises(RequestRejected, match="/replicate/v1"):
            p.generate(req(), asset="a")


def test_token_never_appears_in_any_error(client: httpx.Client) -> None:
    token = "r8_LEAKCHECK_0123456789abcdef"
    errors: list[BaseException] = []
    for fault in (
        {"route": "create", "kind": "prediction_failed", "body": f"auth {token} rejected"},
        # Every answer lost (the listing's too), so the lost create ends in an error.
        {"route": "*", "kind": "drop_after"},
        {"route": "create", "kind": "status", "status": 422, "body": f"Bearer {token}"},
        {"route": "download", "kind": "html"},
    ):
        with FakeServer(token=token) as server:
            server.add_fault(**fault)
            p = provider(server, client, token=token, policy=HttpPolicy(max_retries=1, backoff_base=0.001))
            assert token not in repr(p)
            with pytest.raises(ProviderError) as info:
                p.generate(req(), asset="a")
            errors.append(info.value)
    for err in errors:
        chain: BaseException | None = err
        while chain is not None:
            for text in (str(chain), repr(chain), json.dumps([str(a) for a in chain.args])):
                assert token not in text
            chain = chain.__cause__ or chain.__context__


# -- issue 11: a lost create is looked up, not paid for twice ---------------------------------


@pytest.mark.parametrize(
    "response,ours",
    [
        (httpx.Response(500, json={"type": "about:blank", "title": "Internal", "status": 500, "detail": "boom"}, headers={"content-type": "application/problem+json"}), True),
        (httpx.Response(500, json={"detail": "Something went wrong"}), True),
        (httpx.Response(500, json={"title": "Error", "status": 502}), False),  # not this answer's status
        (httpx.Response(500, text="upstream connect error", headers={"content-type": "text/plain"}), False),
        (httpx.Response(500, text="<html>500</html>", headers={"content-type": "text/html"}), False),
        (httpx.Response(500, json={"id": "abc", "status": "failed"}), False),
    ],
)
def test_replicate_s_own_error_body_is_recognised(response: httpx.Response, ours: bool) -> None:
    from recraft_build.providers.replicate import is_api_error

    assert is_api_error(response) is ours


def test_a_500_with_problem_details_is_retried_and_not_billed(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "status", status=500, times=2)  # before the work: problem details
        result = provider(server, client, policy=STRICT).generate(req(), asset="a")
        assert result.resends == 0 and server.counts["creates"] == 1
        assert [r.route for r in server.requests].count("create") == 3
        assert "list" not in [r.route for r in server.requests]


def test_n_identical_creates_never_share_a_found_prediction(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "drop_after", times=2)  # the first two creates lose their answers
        result = provider(server, client).generate(req(n=3), asset="a")
        ids = result.meta["prediction_ids"]
        assert len(set(ids)) == 3 and set(ids) == set(server._predictions)
        assert server.counts["creates"] == 3 and result.resends == 0


def test_the_lost_prediction_is_found_on_a_later_page_through_our_base_only() -> None:
    transport = LocalOnlyTransport()
    with httpx.Client(transport=transport) as client, FakeServer(replicate_prefix="/replicate/v1", list_page_size=2) as server:
        others = provider(server, client)
        made: list[Any] = []

        def sleep(seconds: float) -> None:
            # While the lookup waits, another process on the account creates five
            # predictions: the lost one is now on the third page of two.
            if not made:
                made.extend(others.generate(req(prompt=f"noise {i}"), asset=f"n{i}") for i in range(5))

        server.add_fault("create", "drop_after", times=1)
        result = provider(server, client, sleep=sleep).generate(req(prompt="the lost one"), asset="a")
        assert result.resends == 0 and server.counts["creates"] == 6
        assert server.counts["lists"] == 3
        # The listing's next URL points at api.replicate.com: only its cursor was used.
        assert transport.refused == []
        assert all(r.path == "/replicate/v1/predictions" for r in server.requests if r.route == "list")


def test_a_create_that_never_arrived_is_created_again_and_counted(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "drop_before", times=1)
        result = provider(server, client).generate(req(), asset="a")
        # Not listed after two looks: sent again, billed once, but reported as a
        # possible double charge (the server might have been slow to list it).
        assert result.resends == 1
        assert server.counts["creates"] == 1 and server.counts["lists"] == 2


def test_the_strict_rule_does_not_create_again_when_the_listing_has_nothing(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "drop_before", times=1)
        with pytest.raises(AmbiguousError, match="not created again") as info:
            provider(server, client, policy=STRICT).generate(req(), asset="a")
        assert server.counts["creates"] == 0
        assert "RemoteProtocolError" in str(info.value)


def test_a_trickled_create_answer_is_cut_and_the_prediction_found(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "trickle", delay=0.05, times=1)
        p = provider(server, client, wait_seconds=0, policy=HttpPolicy(max_retries=2, backoff_base=0.001, response_deadline=0.3))
        result = p.generate(req(), asset="a")
        assert result.resends == 0 and server.counts["creates"] == 1


def test_a_lost_tool_create_is_created_again_when_its_file_input_is_not_listed_as_sent(client: httpx.Client) -> None:
    # [U] What Replicate lists for a data: URI input is not known; the fake shortens it,
    # so the lookup cannot prove which prediction is ours and the create is sent again.
    with FakeServer() as server:
        server.add_fault("create", "drop_after", times=1)
        out = provider(server, client).transform("vectorize", Picture(PNG, "image/png"), {}, asset="a")
        assert out.resends == 1 and server.counts["creates"] == 2


def test_under_heavy_faults_every_picture_is_billed_exactly_once(client: httpx.Client) -> None:
    """The issue's network (15 % 500s with Replicate's body, 15 % 429s, 10 % answers lost
    after the work) on every route, four workers: all succeed, no prediction twice."""
    with FakeServer(latency=0.005, honour_wait=False) as server:
        server.add_fault("*", "status", status=500, error_body="api", rate=0.15)
        server.add_fault("*", "status", status=429, retry_after="0", rate=0.15)
        server.add_fault("*", "drop_after", rate=0.10)
        p = provider(server, client)
        requests = [req(prompt=f"asset {i}", n=1 + i % 2) for i in range(20)]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda ir: p.generate(ir[1], asset=f"a{ir[0]}"), enumerate(requests)))
        pictures = sum(r.n for r in requests)
        assert [len(r.pictures) for r in results] == [r.n for r in requests]
        assert server.counts["creates"] == pictures == server.paid_calls
        assert sum(r.resends for r in results) == 0
        assert server.counts["lists"] > 0, "the faults should have lost some creates"


def test_a_create_that_fails_after_being_created_again_is_ambiguous(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "drop_before", times=1)  # lost, and not listed
        server.add_fault("create", "status", status=503)  # then the service is down
        with pytest.raises(AmbiguousError, match="billed") as info:
            provider(server, client, policy=HttpPolicy(max_retries=2, backoff_base=0.001)).generate(req(), asset="a")
        assert info.value.resends == 1


def test_creating_again_asks_the_permit_first(client: httpx.Client) -> None:
    with FakeServer() as server:
        server.add_fault("create", "drop_before", times=1)
        with pytest.raises(AmbiguousError, match="not created again"):
            provider(server, client, resend_permit=lambda: False).generate(req(), asset="a")
        assert server.counts["creates"] == 0
