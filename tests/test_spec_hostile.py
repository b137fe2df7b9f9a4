"""Hostile specs through the real command line: `validate` and `plan` end with exit 3.

A spec may come from a pull request, so checking one must stay cheap whatever it
says. Each spec here asked for minutes of work or gigabytes of memory before issue 12;
each run must now finish (pytest-timeout and the subprocess timeout guard it; no test
asserts a time) with exit code 3 and a short, placed report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

TEMPLATE_BOMBS = {
    "loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "width": "{{ '%*d' % (1000000000, 1) }}",
    "precision": "{{ '%.1000000000f' % 1 }}",
    "center": "{{ 'a' | center(3*10**9) }}",
    "format": "{{ '{:>1000000000}'.format(1) }}",
    "doubling": "{% set ns = namespace(l=[1]) %}{% for i in range(27) %}"
                "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
    "shared": "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}"
              "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
             "{% endmacro %}{{ f(60) }}",
}


def _templates() -> str:
    lines = ["version: 1", "assets:"]
    for name, source in TEMPLATE_BOMBS.items():
        quoted = source.replace("'", "''")
        lines += [f"  - name: {name}", f"    prompt: '{quoted}'", f"    output: {name}.png"]
    return "\n".join(lines) + "\n"


def _heavy_matrix() -> str:
    """20,000 assets, each rendering a loop of 100,000 steps: the load's budget ends it."""
    items = ", ".join(f"i{k}" for k in range(200))
    return ("version: 1\nassets:\n  - name: \"a-{{ i }}-{{ j }}\"\n"
            f"    matrix: {{i: [{items}], j: [{', '.join(str(k) for k in range(100))}]}}\n"
            "    prompt: \"{% for x in range(100000) %}{% endfor %}{{ i }}\"\n"
            "    output: \"{{ i }}/{{ j }}.png\"\n")


SPECS = {
    "templates": _templates,
    # 200,000 empty entries, 600 KB: counted before the schema looks at them.
    "empty-entries": lambda: "version: 1\nassets:\n" + "- \n" * 200_000,
    # 99,999 entries with three problems each: the schema stops after 1,000.
    "broken-entries": lambda: "version: 1\nassets:\n" + "- {}\n" * 99_999,
    "heavy-matrix": _heavy_matrix,
    # One 4.9 MB template: compiling it would take a minute.
    "dense-template": lambda: ("version: 1\nassets:\n  - name: hero\n    prompt: \""
                               + "{{ a }}" * 700_000 + "\"\n    output: hero.png\n"),
}


def run(tmp_path: Path, command: str, text: str) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "assets.yaml"
    spec.write_text(text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN")}
    env["RECRAFT_BUILD_CACHE"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "recraft_build", command, "-f", str(spec)],
                          capture_output=True, text=True, timeout=200, env=env, cwd=tmp_path)


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("name", list(SPECS))
def test_a_hostile_spec_is_refused_with_exit_3(tmp_path, name, command):
    proc = run(tmp_path, command, SPECS[name]())
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
    assert lines[-1].endswith("problem(s) found; nothing was built.")
    assert len(lines) <= 102  # at most 100 problems, "... and N more", the summary


def test_every_template_bomb_is_named_at_its_field(tmp_path):
    proc = run(tmp_path, "validate", SPECS["templates"]())
    assert proc.returncode == 3
    problems = proc.stderr.splitlines()[:-1]
    assert len(problems) == len(TEMPLATE_BOMBS)
    for i, (name, line) in enumerate(zip(TEMPLATE_BOMBS, problems)):
        assert f"assets[{i}].prompt: template refused" in line, line
        assert f"(asset '{name}')" in line, line


def test_empty_entries_give_one_line_not_six_hundred_thousand(tmp_path):
    proc = run(tmp_path, "validate", SPECS["empty-entries"]())
    assert proc.returncode == 3
    first, summary = proc.stderr.splitlines()
    assert "assets: the spec lists 200,000 assets, over the limit of 100,000" in first
    assert summary.startswith("1 problem(s) found")


def test_thousands_of_problems_are_cut_short_on_the_terminal(tmp_path):
    proc = run(tmp_path, "validate", SPECS["broken-entries"]())
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert len(lines) == 102
    assert "validation stopped after the first 1,000 problems" in lines[0]
    more = lines[100].removeprefix("... and ").removesuffix(" more")
    total = lines[101].split()[0]
    assert more.isdigit() and total.isdigit() and int(total) == 100 + int(more)
