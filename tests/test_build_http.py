"""Whole builds against the local fake Recraft/Replicate server: money is paid once.

These drive the real command line (in-process, or as a subprocess where a signal or a
second process is the point) with the real providers over real HTTP on 127.0.0.1.
The server counts paid calls, so "paid once" is an assertion, not a hope.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fakeserver import FakeServer, use_fake_recraft
from recraft_build.cli import main

TOKEN = "sk-test-SECRET-token-value-42"


def spec_text(n: int, *, extra: str = "", style: str = "digital_illustration") -> str:
    items = ", ".join(f"i{i}" for i in range(n))
    return f"""\
version: 1
output_dir: out
defaults: {{model: recraftv3, style: {style}, size: 1024x1024}}
assets:
  - name: "icon-{{{{ item }}}}"
    matrix: {{item: [{items}]}}
    prompt: "flat game icon number {{{{ item }}}}"
    outputs:
      - path: "icons/{{{{ item }}}}.png"
        steps: [{{resize: {{width: 64}}}}]
{extra}"""


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as s:
        yield s


@pytest.fixture
def project(tmp_path, monkeypatch, server):
    use_fake_recraft(monkeypatch, server, tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets.yaml").write_text(spec_text(4))
    return tmp_path


def cli(*args: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    data = json.loads(out.getvalue()) if "--json" in args and out.getvalue().strip() else None
    return code, data, err.getvalue()


def test_build_pays_once_and_noop_makes_no_call(project, server):
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert server.counts["generations"] == 4
    assert data["summary"]["credits"] == 160
    lock = json.loads((project / "assets.lock").read_text())
    entry = lock["assets"]["icon-i0"]["generation"]
    assert entry["family"] == "recraft" and entry["credits"] == 40
    assert entry["candidates"][0]["meta"].get("image_id")
    before = len(server.requests)
    code, data, _ = cli("build", "--json")
    assert code == 0 and data["summary"]["up_to_date"] == 4
    assert len(server.requests) == before  # not a single request


def test_token_never_leaks(project, server):
    cli("build")
    server.add_fault("generate", "status", status=401, times=1)
    (project / "assets.yaml").write_text(spec_text(5))
    code, data, err = cli("build", "--json", "--keep-going")
    assert code == 1
    assert "RECRAFT_API_TOKEN" in err  # the 401 says which variable to fix
    haystacks = [err, json.dumps(data), (project / "assets.lock").read_text()]
    for path in (project / "cache").rglob("*"):
        if path.is_file():
            haystacks.append(path.read_bytes().decode("latin-1"))
    for text in haystacks:
        assert TOKEN not in text


def test_flaky_network_costs_time_not_money(project, server):
    server.add_fault("generate", "status", status=429, retry_after="0", rate=0.3)
    server.add_fault("generate", "status", status=503, rate=0.2)
    server.add_fault("download", "status", status=500, rate=0.3)
    server.add_fault("download", "drop_before", rate=0.1)
    (project / "assets.yaml").write_text(spec_text(8))
    code, data, err = cli("build", "--json", "-j", "4")
    assert code == 0, err
    assert server.counts["generations"] == 8  # each picture paid exactly once
    assert data["summary"]["generated"] == 8


def test_lost_answer_is_not_resent_and_next_build_recovers(project, server, monkeypatch):
    monkeypatch.setenv("RECRAFT_BUILD_RESEND_AMBIGUOUS", "0")  # the strict rule (issue 11 made resending the default)
    server.add_fault("generate", "drop_after", times=1)
    (project / "assets.yaml").write_text(spec_text(1))
    code, data, err = cli("build", "--json")
    assert code == 1
    assert server.counts["generations"] == 1  # billed once, not resent blindly
    assert "billed" in err or "may have" in err
    code, data, err = cli("build", "--json")
    assert code == 0 and data["summary"]["generated"] == 1


def test_rejected_request_is_a_clear_failure_without_retry(project, server):
    server.add_fault("generate", "status", status=422, times=1)
    (project / "assets.yaml").write_text(spec_text(1))
    code, data, err = cli("build", "--json")
    assert code == 1
    assert data["assets"][0]["status"] == "failed"
    assert "422" in data["assets"][0]["error"] and "icon-i0" in data["assets"][0]["error"]
    assert len([r for r in server.requests if "generations" in r.path]) == 1


def test_replicate_protocol_through_a_proxy_prefix(tmp_path, monkeypatch):
    with FakeServer(token=TOKEN, replicate_prefix="/replicate/v1", foreign_urls=True, honour_wait=False) as srv:
        monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
        monkeypatch.setenv("KKIAI_KEY", TOKEN)
        monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        extra = f"""providers:
  kkiai:
    protocol: replicate
    base_url: "{srv.replicate_base}"
    token_env: KKIAI_KEY
"""
        (tmp_path / "assets.yaml").write_text(extra + spec_text(2))
        code, data, err = cli("build", "--provider", "kkiai", "--json")
        assert code == 0, err
        assert srv.counts["creates"] == 2
        assert data["summary"]["generated"] == 2
        # Replicate does not report what it charged: the price table's figure is counted
        assert data["summary"]["credits"] == 80


def test_official_api_and_proxy_share_the_cache(project, server, monkeypatch):
    cli("build")
    with FakeServer(token=TOKEN, recraft_prefix="/recraft/v1", auth="raw", recraft_shape="elkapi") as proxy:
        monkeypatch.setenv("ELK_KEY", TOKEN)
        spec = f"""providers:
  elkapi:
    protocol: recraft
    base_url: "{proxy.recraft_base}"
    auth: raw
    token_env: ELK_KEY
""" + spec_text(4)
        (project / "assets.yaml").write_text(spec)
        (project / "out" / "icons" / "i0.png").unlink()
        code, data, err = cli("build", "--provider", "elkapi", "--json")
        assert code == 0, err
        assert proxy.paid_calls == 0  # same model, same request: the cache answers


def test_two_builds_on_one_cache_at_once_pay_once(tmp_path, server):
    env = dict(os.environ, RECRAFT_API_TOKEN=TOKEN, RECRAFT_API_BASE=server.recraft_base,
               RECRAFT_BUILD_CACHE=str(tmp_path / "cache"))
    env.pop("REPLICATE_API_TOKEN", None)
    server.latency = 0.2
    dirs = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "assets.yaml").write_text(spec_text(6))
        dirs.append(d)
    procs = [
        subprocess.Popen([sys.executable, "-m", "recraft_build", "build", "-j", "3"], cwd=d, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for d in dirs
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert server.counts["generations"] == 6  # two projects, one cache, each picture paid once
    for d in dirs:
        assert len(list((d / "out" / "icons").glob("*.png"))) == 6


def test_sigkill_midway_loses_nothing_paid_for(tmp_path, server):
    env = dict(os.environ, RECRAFT_API_TOKEN=TOKEN, RECRAFT_API_BASE=server.recraft_base,
               RECRAFT_BUILD_CACHE=str(tmp_path / "cache"))
    env.pop("REPLICATE_API_TOKEN", None)
    server.latency = 0.15
    (tmp_path / "assets.yaml").write_text(spec_text(16))
    proc = subprocess.Popen([sys.executable, "-m", "recraft_build", "build", "-j", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "assets.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lock.exists() and len(json.loads(lock.read_text())["assets"]) >= 4:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # let the server finish counting the calls that were in flight
    paid_before = server.counts["generations"]
    locked = len(json.loads(lock.read_text())["assets"])
    assert 4 <= locked < 16

    run = subprocess.run([sys.executable, "-m", "recraft_build", "build", "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    paid_after = server.counts["generations"] - paid_before
    # Everything the killed build had received was cached: only the rest is paid for.
    assert paid_after <= 16 - locked
    assert server.counts["generations"] <= 16 + 2  # at most the in-flight calls (-j 2) were lost
    assert not [p for p in tmp_path.rglob(".rbtmp-*")]
    assert len(list((tmp_path / "out" / "icons").glob("*.png"))) == 16


def test_frozen_ci_with_lock_and_cache_makes_no_call(project, server):
    cli("build")
    import shutil

    shutil.rmtree(project / "out")
    before = len(server.requests)
    code, data, err = cli("build", "--frozen", "--json")
    assert code == 0, err
    assert len(server.requests) == before
    assert data["summary"]["restored"] == 4


def test_max_credits_stops_a_running_build(project, server):
    (project / "assets.yaml").write_text(spec_text(5))
    code, data, err = cli("build", "--json", "--keep-going", "-j", "1", "--max-credits", "1000")
    assert code == 0
    # a tighter limit: the plan is refused before any call
    (project / "assets.yaml").write_text(spec_text(8))
    before = server.counts["generations"]
    code, _, err = cli("build", "--max-credits", "100")
    assert code == 3 and server.counts["generations"] == before


def test_custom_style_created_once_and_keyed_by_references(project, server):
    from PIL import Image

    ref = project / "refs"
    ref.mkdir()
    Image.new("RGB", (300, 300), (200, 30, 30)).save(ref / "a.png")
    spec = """styles:
  house:
    style: digital_illustration
    references: [refs/a.png]
""" + spec_text(2).replace("style: digital_illustration,", "style: house,")
    (project / "assets.yaml").write_text(spec)
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert server.counts["styles"] == 1
    lock = json.loads((project / "assets.lock").read_text())
    sid = lock["styles"]["house"]["style_id"]
    bodies = server.bodies.get("generate", [])
    assert bodies and all(b.get("style_id") == sid for b in bodies)
    assert cli("build", "--json")[1]["summary"]["up_to_date"] == 2
    Image.new("RGB", (300, 300), (30, 200, 30)).save(ref / "a.png")  # a new reference picture
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert server.counts["styles"] == 2
    assert data["summary"]["generated"] == 2


def test_ctrl_c_finishes_in_flight_calls_and_exits_130(tmp_path, server):
    env = dict(os.environ, RECRAFT_API_TOKEN=TOKEN, RECRAFT_API_BASE=server.recraft_base,
               RECRAFT_BUILD_CACHE=str(tmp_path / "cache"))
    env.pop("REPLICATE_API_TOKEN", None)
    server.latency = 0.3
    (tmp_path / "assets.yaml").write_text(spec_text(12))
    proc = subprocess.Popen([sys.executable, "-m", "recraft_build", "build", "-j", "3"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "assets.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and json.loads(lock.read_text())["assets"]):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.5)
    paid = server.counts["generations"]
    assert paid < 12
    # What the interrupted build paid is reported, and every paid call is in the ledger.
    from recraft_build.cache.ledger import FileLedger

    assert "credits spent" in err
    assert len([e for e in FileLedger(tmp_path / "cache").entries() if e.operation == "generate"]) == paid
    # every call that was in flight at Ctrl-C was finished and kept: nothing is paid twice
    run = subprocess.run([sys.executable, "-m", "recraft_build", "build"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert server.counts["generations"] == 12


# -- issue 11: builds that finish on a flaky network ------------------------------------------


def flaky_network(server: FakeServer) -> None:
    """The issue's network, on every route (API calls, polls, listings, downloads):
    15 % 500s carrying the API's own error body (refused, not billed), 15 % 429s with
    Retry-After, 10 % connections dropped after the work was done (billed, answer lost)."""
    server.add_fault("*", "status", status=500, error_body="api", rate=0.15)
    server.add_fault("*", "status", status=429, retry_after="0", rate=0.15)
    server.add_fault("*", "drop_after", rate=0.10)


@pytest.mark.parametrize("provider", ["recraft", "replicate"])
def test_a_flaky_network_build_finishes_in_one_run(tmp_path, monkeypatch, provider):
    with FakeServer(token=TOKEN, latency=0.01) as server:
        for var in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN"):
            monkeypatch.setenv(var, TOKEN)
        monkeypatch.setenv("RECRAFT_API_BASE", server.recraft_base)
        monkeypatch.setenv("REPLICATE_API_BASE", server.replicate_base)
        monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
        # The client-side pace is not what is tested here: turn it off.
        for var in ("RECRAFT_BUILD_REQUESTS_PER_SECOND", "RECRAFT_BUILD_IMAGES_PER_MINUTE", "RECRAFT_BUILD_CREATES_PER_MINUTE"):
            monkeypatch.setenv(var, "0")
        monkeypatch.chdir(tmp_path)
        (tmp_path / "assets.yaml").write_text(spec_text(20))
        flaky_network(server)
        code, data, err = cli("build", "--json", "-j", "4", "--provider", provider)
        assert code == 0, err
        assert data["summary"]["generated"] == 20 and data["summary"]["failed"] == 0
        assert len(list((tmp_path / "out" / "icons").glob("*.png"))) == 20
        if provider == "replicate":
            assert server.counts["creates"] == 20  # every lost create was found, never made twice
        else:
            # Recraft cannot look a call up: a lost answer is sent again, and the extra
            # charges are what the results report as resends (asserted where the
            # results are seen: test_providers_recraft).
            assert server.counts["generations"] >= 20
            # What the server billed beyond the pictures is what the summary reports.
            twice = data["summary"]["possibly_billed_twice"]["calls"]
            assert server.counts["generations"] - 20 == twice
        assert server.paid_calls == server.counts["generations"] + server.counts["creates"]
        server.clear_faults()
        before = server.paid_calls
        code, data, _ = cli("build", "--json", "--provider", provider)
        assert code == 0 and data["summary"]["up_to_date"] == 20 and server.paid_calls == before


def test_the_strict_rule_still_fails_the_asset_instead_of_paying_again(project, server, monkeypatch):
    monkeypatch.setenv("RECRAFT_BUILD_RESEND_AMBIGUOUS", "false")
    server.add_fault("generate", "drop_after", times=1)
    server.add_fault("generate", "status", status=500, error_body="api", times=2)
    (project / "assets.yaml").write_text(spec_text(1))
    code, data, err = cli("build", "--json")
    assert code == 1 and "may have been billed" in data["assets"][0]["error"]
    assert server.counts["generations"] == 1


@pytest.mark.parametrize("provider", ["recraft", "replicate"])
def test_jobs_caps_the_paid_calls_under_way_not_the_downloads(tmp_path, monkeypatch, provider):
    """-j N: at most N paid calls at the server at once (a Replicate prediction counts
    until it is done), while downloads run beside them on extra workers; -j 1 works
    (a prediction's create is sent inside its own slot)."""
    with FakeServer(token=TOKEN, latency=0.05) as server:
        use_fake_recraft(monkeypatch, server, tmp_path / "cache")
        monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
        monkeypatch.setenv("REPLICATE_API_BASE", server.replicate_base)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "assets.yaml").write_text(spec_text(8))
        code, data, err = cli("build", "--json", "-j", "3", "--provider", provider)
        assert code == 0, err
        assert data["summary"]["generated"] == 8
        if provider == "recraft":
            assert server.peak_generating == 3  # calls overlapped, never more than -j
        (tmp_path / "assets.yaml").write_text(spec_text(8).replace("number", "no."))
        server.peak_generating = 0
        code, data, err = cli("build", "--json", "-j", "1", "--provider", provider)
        assert code == 0, err
        assert data["summary"]["generated"] == 8
        if provider == "recraft":
            assert server.peak_generating == 1
