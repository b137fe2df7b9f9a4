"""Team scale: two machines and CI share pictures through a real nginx remote cache.

Each "machine" is its own cache folder and its own checkout folder; the provider is the
local fake Recraft server, which counts paid calls.
"""

from __future__ import annotations

import io
import json
import shutil

import pytest

from fakeserver import FakeServer, use_fake_recraft
from nginx import nginx_cache  # noqa: F401  (fixture)
from recraft_build.cli import main

TOKEN = "sk-remote-test-token"

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [a, b, c, d, e]}
    prompt: "flat game icon {{ item }}"
    steps: [{resize: {width: 64}}]
    output: "icons/{{ item }}.png"
"""


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as s:
        yield s


def build(root, cache, remote_url, *args, mode="read-write"):
    out, err = io.StringIO(), io.StringIO()
    argv = ["build", "-f", str(root / "assets.yaml"), "--cache-dir", str(cache), "--json",
            "--remote-cache", remote_url, "--remote-cache-mode", mode, *args]
    code = main(argv, stdout=out, stderr=err)
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else None, err.getvalue()


@pytest.fixture
def env(monkeypatch, server):
    use_fake_recraft(monkeypatch, server)


def seeded_clone(tmp_path, remote_url, *, ci_spec: str = SPEC):
    """A laptop that built SPEC with the remote, and a fresh clone ``ci`` of it (the
    spec, ``ci_spec`` if given, and the lock; no outputs, no cache)."""
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "assets.yaml").write_text(SPEC)
    assert build(laptop, tmp_path / "cache-laptop", remote_url)[0] == 0
    ci = tmp_path / "ci"
    ci.mkdir()
    (ci / "assets.yaml").write_text(ci_spec)
    shutil.copy(laptop / "assets.lock", ci / "assets.lock")
    return laptop, ci


def test_second_machine_and_frozen_ci_make_zero_paid_calls(tmp_path, env, server, nginx_cache):
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "assets.yaml").write_text(SPEC)
    code, data, err = build(laptop, tmp_path / "cache-laptop", nginx_cache.url)
    assert code == 0, err
    assert server.counts["generations"] == 5
    assert nginx_cache.files(), "pictures were uploaded before the build reported success"

    # CI: a fresh clone (spec + lock, no outputs), an empty cache, --frozen.
    ci = tmp_path / "ci"
    ci.mkdir()
    shutil.copy(laptop / "assets.yaml", ci / "assets.yaml")
    shutil.copy(laptop / "assets.lock", ci / "assets.lock")
    code, data, err = build(ci, tmp_path / "cache-ci", nginx_cache.url, "--frozen", mode="read")
    assert code == 0, err
    assert server.counts["generations"] == 5  # zero paid calls on the second machine
    assert data["summary"]["restored"] == 5
    for item in "abcde":
        assert (ci / "out" / "icons" / f"{item}.png").read_bytes() == (laptop / "out" / "icons" / f"{item}.png").read_bytes()

    # Another laptop without the lock: the remote's action records answer too.
    other = tmp_path / "other"
    other.mkdir()
    (other / "assets.yaml").write_text(SPEC)
    code, data, err = build(other, tmp_path / "cache-other", nginx_cache.url, mode="read")
    assert code == 0, err
    assert server.counts["generations"] == 5
    assert data["summary"]["restored"] == 5


def test_a_fresh_clone_restores_each_file_with_one_download_and_leaves_the_lock_alone(
    tmp_path, env, server, nginx_cache
):
    """What CI pays per asset: one request, for the file the lock pins, verified; no
    record is read and nothing in between (the resized picture) is fetched. The lock,
    unchanged, is not rewritten; the cache ends up holding the files."""
    laptop, ci = seeded_clone(tmp_path, nginx_cache.url)
    lock_stamp = (ci / "assets.lock").stat().st_mtime_ns
    log = nginx_cache.prefix / "access.log"
    seen = len(log.read_text().splitlines())
    code, data, err = build(ci, tmp_path / "cache-ci", nginx_cache.url, "--frozen", mode="read")
    assert code == 0, err
    assert data["summary"]["restored"] == 5 and server.counts["generations"] == 5
    made = [line.split('"')[1] for line in log.read_text().splitlines()[seen:]]
    locked = json.loads((laptop / "assets.lock").read_text())["assets"]
    files = {f["sha256"] for a in locked.values() for o in a["outputs"] for f in o["files"]}
    assert sorted(r for r in made if r.startswith("GET")) == sorted(f"GET /cas/{d} HTTP/1.1" for d in files)
    assert not [r for r in made if "/ac/" in r]
    assert len(made) == 5  # one request per asset
    for item in "abcde":
        assert (ci / "out" / "icons" / f"{item}.png").read_bytes() == (laptop / "out" / "icons" / f"{item}.png").read_bytes()
    assert (ci / "assets.lock").stat().st_mtime_ns == lock_stamp
    # the files are in CI's own cache now: without the remote, a lost output comes back
    (ci / "out" / "icons" / "a.png").unlink()
    out, errs = io.StringIO(), io.StringIO()
    code = main(["build", "-f", str(ci / "assets.yaml"), "--cache-dir", str(tmp_path / "cache-ci"), "--frozen"],
                stdout=out, stderr=errs)
    assert code == 0, errs.getvalue()
    assert (ci / "out" / "icons" / "a.png").read_bytes() == (laptop / "out" / "icons" / "a.png").read_bytes()


def test_a_corrupt_file_on_the_remote_is_never_written_the_output_is_made_again(
    tmp_path, env, server, nginx_cache
):
    """The remote's copy of one output file has the wrong bytes: it is refused (its
    sha256 does not match), the output is made again from the chain, and it comes out
    as the lock pins it, with --frozen."""
    laptop, ci = seeded_clone(tmp_path, nginx_cache.url)
    locked = json.loads((laptop / "assets.lock").read_text())["assets"]
    digest = locked["icon-a"]["outputs"][0]["files"][0]["sha256"]
    (nginx_cache.root / "cas" / digest).write_bytes(b"not the picture")
    code, data, err = build(ci, tmp_path / "cache-ci", nginx_cache.url, "--frozen", mode="read")
    assert code == 0, err
    assert data["summary"]["restored"] == 5 and server.counts["generations"] == 5
    assert "wrong bytes" in err and digest[:12] in err
    for item in "abcde":
        assert (ci / "out" / "icons" / f"{item}.png").read_bytes() == (laptop / "out" / "icons" / f"{item}.png").read_bytes()


def test_a_fresh_clone_with_a_changed_step_asks_about_the_pictures_at_once(tmp_path, env, server, nginx_cache):
    """The lock's files no longer serve (the resize changed): the plan first asks the
    remote nothing, then asks about every approved picture in one go, and the build
    makes the new outputs from them with zero paid calls."""
    laptop, ci = seeded_clone(tmp_path, nginx_cache.url, ci_spec=SPEC.replace("width: 64", "width: 32"))
    log = nginx_cache.prefix / "access.log"
    seen = len(log.read_text().splitlines())
    code, data, err = build(ci, tmp_path / "cache-ci", nginx_cache.url, mode="read")
    assert code == 0, err
    assert data["summary"]["restored"] == 5 and server.counts["generations"] == 5
    made = [line.split('"')[1] for line in log.read_text().splitlines()[seen:]]
    locked = json.loads((laptop / "assets.lock").read_text())["assets"]
    pictures = sorted(a["generation"]["candidates"][0]["sha256"] for a in locked.values())
    assert sorted(r.split()[1].rsplit("/", 1)[1] for r in made if r.startswith("HEAD")) == pictures
    assert all(f"GET /cas/{d} HTTP/1.1" in made for d in pictures)  # read to resize them again


def test_read_mode_never_writes(tmp_path, env, server, nginx_cache):
    root = tmp_path / "p"
    root.mkdir()
    (root / "assets.yaml").write_text(SPEC)
    code, data, err = build(root, tmp_path / "cache", nginx_cache.url, mode="read")
    assert code == 0, err
    assert nginx_cache.files() == []


def test_remote_down_costs_one_warning_not_a_failure(tmp_path, env, server):
    root = tmp_path / "p"
    root.mkdir()
    (root / "assets.yaml").write_text(SPEC)
    code, data, err = build(root, tmp_path / "cache", "http://127.0.0.1:9")
    assert code == 0, err
    assert data["summary"]["generated"] == 5
    assert err.count("remote") >= 1
    assert len([l for l in err.splitlines() if "warning" in l and "remote" in l]) == 1


def test_frozen_ci_names_what_the_remote_lacks(tmp_path, env, server, nginx_cache):
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "assets.yaml").write_text(SPEC)
    # built without the remote: the remote never got the pictures
    out = io.StringIO()
    assert main(["build", "-f", str(laptop / "assets.yaml"), "--cache-dir", str(tmp_path / "c1")], stdout=out, stderr=io.StringIO()) == 0
    ci = tmp_path / "ci"
    ci.mkdir()
    shutil.copy(laptop / "assets.yaml", ci / "assets.yaml")
    shutil.copy(laptop / "assets.lock", ci / "assets.lock")
    code, data, err = build(ci, tmp_path / "c2", nginx_cache.url, "--frozen", mode="read")
    assert code == 3
    assert "icon-a" in err and "--frozen" in err
    assert server.counts["generations"] == 5


def test_a_folder_remote_lets_a_second_machine_restore_with_zero_paid_calls(tmp_path, env, server):
    """The same as the nginx test, through a folder (a shared drive, or a folder in the
    repository tracked with Git LFS): a plain path on one machine, a file:// URL on the other."""
    shared = tmp_path / "shared-drive" / "art-cache"
    shared.mkdir(parents=True)
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "assets.yaml").write_text(SPEC)
    code, data, err = build(laptop, tmp_path / "cache-laptop", str(shared))
    assert code == 0, err
    assert server.counts["generations"] == 5
    stored = sorted(p.relative_to(shared).parts[0] for p in shared.rglob("*") if p.is_file())
    assert set(stored) == {"ac", "cas"} and stored.count("ac") >= 5
    assert not [p for p in shared.rglob(".tmp-*")], "no temp file is left behind"

    ci = tmp_path / "ci"
    ci.mkdir()
    shutil.copy(laptop / "assets.yaml", ci / "assets.yaml")
    shutil.copy(laptop / "assets.lock", ci / "assets.lock")
    before = sorted(shared.rglob("*"))
    code, data, err = build(ci, tmp_path / "cache-ci", shared.as_uri(), "--frozen", mode="read")
    assert code == 0, err
    assert server.counts["generations"] == 5  # zero paid calls on the second machine
    assert data["summary"]["restored"] == 5
    assert "warning" not in err
    assert sorted(shared.rglob("*")) == before  # read mode wrote nothing
    for item in "abcde":
        assert (ci / "out" / "icons" / f"{item}.png").read_bytes() == (laptop / "out" / "icons" / f"{item}.png").read_bytes()
