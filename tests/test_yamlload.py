"""Safe YAML loading with positions: recraft_build.spec.yamlload."""

from __future__ import annotations

from pathlib import Path

import pytest

from recraft_build.errors import SpecError, UsageError
from recraft_build.spec.yamlload import format_path, load_yaml, read_spec_text


def problem_of(text: str, **kw) -> "object":
    with pytest.raises(SpecError) as info:
        load_yaml(text, "spec.yaml", **kw)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_values_and_positions_are_one_based():
    doc = load_yaml("assets:\n  - name: a\n    outputs:\n      - path: x.png\n", "s.yaml")
    assert doc.data == {"assets": [{"name": "a", "outputs": [{"path": "x.png"}]}]}
    assert doc.position(("assets", 0, "outputs", 0, "path")) == (4, 15)
    assert doc.key_position(("assets", 0, "outputs", 0, "path")) == (4, 9)
    assert doc.position(("assets", 0, "name")) == (2, 11)


def test_missing_path_falls_back_to_nearest_ancestor():
    doc = load_yaml("a:\n  b: 1\n", "s.yaml")
    assert doc.position(("a", "zzz", 3)) == doc.position(("a",)) == (2, 3)
    assert doc.position(("nope",)) == (1, 1)


def test_problem_carries_file_line_col_and_dotted_path():
    doc = load_yaml("assets:\n  - n: 9\n", "s.yaml")
    p = doc.problem(("assets", 0, "n"), "too big", "lower it")
    assert str(p) == "s.yaml:2:8: assets[0].n: too big (lower it)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v: 16:9", "16:9"),  # YAML 1.1 would give the sexagesimal 969
        ("v: yes", "yes"),
        ("v: no", "no"),
        ("v: on", "on"),
        ("v: true", True),
        ("v: False", False),
        ("v: ~", None),
        ("v: null", None),
        ("v:", None),
        ("v: 0x1F", 31),
        ("v: 0o17", 15),
        ("v: 0755", 755),
        ("v: -12", -12),
        ("v: 1.5e3", 1500.0),
        ("v: .5", 0.5),
        ("v: '12'", "12"),
        ("v: 1_000", "1_000"),
        ("v: 2024-01-01", "2024-01-01"),
        ("v: !!str 5", "5"),
        ("v: !!int '5'", 5),
        ("v: !!float 3", 3.0),
        ("v: ! 5", "5"),
    ],
)
def test_plain_scalars_follow_yaml_1_2_core_schema(text, expected):
    value = load_yaml(text, "s.yaml").data["v"]
    assert value == expected and type(value) is type(expected)


def test_duplicate_key_names_both_lines():
    p = problem_of("a: 1\nb: 2\na: 3\n")
    assert (p.line, p.col) == (3, 1)
    assert "duplicate key 'a'" in p.message and "line 1" in p.message


@pytest.mark.parametrize("text", ["1: a", "true: a", "~: a", "1.5: x", "? [a]\n: 1", "? {a: 1}\n: 1"])
def test_non_string_keys_are_refused(text):
    p = problem_of(text)
    assert "key" in p.message and p.line == 1


@pytest.mark.parametrize(
    "text, shown",
    [
        ("a: !!python/object/apply:os.system ['echo hi']", "!!python/object/apply:os.system"),
        ("a: !!binary aGVsbG8=", "!!binary"),
        ("a: !!set {x: null}", "!!set"),
        ("a: !!omap [x: 1]", "!!omap"),
        ("a: !!timestamp 2024-01-01", "!!timestamp"),
        ("a: !custom x", "!custom"),
    ],
)
def test_non_standard_tags_are_refused(text, shown):
    p = problem_of(text)
    assert shown in p.message and "not allowed" in p.message
    assert (p.line, p.col) == (1, 4)


def test_wrongly_tagged_value_is_refused():
    assert "!!int" in problem_of("a: !!int x").message


def test_alias_bomb_is_refused_without_expanding():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    p = problem_of("\n".join(lines))
    assert "alias" in p.message and p.line > 1


def test_aliases_within_the_limit_are_shared_and_placed_at_the_anchor():
    doc = load_yaml("base: &b {model: recraftv3}\nx: *b\n", "s.yaml")
    assert doc.data["x"] == {"model": "recraftv3"}
    assert doc.position(("x", "model")) == doc.position(("base", "model")) == (1, 18)


def test_node_limit_is_configurable():
    assert "1,000" in "".join(problem_of("[" + ", ".join(["1"] * 1001) + "]",
                                           max_nodes=1000).message)


def test_merge_keys_merge_with_explicit_keys_winning():
    text = (
        "base: &b {model: recraftv3, size: 1024x1024}\n"
        "more: &m {n: 2, size: 2048x1024}\n"
        "asset:\n"
        "  <<: [*b, *m]\n"
        "  size: 1820x1024\n"
    )
    doc = load_yaml(text, "s.yaml")
    assert doc.data["asset"] == {"model": "recraftv3", "size": "1820x1024", "n": 2}
    assert doc.position(("asset", "model")) == (1, 18)
    assert doc.position(("asset", "n")) == (2, 14)
    assert doc.position(("asset", "size")) == (5, 9)


def test_merge_of_a_scalar_is_refused():
    assert "merge" in problem_of("a: &a 1\nb:\n  <<: *a\n").message


def test_recursive_and_unknown_aliases_are_refused():
    assert "contains it" in problem_of("a: &a [1, *a]").message
    assert "no anchor" in problem_of("a: *nope").message


def test_deep_nesting_is_refused_not_crashed():
    # libyaml's composer recurses in C: this used to kill the interpreter. Which layer
    # refuses it (our depth check, or a newer PyYAML's own limit) and in what words is
    # not the contract: the file is refused with one problem that has a position.
    p = problem_of("[" * 200_000 + "]" * 200_000)
    assert p.line == 1 and p.col >= 1 and p.message


def test_nesting_past_our_limit_is_refused_with_its_depth():
    # Deeper than our limit but far below any parser's own: our check answers.
    p = problem_of("[" * 150 + "]" * 150)
    assert p.line == 1 and "100" in p.message


def test_deep_nesting_exits_3_with_a_line(tmp_path):
    from recraft_build.cli import main

    spec = tmp_path / "assets.yaml"
    spec.write_text("version: 1\nassets: " + "[" * 200_000 + "]" * 200_000 + "\n")
    assert main(["validate", "-f", str(spec)]) == 3


def test_more_than_one_document_is_refused():
    p = problem_of("a: 1\n---\nb: 2\n")
    assert "more than one YAML document" in p.message and p.line == 2


@pytest.mark.parametrize("text", ["a: .inf", "a: -.Inf", "a: .nan", "a: 1e999"])
def test_non_finite_numbers_are_refused(text):
    assert "number" in problem_of(text).message


def test_huge_integers_are_refused():
    assert "too large" in problem_of("a: " + "9" * 5000).message


def test_syntax_error_has_line_and_column():
    p = problem_of("a: [1, 2\nb: 3\n")
    assert p.message.startswith("YAML syntax error")
    assert p.line == 2


def test_control_characters_are_refused():
    p = problem_of("a: \x07\n")
    assert "control characters" in p.message and p.line == 1


def test_lone_surrogate_is_refused():
    assert "Unicode" in problem_of("a: \ud800\n").message


def test_empty_and_comment_only_documents_give_none():
    assert load_yaml("", "s.yaml").data is None
    assert load_yaml("# just a comment\n", "s.yaml").data is None


def test_text_over_the_size_limit_is_refused():
    assert "limit" in problem_of("a: " + "x" * 200, max_bytes=100).message


def test_format_path():
    assert format_path(("assets", 2, "outputs", 0, "path")) == "assets[2].outputs[0].path"
    assert format_path(()) == ""
    assert format_path((0, "a")) == "[0].a"


def test_read_spec_text(tmp_path: Path):
    good = tmp_path / "assets.yaml"
    good.write_bytes("\ufeffversion: 1\n".encode("utf-8"))
    assert read_spec_text(good) == "version: 1\n"

    with pytest.raises(UsageError, match="not found"):
        read_spec_text(tmp_path / "missing.yaml")
    with pytest.raises(UsageError, match="folder"):
        read_spec_text(tmp_path)

    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        read_spec_text(latin)
    assert "UTF-8" in str(info.value) and info.value.problems[0].line == 2

    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * 300)
    with pytest.raises(SpecError, match="limit"):
        read_spec_text(big, max_bytes=100)
