"""A real nginx with WebDAV PUT on 127.0.0.1, for remote-cache tests and benchmarks.

``nginx_cache`` is a pytest fixture yielding an :class:`NginxCache` (its ``url`` and
the ``root`` folder it serves), stopped at teardown. :func:`run_nginx` is the same as
a plain context manager, for benchmarks.

nginx is found with ``shutil.which("nginx")`` or ``/usr/sbin/nginx``; when it is
absent the fixture skips with the reason (install the Debian package ``nginx``).
It runs in the foreground as one process (``daemon off; master_process off;``), with
its pid file, logs and temp folders under a private prefix, so nothing on the machine
is touched and teardown is one signal to the one process we started.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

__all__ = ["NginxCache", "NginxUnavailable", "find_nginx", "nginx_cache", "run_nginx"]

#: The Debian package that provides /usr/sbin/nginx with the WebDAV module built in.
NGINX_PACKAGE = "nginx"

_CONF = """\
{user_line}
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            root {root};
            # The whole Bazel HTTP cache protocol on a stock nginx: PUT writes a file
            # (to a temp file first, then renamed, so readers never see half a blob),
            # GET and HEAD serve it, a missing file is 404.
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""


class NginxUnavailable(RuntimeError):
    """nginx is not installed or would not start; the message says why."""


@dataclass(frozen=True)
class NginxCache:
    """A running nginx: ``url`` to use as a remote cache, ``root`` the folder it serves."""

    url: str
    root: Path
    port: int
    prefix: Path

    def files(self) -> list[str]:
        """Paths (relative to ``root``, posix) of every file stored so far, sorted."""
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )


def find_nginx() -> str | None:
    """The nginx binary, or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_line() -> str:
    # As root, nginx would switch to "nobody", who cannot write into a private temp
    # folder; as anyone else the directive is ignored (with a warning), so only emit it
    # for root.
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


def _wait_listening(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def run_nginx(workdir: Path, *, startup_seconds: float = 15.0) -> Iterator[NginxCache]:
    """Run nginx serving ``workdir/root`` until the block ends.

    Raises :class:`NginxUnavailable` when nginx is missing or does not come up
    (the error log is in the message).
    """
    binary = find_nginx()
    if binary is None:
        raise NginxUnavailable(
            f"nginx is not installed (apt-get install -y {NGINX_PACKAGE}); "
            "the remote-cache tests need a real WebDAV server"
        )
    prefix = Path(workdir) / "nginx"
    root = Path(workdir) / "root"
    root.mkdir(parents=True, exist_ok=True)
    last_error = ""
    # A free port can be taken between our probe and nginx's bind: try a few.
    for _attempt in range(5):
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        port = _free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(
            _CONF.format(user_line=_user_line(), prefix=prefix, port=port, root=root),
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            if _wait_listening(proc, port, time.monotonic() + startup_seconds):
                yield NginxCache(url=f"http://127.0.0.1:{port}", root=root, port=port, prefix=prefix)
                return
            last_error = _read_error(proc, prefix)
        finally:
            _stop(proc)
            if proc.stderr:
                proc.stderr.close()
    raise NginxUnavailable(f"nginx did not start: {last_error.strip()[-2000:]}")


def _read_error(proc: subprocess.Popen[bytes], prefix: Path) -> str:
    _stop(proc)
    text = ""
    if proc.stderr and not proc.stderr.closed:
        text = proc.stderr.read().decode("utf-8", "replace")
    log = prefix / "error.log"
    if log.exists():
        text += log.read_text(encoding="utf-8", errors="replace")
    return text


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # SIGQUIT is nginx's graceful stop; fall back to SIGKILL if it lingers.
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def nginx_cache(tmp_path: Path) -> Iterator[NginxCache]:
    """A fresh nginx WebDAV server on 127.0.0.1 with an empty root; skips without nginx."""
    if find_nginx() is None:
        pytest.skip(
            f"nginx is not installed (apt-get install -y {NGINX_PACKAGE}); "
            "the remote-cache tests need a real WebDAV server"
        )
    with run_nginx(tmp_path / "nginx-cache") as server:
        yield server
