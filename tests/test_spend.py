"""Exact spend, end to end against the local fake server (issue 11).

For the same work ``plan``'s estimate, the ``build`` summary and what the server billed
are one figure; calls of failed and interrupted builds are in the summary and in the
ledger; ``recraft-build spend`` reads the ledger back; restored pictures keep what they
were bought with.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from fakeserver import FakeServer, make_raster, use_fake_recraft
from recraft_build import api
from recraft_build.cache.ledger import FileLedger
from recraft_build.cli import main
from recraft_build.engine.results import BuildInterrupted, NullReporter
from recraft_build.providers.replicate import TOOL_MODELS
from recraft_build.spec import tables

TOKEN = "sk-test-spend-token-0123456789"

# A shop: a custom style, n: 2, provider steps on the asset and on outputs (two outputs
# share one vectorize), scales (each scale shares the output's background removal), a
# favicon set (sharing it too). Sizes differ so that the fake server's tool results
# (seeded by the upload's length) differ between products.
PRODUCT = """\
  - name: product-{item}
    prompt: "product shot of a {item} on a plain background"
    style: {style}
    size: {size}
    n: 2
    steps: [{{remove_background: {{engine: provider}}}}]
    outputs:
      - path: shop/{item}.png
        steps: [{{resize: {{width: 64}}}}]
        scales: [1, 2]
      - path: shop/{item}.svg
        steps: [{{vectorize: {{engine: provider}}}}]
      - path: shop/{item}-mark.svg
        steps: [{{vectorize: {{engine: provider}}}}]
"""
LOGO = """\
  - name: logo
    prompt: "a round shop logo"
    size: 1820x1024
    outputs:
      - path: brand/logo.png
        steps: [{remove_background: {engine: provider}}, {resize: {width: 128}}]
        scales: [1, 2]
      - path: favicon/
        favicon: true
        steps: [{remove_background: {engine: provider}}]
"""
STYLES = "styles:\n  brand:\n    style: digital_illustration\n    references: [refs/brand.png]\n"
SIZES = {"mug": "1024x1024", "shirt": "1365x1024", "cap": "1024x1365"}


def shop(custom_style: bool = True, *, logo: bool = True) -> str:
    head = "version: 1\noutput_dir: out\ndefaults: {model: recraftv3, style: digital_illustration}\n"
    style = "brand" if custom_style else "digital_illustration"
    products = "".join(PRODUCT.format(item=i, size=size, style=style) for i, size in SIZES.items())
    return head + (STYLES if custom_style else "") + "assets:\n" + products + (LOGO if logo else "")


def recraft_billed(server: FakeServer) -> float:
    """What the fake Recraft server billed: its per-image price for each (raster)
    picture, 10 per tool call (background removal, vectorize), 40 per style."""
    assert all(b.get("style") not in ("vector_illustration", "icon") for b in server.bodies.get("generate", []))
    assert {t["op"] for t in server.bodies.get("tool", [])} <= {"remove_background", "vectorize"}
    c = server.counts
    return server.credits_per_image * c["images"] + 10 * c["tools"] + 40 * c["styles"]


def replicate_billed(server: FakeServer) -> float:
    """Replicate does not report charges: each prediction at the price table's figure."""
    tools = {model: op for op, model in TOOL_MODELS.items()}
    total = 0.0
    for body in server.bodies.get("create", []):
        op = tools.get(body["model"])
        total += tables.OPERATION_CREDITS[op] if op else tables.MODELS["recraftv3"].raster_credits
    return total


def cli(*args: str) -> tuple[int, dict | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    data = json.loads(out.getvalue()) if "--json" in args and out.getvalue().strip() else None
    return code, data, out.getvalue(), err.getvalue()


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as s:
        yield s


@pytest.fixture
def project(tmp_path, monkeypatch, server):
    use_fake_recraft(monkeypatch, server, tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "brand.png").write_bytes(make_raster(64, 64, seed="brand"))
    (tmp_path / "assets.yaml").write_text(shop())
    return tmp_path


def ledger_entries(project: Path) -> list:
    return list(FileLedger(project / "cache").entries())


def test_shop_plan_equals_build_equals_what_the_server_billed(project, server):
    code, plan, _, err = cli("plan", "--json")
    assert code == 0, err
    # 3 x (2 pictures x 40 + remove_background 10 + vectorize 10, shared by two outputs)
    # + logo (40 + one remove_background shared by both scales and the favicon) + style 40
    assert plan["summary"]["credits"] == 3 * 100 + 50 + 40
    assert plan["summary"]["styles_to_create"] == {"brand": 40}
    code, built, _, err = cli("build", "--json")
    assert code == 0, err
    assert built["summary"]["credits"] == plan["summary"]["credits"] == recraft_billed(server)
    assert built["summary"]["estimated_credits"] == 0  # Recraft says what it charged
    assert server.counts["styles"] == 1 and server.counts["images"] == 7 and server.counts["tools"] == 7
    # Each billed call is one ledger line, with the server's figure.
    entries = ledger_entries(project)
    assert len(entries) == server.paid_calls == built["summary"]["calls"]
    assert {e.spec for e in entries} == {str((project / "assets.yaml").resolve())}
    assert sorted({e.operation for e in entries}) == ["create_style", "generate", "remove_background", "vectorize"]
    assert "390 credits spent" in err

    # The same figures for new pictures of everything (the style is pinned by the lock).
    # Another cache folder: the fake server's tool results depend on the upload's size
    # only, so in the same cache the new pictures' steps could hit the old ones' results.
    (project / "assets.yaml").write_text(shop().replace("product shot", "studio photo").replace("round shop", "square shop"))
    billed = recraft_billed(server)
    code, plan, _, _ = cli("plan", "--json", "--cache-dir", "cache2")
    code, built, _, err = cli("build", "--json", "--cache-dir", "cache2")
    assert code == 0, err
    assert plan["summary"]["credits"] == built["summary"]["credits"] == recraft_billed(server) - billed == 350

    # Nothing to do costs nothing; a lost output is restored for free.
    (project / "out" / "shop" / "mug@2x.png").unlink()
    billed = recraft_billed(server)
    code, plan, _, _ = cli("plan", "--json", "--cache-dir", "cache2")
    code, built, _, err = cli("build", "--json", "--cache-dir", "cache2")
    assert plan["summary"]["credits"] == built["summary"]["credits"] == 0 == recraft_billed(server) - billed
    assert built["summary"]["restored"] == 1


def test_replicate_shop_with_n_2_at_the_price_tables_figure(tmp_path, monkeypatch):
    with FakeServer(token=TOKEN) as srv:
        monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
        monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
        monkeypatch.setenv("REPLICATE_API_BASE", srv.replicate_base)
        monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        (tmp_path / "assets.yaml").write_text(shop(custom_style=False))  # Replicate takes no custom style
        code, plan, _, err = cli("plan", "--provider", "replicate", "--json")
        assert code == 0, err
        code, built, _, err = cli("build", "--provider", "replicate", "--json")
        assert code == 0, err
        assert srv.counts["creates"] == 3 * 2 + 1 + 3 * 2 + 1  # one prediction a picture, one a tool call
        assert built["summary"]["credits"] == plan["summary"]["credits"] == replicate_billed(srv) == 350
        # Replicate reports no charges: every figure is the price table's, and says so.
        assert built["summary"]["estimated_credits"] == 350
        assert "350 of them estimated" in err
        entries = list(FileLedger(tmp_path / "cache").entries())
        assert all(e.estimated and e.provider == "replicate" for e in entries)
        assert {e.model for e in entries if e.operation == "generate"} == {"recraft-ai/recraft-v3"}
        code, _, out, _ = cli("spend")
        assert "350*" in out and "estimated from the price table" in out


def test_calls_of_failed_assets_count_and_restored_pictures_keep_their_price(project, server):
    (project / "assets.yaml").write_text(shop(custom_style=False))
    # Every tool call is refused (not billed): each asset fails after paying for its pictures.
    server.add_fault("tool", "status", status=422, body="bad image")
    code, built, _, err = cli("build", "--json", "--keep-going")
    assert code == 1
    assert built["summary"]["failed"] == 4
    assert built["summary"]["credits"] == recraft_billed(server) == 3 * 80 + 40
    assert sorted(a["credits"] for a in built["assets"]) == [40, 80, 80, 80]  # what each failed asset cost
    assert len(ledger_entries(project)) == server.paid_calls == 4
    server.clear_faults()

    billed = recraft_billed(server)
    code, plan, _, _ = cli("plan", "--json")
    code, built, _, err = cli("build", "--json")
    assert code == 0, err
    assert built["summary"]["restored"] == 4 and built["summary"]["generated"] == 0
    # Only the tool calls are new: the pictures were cached when they were paid for.
    assert plan["summary"]["credits"] == built["summary"]["credits"] == recraft_billed(server) - billed == 70
    lock = json.loads((project / "assets.lock").read_text())
    for name, credits in [("product-mug", 80), ("product-shirt", 80), ("product-cap", 80), ("logo", 40)]:
        gen = lock["assets"][name]["generation"]
        assert (gen["provider"], gen["credits"]) == ("recraft", credits)


def test_max_credits_counts_the_calls_of_failed_assets(project, server):
    (project / "assets.yaml").write_text(shop(custom_style=False))
    # The plan (350) passes the limit, so it is refused before any call.
    code, _, _, err = cli("build", "--max-credits", "200", "--keep-going")
    assert code == 3 and server.paid_calls == 0
    # Tool calls are billed by the server, then answered with a 500: their assets fail.
    server.add_fault("tool", "status", status=500, after_work=True)
    code, built, _, err = cli("build", "--json", "--keep-going", "-j", "1", "--max-credits", "350")
    s = built["summary"]
    assert code == 1 and s["failed"] >= 1
    risk = s["possibly_billed"]["credits"] + s["possibly_billed_twice"]["credits"]
    # What the summary counts (and --max-credits held) brackets what the server billed,
    # failed assets included; nothing passed the limit.
    assert s["credits"] <= recraft_billed(server) <= s["credits"] + risk <= 350
    assert s["credits"] >= 3 * 80 + 40  # every picture, though every asset failed after it


def test_a_lost_answer_is_reported_and_held_against_the_budget(project, server):
    (project / "assets.yaml").write_text(shop(custom_style=False, logo=False))
    server.add_fault("generate", "drop_after", times=1)
    code, built, _, err = cli("build", "--json", "-j", "1", "--keep-going")
    s = built["summary"]
    unsure = s["possibly_billed"]["calls"] + s["possibly_billed_twice"]["calls"]
    assert unsure == 1 and "possibly billed" in err
    # The server billed the lost call: the exact figure plus what may have been billed
    # brackets it.
    risk = s["possibly_billed"]["credits"] + s["possibly_billed_twice"]["credits"]
    assert s["credits"] <= recraft_billed(server) <= s["credits"] + risk


class InterruptAfterFirst(NullReporter):
    """Ctrl-C as soon as the first asset is finished."""

    def asset_finished(self, result):
        raise KeyboardInterrupt


def test_an_interrupted_build_reports_what_it_spent(project, server):
    (project / "assets.yaml").write_text(shop(custom_style=False))
    with pytest.raises(BuildInterrupted) as info:
        api.build(project / "assets.yaml", jobs=2, reporter=InterruptAfterFirst())
    spend = info.value.result.spend
    # Calls in flight were finished and counted; all of them are in the ledger.
    assert spend.credits == recraft_billed(server) > 0
    assert sum(e.credits for e in ledger_entries(project)) == spend.credits


def test_spend_command_totals_by_asset_spec_and_day(project, server, tmp_path_factory):
    cli("build")
    other = tmp_path_factory.mktemp("other")
    (other / "assets.yaml").write_text("version: 1\nassets:\n  - name: hero\n    prompt: a hero\n    output: hero.png\n")
    code, _, _, err = cli("build", "-f", str(other / "assets.yaml"))
    assert code == 0, err

    code, data, _, _ = cli("spend", "--json")
    assert code == 0
    assert data["by"] == "spec" and len(data["groups"]) == 2
    assert data["total"]["credits"] == recraft_billed(server) == 390 + 40

    code, data, _, _ = cli("spend", "-f", "assets.yaml", "--json")
    assert data["by"] == "asset" and data["total"]["credits"] == 390
    by_asset = {g["name"]: g["credits"] for g in data["groups"]}
    assert by_asset == {"logo": 50, "product-cap": 100, "product-mug": 100, "product-shirt": 100, "style brand": 40}

    code, data, _, _ = cli("spend", "--by", "day", "--json")
    assert [g["credits"] for g in data["groups"]] == [430] and len(data["groups"][0]["name"]) == 10
    code, data, _, _ = cli("spend", "--since", "2999-01-01", "--json")
    assert data["total"]["credits"] == 0 and data["groups"] == []

    code, _, out, _ = cli("spend", "-f", "assets.yaml")
    assert "product-mug" in out and "total" in out and "$0.39" in out
    code, _, _, err = cli("spend", "--since", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in err


def test_a_second_project_on_the_cache_pays_nothing_and_locks_what_was_paid(project, server, tmp_path_factory):
    code, _, _, err = cli("build")
    assert code == 0, err
    billed = recraft_billed(server)
    twin = tmp_path_factory.mktemp("twin")
    (twin / "refs").mkdir()
    (twin / "refs" / "brand.png").write_bytes((project / "refs" / "brand.png").read_bytes())
    (twin / "assets.yaml").write_text(shop())
    code, plan, _, _ = cli("plan", "-f", str(twin / "assets.yaml"), "--json")
    assert plan["summary"]["credits"] == 0 and plan["summary"]["styles_to_create"] == {}
    code, built, _, err = cli("build", "-f", str(twin / "assets.yaml"), "--json")
    assert code == 0, err
    assert built["summary"]["restored"] == 4 and built["summary"]["credits"] == 0 == recraft_billed(server) - billed
    lock = json.loads((twin / "assets.lock").read_text())
    # Restored from the cache, yet locked with who sold them and what they cost.
    gens = {name: (a["generation"]["provider"], a["generation"]["credits"]) for name, a in lock["assets"].items()}
    assert gens == {"product-mug": ("recraft", 80), "product-shirt": ("recraft", 80),
                    "product-cap": ("recraft", 80), "logo": ("recraft", 40)}
    # A new picture in the twin needs the style: it is found in the cache, not made again,
    # and locked with what it cost when it was made.
    # (A new size too: the fake server's tool results depend on the upload's size only.)
    (twin / "assets.yaml").write_text(shop().replace("of a mug", "of a blue mug").replace("1024x1024", "1536x1024"))
    code, plan, _, _ = cli("plan", "-f", str(twin / "assets.yaml"), "--json")
    code, built, _, err = cli("build", "-f", str(twin / "assets.yaml"), "--json")
    assert code == 0, err
    assert server.counts["styles"] == 1
    assert plan["summary"]["credits"] == built["summary"]["credits"] == recraft_billed(server) - billed == 100
    style = json.loads((twin / "assets.lock").read_text())["styles"]["brand"]
    assert (style["provider"], style["credits"]) == ("recraft", 40)


def test_the_placeholders_real_estimate_is_the_real_providers_plan(project, monkeypatch):
    """Previewing offline, "with a real provider about N" counts what the real plan
    will: the generations and the custom style to create. (Provider steps cannot be
    previewed: the placeholder refuses them, see steps.catalog.choose_engine.)"""
    (project / "assets.yaml").write_text(
        "version: 1\noutput_dir: out\ndefaults: {model: recraftv3}\n" + STYLES +
        "assets:\n  - name: hero\n    prompt: a hero\n    style: brand\n    n: 2\n"
        "    outputs:\n      - path: hero.png\n      - path: hero-small.png\n"
        "        steps: [{resize: {width: 64}}]\n"
    )
    code, real, _, err = cli("plan", "--json")
    assert code == 0, err
    # 2 pictures x 40 + 40 for the style
    assert real["provider"] == "recraft" and real["summary"]["credits"] == 120
    monkeypatch.delenv("RECRAFT_API_TOKEN")
    code, offline, _, err = cli("plan", "--json")
    assert code == 0, err
    assert offline["provider"] == "placeholder" and offline["summary"]["credits"] == 0
    assert offline["summary"]["real_provider_credits"] == 120  # not 80: the style too
    code, _, text, err = cli("plan")
    assert code == 0 and "with a real provider about 120" in text, text
