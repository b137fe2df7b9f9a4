"""The asset graph: recraft_build.spec.graph (order, ancestors, cycles, unknown names)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from recraft_build.domain import Asset, GenerationRequest, ImageInput
from recraft_build.errors import SpecError
from recraft_build.spec import graph
from recraft_build.spec.loader import parse_spec


def node(name: str, *parents: str) -> Asset:
    image = ImageInput(asset=parents[0]) if parents else None
    mask = ImageInput(asset=parents[1]) if len(parents) > 1 else None
    op = "inpaint" if mask else ("image_to_image" if image else None)
    return Asset(name, GenerationRequest("recraftv3", "p", operation=op), image=image, mask=mask)


def names(assets) -> list[str]:
    return [a.name for a in assets]


def test_build_order_puts_parents_first_and_keeps_the_spec_order_otherwise():
    assets = [node("c", "b"), node("x"), node("b", "a"), node("a"), node("y")]
    assert names(graph.build_order(assets)) == ["a", "b", "c", "x", "y"]
    plain = [node("p"), node("q"), node("r")]
    assert names(graph.build_order(plain)) == ["p", "q", "r"]


def test_a_mask_from_an_asset_is_an_edge_too():
    assets = [node("child", "pic", "mask"), node("mask"), node("pic")]
    order = names(graph.build_order(assets))
    assert order.index("mask") < order.index("child") and order.index("pic") < order.index("child")
    assert graph.with_ancestors(assets, ["child"]) == {"child", "mask", "pic"}


def test_ancestors_and_descendants():
    assets = [node("a"), node("b", "a"), node("c", "b"), node("d", "a"), node("e")]
    assert graph.with_ancestors(assets, ["c"]) == {"a", "b", "c"}
    assert graph.with_ancestors(assets, ["e"]) == {"e"}
    assert graph.descendants(assets, "a") == {"b", "c", "d"}
    assert graph.descendants(assets, "c") == set()


def test_cycles_are_found_with_their_path():
    assert graph.find_cycles([node("a", "b"), node("b", "a")]) == [["a", "b", "a"]]
    assert graph.find_cycles([node("a", "a")]) == [["a", "a"]]
    (cycle,) = graph.find_cycles([node("a", "c"), node("b", "a"), node("c", "b"), node("d", "a")])
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert graph.find_cycles([node("a"), node("b", "a")]) == []


def test_a_long_chain_needs_no_recursion():
    chain = [node("n0")] + [node(f"n{i}", f"n{i - 1}") for i in range(1, 5000)]
    assert names(graph.build_order(list(reversed(chain)))) == names(chain)
    assert graph.find_cycles(chain) == []
    assert len(graph.with_ancestors(chain, ["n4999"])) == 5000


# -- through the loader: spec errors with the place and the path ---------------------------

def load(text: str, base: Path):
    return parse_spec(textwrap.dedent(text), "assets.yaml", base_dir=base)


def errors(text: str, base: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(text, base)
    assert info.value.exit_code == 3
    return [str(p) for p in info.value.problems]


def test_a_cycle_is_a_spec_error_that_prints_the_path(tmp_path):
    out = errors("""\
        version: 1
        assets:
          - name: a
            image: {asset: b}
            strength: 0.5
            prompt: x
            output: a.png
          - name: b
            image: {asset: a}
            strength: 0.5
            prompt: y
            output: b.png
        """, tmp_path)
    assert out == ["assets.yaml:4:20: assets[0].image.asset: the assets form a cycle: a -> b -> a "
                   "(an asset cannot be made from itself, directly or through others: break the chain)"]


def test_an_asset_made_from_itself_is_a_cycle(tmp_path):
    (line,) = errors("""\
        version: 1
        assets:
          - {name: a, image: {asset: a}, operation: variate, output: a.png}
        """, tmp_path)
    assert "the assets form a cycle: a -> a" in line and "assets[0].image.asset" in line


def test_an_unknown_name_is_a_spec_error_with_suggestions(tmp_path):
    (line,) = errors("""\
        version: 1
        assets:
          - {name: knight, prompt: a knight, output: k.png}
          - name: night
            image: {asset: knigth}
            strength: 0.4
            prompt: at night
            output: n.png
        """, tmp_path)
    assert line.startswith("assets.yaml:5:20: assets[1].image.asset: no asset named 'knigth'")
    assert line.endswith("(did you mean 'knight'?)")


def test_an_svg_parent_is_refused_for_an_operation(tmp_path):
    (line,) = errors("""\
        version: 1
        assets:
          - {name: logo, prompt: a logo, style: vector_illustration, output: logo.svg}
          - {name: logo-night, image: {asset: logo}, strength: 0.3, prompt: at night, output: n.png}
        """, tmp_path)
    assert "asset 'logo' gives an SVG picture" in line and "raster" in line


def test_matrix_children_name_their_parents_by_template(tmp_path):
    spec = load("""\
        version: 1
        assets:
          - name: "icon-{{ item }}"
            matrix: {item: [sword, shield]}
            prompt: "icon of a {{ item }}"
            output: "icons/{{ item }}.png"
          - name: "icon-{{ item }}-gold"
            matrix: {item: [sword, shield]}
            image: {asset: "icon-{{ item }}"}
            strength: 0.3
            prompt: "the same {{ item }}, in gold"
            output: "icons/{{ item }}-gold.png"
        """, tmp_path)
    gold = {a.name: a for a in spec.assets}["icon-shield-gold"]
    assert gold.parents() == ("icon-shield",)
    assert gold.request.operation == "image_to_image" and gold.request.strength == 0.3
    assert names(graph.build_order(spec.assets)) == names(spec.assets)


def test_shards_keep_a_parent_and_its_children_together(tmp_path):
    from recraft_build.engine.session import select_targets
    from recraft_build.spec.loader import load_spec

    spec_file = tmp_path / "assets.yaml"
    lines = ["version: 1", "assets:"]
    for i in range(12):
        lines += [f"  - name: hero{i}", f"    prompt: hero {i}", f"    output: hero{i}.png",
                  f"  - name: hero{i}-night", f"    image: {{asset: hero{i}}}", "    strength: 0.4", "    prompt: at night",
                  f"    output: hero{i}-night.png"]
    spec_file.write_text("\n".join(lines) + "\n")
    spec = load_spec(spec_file)
    seen = []
    for k in range(1, 4):
        part = select_targets(spec, None, f"{k}/3")
        seen += part
        for i in range(12):
            assert (f"hero{i}" in part) == (f"hero{i}-night" in part)
    assert sorted(seen) == sorted(a.name for a in spec.assets)
