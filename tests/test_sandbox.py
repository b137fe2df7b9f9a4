"""Hostile templates stay cheap: recraft_build.spec.sandbox, .budget and .guards.

Each hostile template must be refused without doing the work or allocating the memory
it asks for. "Without allocating" is checked with tracemalloc (the peak of Python
allocations during the render), never with a clock; pytest-timeout stops a test that
would run away instead.
"""

from __future__ import annotations

import tracemalloc

import pytest

from recraft_build.domain import Where
from recraft_build.errors import Problem, SpecError
from recraft_build.spec.budget import Limits
from recraft_build.spec.templating import TemplateRenderer

WHERE = Where("assets.yaml", 4, 13, "assets[0].prompt")
# Far above what any refusal here needs, far below what the templates ask for.
PEAK_LIMIT = 64 * 1024 * 1024

pytestmark = pytest.mark.timeout(60)


def refused(source: str, renderer: TemplateRenderer | None = None, **context) -> Problem:
    """Render ``source``; it must be refused, placed at WHERE, without a big allocation."""
    renderer = renderer or TemplateRenderer()
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as info:
            renderer.render(source, context, where=WHERE, asset="hero")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{peak / 1e6:.0f} MB allocated before the refusal"
    (problem,) = info.value.problems
    assert (problem.line, problem.col, problem.path) == (4, 13, "assets[0].prompt")
    assert "hero" in problem.message
    return problem


def render(source: str, **context) -> str:
    return TemplateRenderer().render(source, context, where=WHERE)


# -- work ---------------------------------------------------------------------------------

def test_nested_loops_over_big_ranges_are_refused_after_the_step_budget():
    p = refused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                "{% endfor %}")
    assert "steps" in p.message


def test_nested_loops_over_a_list_are_counted_too():
    refused("{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}"
            "{% endfor %}", l=list(range(1000)))


def small_budget() -> TemplateRenderer:
    return TemplateRenderer(limits=Limits(render_steps=20_000))


def test_exponential_macro_recursion_is_refused():
    refused("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
            "{% endmacro %}{{ f(60) }}", small_budget())


def test_a_recursive_loop_is_counted():
    refused("{% for x in l recursive %}{{ loop(l) }}{% endfor %}", l=list(range(50)))


def test_comparing_a_long_text_again_and_again_is_counted():
    """No loop: the same comparison written out many times still costs its length."""
    refused("{% set b = 'x' * 99999 %}" + "{% if 'zz' in b %}{% endif %}" * 300, small_budget())


def test_the_time_limit_stops_a_slow_render():
    """A render is timed on the injected clock (here one that jumps a second a read)."""
    ticks = iter(range(0, 10**9))
    renderer = TemplateRenderer(clock=lambda: float(next(ticks)))
    p = refused("{% for i in range(5000) %}{{ i }}{% endfor %}", renderer)
    assert "longer than 2 s" in p.message


def test_the_step_budget_is_shared_by_every_render_of_one_load():
    renderer = TemplateRenderer(limits=Limits(render_steps=10_000, total_steps=30_000))
    source = "{% for i in range(5000) %}{% endfor %}done"
    for _ in range(5):  # 5 x 5,000 steps (and a few) fit in 30,000
        assert renderer.render(source, {}, where=WHERE) == "done"
    p = refused(source, renderer)
    assert "together" in p.message
    # Once spent, every further render is refused at once, naming the total.
    assert "together" in refused("{% for i in range(3) %}{% endfor %}", renderer).message


def test_compiling_is_bounded_too():
    renderer = TemplateRenderer(limits=Limits(template_tokens=1_000))
    assert renderer.render("{{ a }}" * 100, {"a": "x"}, where=WHERE) == "x" * 100
    p = refused("{{ b }}" * 400, renderer, b="y")
    assert "tokens" in p.message


# -- size -------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "{{ '%*d' % (1000000000, 1) }}",
    "{{ '%.1000000000f' % 1 }}",
    "{{ '%(a)1000000000s' % {'a': 1} }}",
    "{{ '%*d'|format(1000000000, 1) }}",
    "{{ 'a'|center(3*10**9) }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ 'a'.rjust(10**9) }}",
    "{{ 'a'.center(10**9) }}",
    "{{ '1'.zfill(10**9) }}",
    "{{ 'a\nb'|indent(10**9) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{:{}}'.format(1, 1000000000) }}",
    "{{ '{0:.1000000000f}'.format(1.5) }}",
    "{{ '{a:>1000000000}'.format_map({'a': 1}) }}",
    "{{ ('\t' * 100000).expandtabs(100000) }}",
    "{{ ('a' * 100000)|replace('', 'b' * 100000) }}",
    "{{ ('a' * 100000).replace('a', 'b' * 100000) }}",
    "{{ range(100000)|join('x' * 100000) }}",
    "{{ ('x' * 100000).join(range(100000)) }}",
    "{{ ('a ' * 50000)|wordwrap(1, wrapstring='x' * 100000) }}",
    "{{ ('a' * 100000).translate({97: 'b' * 100000}) }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ (1).to_bytes(10**9, 'big') }}",
    "{{ ('{0}' * 50000).format('x' * 100) }}",
    "{{ ('%(a)s' * 50000) % {'a': 'x' * 100} }}",
    "{{ ('a' | safe).center(10**9) }}",  # Markup's methods wrap str's
    "{{ ('{:>1000000000}' | safe).format(1) }}",
])
def test_widths_and_repetitions_are_refused_before_the_text_is_built(source):
    assert "size limit" in refused(source).message


def test_a_list_doubled_27_times_never_reaches_a_gigabyte():
    p = refused("{% set ns = namespace(l=[1]) %}{% for i in range(27) %}"
                "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}")
    # The size check answers first on a quiet machine; on a loaded one the per-render
    # time limit may: either way it is refused, long before a gigabyte.
    assert "size limit" in p.message or "longer than" in p.message


@pytest.mark.parametrize("double", ["ns.s ~ ns.s", "ns.s + (ns.s | safe)"])
def test_doubled_text_is_refused(double):
    refused("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(27) %}"
            f"{{% set ns.s = {double} %}}{{% endfor %}}{{{{ ns.s | length }}}}")


def test_a_list_sharing_itself_is_measured_as_printed():
    """[a, a] nested 60 deep is small in memory but 2**60 items as text."""
    shared = ("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}"
              "{% set ns.l = [ns.l, ns.l] %}{% endfor %}")
    refused(shared + "{{ ns.l }}")
    refused(shared + "{{ ns.l ~ '' }}")
    refused(shared + "{{ ns.l == ns.l }}")


def test_output_is_counted_while_it_is_produced():
    p = refused("{% for i in range(2000) %}{{ 'x' * 99999 }}{% endfor %}")
    assert "over the 100,000 limit" in p.message


def test_macro_and_block_output_is_counted_while_it_is_produced():
    refused("{% macro m() %}{% for i in range(2000) %}{{ 'x' * 99999 }}{% endfor %}"
            "{% endmacro %}{{ m() | length }}")
    refused("{% set big %}{% for i in range(2000) %}{{ 'x' * 99999 }}{% endfor %}{% endset %}"
            "{{ big | length }}")


def test_numbers_stay_small():
    assert "size limit" in refused("{% set ns = namespace(x=3) %}{% for i in range(40) %}"
                                   "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}").message
    assert "round" in refused("{{ 1.5 | round(10**9, 'floor') }}").message


def test_quadratic_sums_and_wide_json_are_refused():
    assert "numbers" in refused("{{ range(100000) | batch(1) | sum(start=[]) }}").message
    assert "indent" in refused("{{ [[1]] | tojson(indent=10**9) }}").message


def test_lists_and_mappings_cannot_be_changed():
    """vars are shared by every asset: a template changing one would change the next."""
    assert "unsafe" in refused("{{ l.append(1) }}{{ l }}", l=[]).message
    assert "unsafe" in refused("{{ d.update({'a': 1}) }}", d={}).message


# -- what still works ---------------------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("{{ 'a'|center(5) }}", "  a  "),
    ("{{ '%5.2f' % 3.14159 }}", " 3.14"),
    ("{{ '%(n)03d' % {'n': 7} }}", "007"),
    ("{{ '{:>6}|{:.1f}'.format('ab', 2.25) }}", "    ab|2.2"),
    ("{{ 'x-y'.replace('-', '+') }}", "x+y"),
    ("{{ ', '.join(['a', 'b']) }}", "a, b"),
    ("{{ items | join(', ') }}", "sword, shield"),
    ("{{ items | map('upper') | join('/') }}", "SWORD/SHIELD"),
    ("{% for x in items %}{{ loop.index }}{{ x[0] }}{% endfor %}", "1s2s"),
    ("{{ [1, 2] + [3] }}", "[1, 2, 3]"),
    ("{{ 'ab' ~ 3 }}", "ab3"),
    ("{{ 2 ** 10 }}", "1024"),
    ("{{ (7 * 13) % 5 }}", "1"),
    ("{{ 'a\nb' | indent(2, first=true) }}", "  a\n  b"),
    ("{{ {'b': 1, 'a': [1, 2]} | tojson }}", '{"a": [1, 2], "b": 1}'),
    ("{{ range(3) | sum }}", "3"),
    ("{{ 2.5 | round(1, 'floor') }}", "2.5"),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m(2) }}", "<1><2>"),
    ("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
     "{% endfor %}{{ ns.n }}", "6"),
    ("{{ 'yes' if 'w' in items[1] else 'no' }}", "no"),
])
def test_ordinary_templates_render_as_jinja_does(source, expected):
    assert render(source, items=["sword", "shield"]) == expected
