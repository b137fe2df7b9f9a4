"""Every recraft-build command the README shows is run here, as a newcomer would run it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The ``recraft-build ...`` commands in the README's ``sh`` blocks, in order."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("recraft-build "):
                    commands.append(part)
    return commands


def entry_point() -> list[str]:
    script = Path(sys.executable).parent / "recraft-build"
    return [str(script)] if script.exists() else [sys.executable, "-m", "recraft_build"]


def test_readme_starts_with_the_two_newcomer_commands():
    first_block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    lines = [l for l in first_block.splitlines() if l.strip()]
    assert len(lines) == 2
    assert "pip install ." in lines[0] and "recraft-build build -f examples/game-icons/assets.yaml" in lines[0]
    assert "pip install -e '.[test]'" in lines[1] and "python -m pytest" in lines[1]
    # CI runs the same test command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test]'" in ci and "python -m pytest" in ci


def test_every_readme_command_runs_offline(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 9
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("build", "*.lock"))
    env = {k: v for k, v in os.environ.items() if k not in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN")}
    env["RECRAFT_BUILD_CACHE"] = str(tmp_path / "cache")
    git = shutil.which("git")
    if git:  # `diff` compares with the lock in git HEAD, as in a real checkout
        for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
            subprocess.run([git, *args], cwd=work, check=True, env=env)
    for command in commands:
        argv = shlex.split(command)
        if argv[1] == "diff" and not git:
            continue
        run = subprocess.run(entry_point() + argv[1:], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"{command}\n{run.stderr}"
        assert "Traceback" not in run.stderr
    out = work / "examples" / "game-icons" / "build"
    assert (out / "manifest.json").exists()
    assert (out / "icons" / "sword.png").exists() and (out / "icons" / "sword@2x.png").exists()
    assert (out / "icons" / "svg" / "sword.svg").exists()
    # the gallery (every candidate and prompt) stays out of the publishable output folder
    assert (work / "examples" / "game-icons" / ".recraft-build" / "gallery" / "index.html").exists()
    assert not (out / "gallery").exists()
