"""The shape of the house: no import cycles between modules, no module grown too big."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "recraft_build"

#: Past this many lines a module has more than one job (package data files aside).
MAX_LINES = 650


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports when it is imported (not lazily)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in [node] if not isinstance(node, (ast.Try, ast.If)) else ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.module:
                base = sub.module
                if sub.level:
                    pkg = name.split(".")[: -sub.level] if not path.name == "__init__.py" else name.split(".")
                    base = ".".join(pkg + ([sub.module] if sub.module else []))
                for alias in sub.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in known else base)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names)
    return {m for m in found if m in known and m != name}


def test_no_import_cycles():
    mods = _modules()
    known = set(mods)
    graph = {name: _top_level_imports(name, path, known) for name, path in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == "recraft_build" or nxt.startswith(node + "."):
                continue  # a package's __init__ importing its own children is not a cycle
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if state.get(name) is None:
            visit(name)


def test_no_module_is_too_big():
    big = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not big, f"modules past {MAX_LINES} lines (split them along their jobs): {big}"


def test_the_environment_is_read_in_one_module():
    readers = sorted(
        str(p.relative_to(PACKAGE.parent))
        for p in PACKAGE.rglob("*.py")
        if "os.environ" in p.read_text(encoding="utf-8")
        # cli: whether the terminal is dumb; lockdiff: the environment git runs in;
        # fastpath: compares the variables a no-op stamp recorded before anything (settings
        # included) is imported.
        and p.name not in ("settings.py", "cli.py", "lockdiff.py", "fastpath.py")
    )
    assert readers == [], f"read the environment through recraft_build.settings, not os.environ: {readers}"
