"""Sandboxed Jinja templates: recraft_build.spec.templating."""

from __future__ import annotations

import pytest

from recraft_build.domain import Where
from recraft_build.errors import SpecError
from recraft_build.spec.templating import TemplateRenderer, is_template

WHERE = Where("assets.yaml", 7, 13, "assets[0].prompt")


def render(source: str, asset: str | None = "icon-sword", **context):
    return TemplateRenderer().render(source, context, where=WHERE, asset=asset)


def failure(source: str, **context):
    with pytest.raises(SpecError) as info:
        render(source, **context)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.col, problem.path) == (
        "assets.yaml", 7, 13, "assets[0].prompt")
    return problem


def test_renders_variables():
    assert render("icon of a {{ item }} in {{ world }}", item="sword", world="a village") == \
        "icon of a sword in a village"


def test_plain_text_is_returned_untouched():
    text = "no template here"
    assert render(text) is text
    assert not is_template(text) and is_template("{{ x }}")


def test_autoescape_is_off():
    assert render("{{ s }}", s="<b> & 'q'") == "<b> & 'q'"


def test_undefined_variable_names_variable_asset_and_field():
    p = failure("a {{ itme }}", item="sword")
    assert "undefined template variable 'itme'" in p.message
    assert "icon-sword" in p.message
    assert p.hint == "did you mean 'item'?"


def test_undefined_variable_lists_known_names_when_nothing_is_close():
    p = failure("{{ zzz }}", item="sword", world="w")
    assert "item" in p.hint and "world" in p.hint


def test_missing_attribute_is_an_error():
    assert "no attribute" in failure("{{ d.missing }}", d={}).message


def test_defined_test_and_default_filter_work_with_strict_undefined():
    assert render("{% if x is defined %}{{ x }}{% else %}none{% endif %}") == "none"
    assert render("{{ x | default('plain') }}") == "plain"


def test_syntax_error_is_reported_every_time():
    renderer = TemplateRenderer()
    for _ in range(2):  # the second time comes from the cache
        with pytest.raises(SpecError, match="template syntax error"):
            renderer.render("{{ a", {}, where=WHERE)


@pytest.mark.parametrize(
    "source",
    [
        "{{ x.__class__ }}",
        "{{ x.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__ }}",
    ],
)
def test_sandbox_refuses_python_internals(source):
    assert "unsafe" in failure(source, x=1).message


@pytest.mark.parametrize("source", ["{% include 'secrets.txt' %}", "{% import 'x' as y %}",
                                    "{% extends '/etc/passwd' %}"])
def test_templates_cannot_read_files(source):
    assert "cannot include" in failure(source).message


def test_nondeterministic_helpers_are_not_available():
    assert "random" in failure("{{ [1, 2] | random }}").message
    assert "lipsum" in failure("{{ lipsum() }}").message


def test_printing_objects_with_unstable_text_is_refused():
    assert "cannot print" in failure("{{ 'a'.upper }}").message


def test_resource_bombs_are_refused():
    assert "size limit" in failure("{{ 'x' * 1000000000 }}").message
    assert "size limit" in failure("{{ [1] * 1000000000 }}").message
    assert "size limit" in failure("{{ 9 ** 9999999 }}").message
    assert "Range too big" in failure("{{ range(10 ** 9) | list }}").message


def test_output_size_is_limited():
    renderer = TemplateRenderer(max_output=50)
    with pytest.raises(SpecError, match="over the 50 limit"):
        renderer.render("{% for i in range(10) %}0123456789{% endfor %}", {}, where=WHERE)


def test_runtime_errors_become_problems():
    assert "ZeroDivisionError" in failure("{{ 1 / 0 }}").message


def test_each_distinct_template_is_compiled_once():
    renderer = TemplateRenderer()
    for i in range(500):
        assert renderer.render("icon-{{ i }}", {"i": i}, where=WHERE) == f"icon-{i}"
        renderer.render("{{ i }}.png", {"i": i}, where=WHERE)
    assert renderer.compiled_count == 2


def test_simple_templates_render_exactly_as_jinja_does():
    """The fast path for text-and-{{ name }} templates must agree with Jinja itself."""
    from jinja2.sandbox import SandboxedEnvironment

    from recraft_build.domain import Where
    from recraft_build.spec.templating import TemplateRenderer

    jinja = SandboxedEnvironment()
    renderer = TemplateRenderer()
    where = Where("t.yaml", 1, 1, "x")
    ctx = {"a": "sword", "n": 3, "f": 1.5, "b": True, "empty": ""}
    for source in [
        "icon-{{ a }}", "{{a}}/{{ n }}.png", "x {{ f }} {{ b }} {{ empty }}.", "  {{- a -}}  ",
        "line\n{{ a }}\n", "{{ a }}{{ n }}", "plain {braces} {{ a }}",
    ]:
        assert renderer.render(source, ctx, where=where) == jinja.from_string(source).render(ctx), source


# -- values from templates -------------------------------------------------------------------

def value(source, **context):
    return TemplateRenderer().render_value(source, context, where=WHERE, asset="icon-sword")


def test_one_expression_gives_its_value_not_its_text():
    palette = ["#2b2d42", "#ef233c"]
    assert value("{{ palette }}", palette=palette) == palette
    assert value("  {{ theme.colors }} ", theme={"colors": palette}) == palette
    assert value("{{ theme }}", theme={"a": (1, 2)}) == {"a": [1, 2]}  # tuples become lists
    assert value("{{ n + 1 }}", n=2) == 3
    assert value("{{ flag }}", flag=False) is False
    assert value("{{ none }}") is None


def test_a_value_template_that_is_not_one_expression_gives_text():
    assert value("#{{ hex }}", hex="ff8800") == "#ff8800"
    assert value("{{ a }}{{ b }}", a=1, b=2) == "12"
    assert value("{% if x %}1{% endif %}", x=True) == "1"


def test_values_that_are_not_data_are_refused_with_the_asset():
    with pytest.raises(SpecError) as info:
        value("{{ range }}")
    (p,) = info.value.problems
    assert "icon-sword" in p.message and (p.line, p.path) == (7, "assets[0].prompt")
    with pytest.raises(SpecError, match="undefined template variable 'palete'"):
        value("{{ palete }}", palette=[])


def test_a_value_that_is_not_a_template_is_returned_as_it_is():
    assert value(["#ffffff"]) == ["#ffffff"]
    assert value("plain") == "plain"


def test_value_templates_are_limited_like_every_template():
    with pytest.raises(SpecError, match="steps"):
        value("{{ range(100000) | map('string') | map('upper') | map('lower') | list }}")
    with pytest.raises(SpecError, match="size limit"):
        value("{{ [1] * 10**9 }}")
