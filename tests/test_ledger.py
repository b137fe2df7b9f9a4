"""The spend ledger: whole lines under concurrent writers, torn lines skipped, the sums."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from recraft_build.cache.ledger import (
    FileLedger,
    MemoryLedger,
    SpendEntry,
    SpendTotals,
    parse_since,
    summarize,
)
from recraft_build.errors import StoreError, UsageError


def entry(asset="a", credits=40.0, *, spec="/p/assets.yaml", time="2025-07-30T10:00:00Z", op="generate",
          estimated=False, certain=True, resends=0, at_risk=0.0, style=None, build="b1"):
    return SpendEntry(
        time=time, spec=spec, asset=asset, operation=op, provider="recraft", model="recraftv3",
        credits=credits, estimated=estimated, key="k" * 64, build=build, certain=certain,
        resends=resends, at_risk=at_risk, style=style,
    )


def test_entries_round_trip_through_the_file(tmp_path):
    ledger = FileLedger(tmp_path / "cache")
    assert list(ledger.entries()) == []  # nothing written yet, nothing created
    assert not (tmp_path / "cache").exists()
    written = [entry("a"), entry(None, 40, op="create_style", style="brand"), entry("b", 10, estimated=True)]
    for e in written:
        ledger.append(e)
    assert list(FileLedger(tmp_path / "cache").entries()) == written
    lines = ledger.path.read_text().splitlines()
    assert ledger.path == tmp_path / "cache" / "spend" / "ledger.jsonl"
    assert len(lines) == 3 and all(json.loads(line)["v"] == 1 for line in lines)


def _append_many(path: str, tag: str, count: int) -> None:
    ledger = FileLedger(path)
    for i in range(count):
        # Long lines make interleaving likely if writes were not whole and exclusive.
        ledger.append(entry(f"{tag}-{i}-" + "x" * 3000, float(i)))


def test_concurrent_threads_and_processes_never_interleave_lines(tmp_path):
    path = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, f"p{i}", 40)) for i in range(2)]
    threads = [threading.Thread(target=_append_many, args=(path, f"t{i}", 40)) for i in range(3)]
    for w in procs + threads:
        w.start()
    for w in procs + threads:
        w.join()
    assert all(p.exitcode == 0 for p in procs)
    warnings: list[str] = []
    got = list(FileLedger(path, warn=warnings.append).entries())
    assert warnings == []
    assert len(got) == 5 * 40
    assert len({e.asset for e in got}) == 200


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    ledger = FileLedger(tmp_path)
    ledger.append(entry("a"))
    ledger.append(entry("b"))
    with open(ledger.path, "ab") as f:
        f.write(b'{"v":1,"time":"2025-07-30T10:0')  # a crash in the middle of a write
    warnings: list[str] = []
    got = list(FileLedger(tmp_path, warn=warnings.append).entries())
    assert [e.asset for e in got] == ["a", "b"]
    assert len(warnings) == 1 and "1 unreadable line" in warnings[0]
    ledger.append(entry("c"))  # appending after the debris still gives readable lines
    assert [e.asset for e in FileLedger(tmp_path).entries()] == ["a", "b", "c"]


def test_lines_of_another_version_or_shape_are_skipped(tmp_path):
    ledger = FileLedger(tmp_path)
    ledger.append(entry("a"))
    with open(ledger.path, "a") as f:
        f.write(json.dumps({**entry("x").to_json(), "v": 2}) + "\n")
        f.write(json.dumps({**entry("y").to_json(), "credits": -5}) + "\n")
        f.write("[1, 2]\n\n")
    warnings: list[str] = []
    assert [e.asset for e in FileLedger(tmp_path, warn=warnings.append).entries()] == ["a"]
    assert "3 unreadable" in warnings[0]


def test_an_unusable_cache_folder_is_a_store_error_naming_the_file(tmp_path):
    (tmp_path / "spend").write_text("a file where the ledger's folder should be")
    with pytest.raises(StoreError, match="ledger.jsonl"):
        FileLedger(tmp_path).append(entry())


def test_totals_keep_billed_possibly_billed_and_billed_twice_apart():
    t = SpendTotals.of([
        entry(credits=40),
        entry(credits=10, estimated=True),
        entry(credits=80, certain=False),  # the answer was lost: may or may not be billed
        entry(credits=40, resends=1, at_risk=40),  # re-sent once: may be billed twice
    ])
    assert (t.calls, t.credits, t.estimated_credits) == (3, 90, 10)
    assert (t.possibly_billed_calls, t.possibly_billed_credits) == (1, 80)
    assert (t.possibly_billed_twice_calls, t.possibly_billed_twice_credits) == (1, 40)
    assert t.limit_figure == 210
    assert t.to_json()["possibly_billed_twice"] == {"calls": 1, "credits": 40}


def test_summaries_by_asset_spec_and_day_with_filters():
    entries = [
        entry("hero", 40, spec="/shop/assets.yaml", time="2025-07-29T23:59:59Z"),
        entry("hero", 10, spec="/shop/assets.yaml", time="2025-07-30T00:00:00Z", op="remove_background"),
        entry(None, 40, spec="/shop/assets.yaml", op="create_style", style="brand"),
        entry("hero", 80, spec="/game/assets.yaml", estimated=True, time="2025-07-31T08:00:00Z"),
    ]
    by_spec = summarize(entries, by="spec")
    assert [(g.name, g.totals.credits) for g in by_spec.groups] == [("/game/assets.yaml", 80), ("/shop/assets.yaml", 90)]
    assert by_spec.total.credits == 170 and by_spec.total.estimated_credits == 80
    # Two specs both have a "hero": asset groups say whose.
    names = [g.name for g in summarize(entries, by="asset").groups]
    assert names == ["game/assets.yaml:hero", "shop/assets.yaml:hero", "shop/assets.yaml:style brand"]
    shop = summarize(entries, by="asset", spec="/shop/assets.yaml")
    assert [(g.name, g.totals.calls, g.totals.credits) for g in shop.groups] == [("hero", 2, 50), ("style brand", 1, 40)]
    assert shop.skipped == 1
    days = summarize(entries, by="day", since="2025-07-30")
    assert [(g.name, g.totals.credits) for g in days.groups] == [("2025-07-30", 50), ("2025-07-31", 80)]
    assert days.to_json()["total"]["credits"] == 130


def test_bad_grouping_and_dates_are_usage_errors():
    with pytest.raises(UsageError, match="asset, spec, day"):
        summarize([], by="month")
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_since("last tuesday")
    assert parse_since(" 2025-07-01 ") == "2025-07-01"
    assert parse_since(None) is None


def test_memory_ledger_keeps_order():
    ledger = MemoryLedger()
    ledger.append(entry("a"))
    ledger.append(entry("b"))
    assert [e.asset for e in ledger.entries()] == ["a", "b"]
