"""Fixtures: a real oxbridge server process per test module.

The binary is $OXBRIDGE_BIN or target/debug/oxbridge of this repository.  Each module
gets a fresh server on free loopback ports with its own config and log file; the log's
tail is attached to every failing test's report.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "oxbridge"
LOG_TAIL_LINES = 150


@dataclass
class Server:
    host: str
    http_port: int
    c2s_port: int
    component_port: int
    proc: subprocess.Popen
    log_path: Path
    config_path: Path

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CONFIG = """\
domain = "localhost"

[http]
listen = "127.0.0.1:{http}"

[xmpp]
listen = "127.0.0.1:{c2s}"
component_listen = "127.0.0.1:{comp}"

[[xmpp.accounts]]
jid = "focus@auth.localhost"
password = "focus-secret"

[[xmpp.accounts]]
jid = "alice@localhost"
password = "alice-pass"

[[xmpp.components]]
domain = "echo.localhost"
secret = "comp-secret"

[sfu]
listen = "127.0.0.1:0"

[muc]
admins = ["focus@auth.localhost"]
"""


def oxbridge_bin() -> Path:
    return Path(os.environ.get("OXBRIDGE_BIN", str(DEFAULT_BIN)))


def start_server(workdir: Path) -> Server:
    binary = oxbridge_bin()
    if not binary.exists():
        pytest.fail(f"oxbridge binary not found at {binary} (build it or set OXBRIDGE_BIN)", pytrace=False)
    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    http, c2s, comp = sorted(ports)
    cfg = workdir / "oxbridge.toml"
    cfg.write_text(CONFIG.format(http=http, c2s=c2s, comp=comp))
    log_path = workdir / "oxbridge.log"
    log = open(log_path, "wb")
    # OXBRIDGE_* variables are config overrides for the server: pass none of ours (OXBRIDGE_BIN).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXBRIDGE_")}
    env.setdefault("RUST_LOG", "info")
    env.setdefault("RUST_BACKTRACE", "1")
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir,
    )
    log.close()
    srv = Server("127.0.0.1", http, c2s, comp, proc, log_path, cfg)
    deadline = time.monotonic() + 20
    last = None
    while True:
        if proc.poll() is not None:
            pytest.fail(f"oxbridge exited with {proc.returncode} during startup; log:\n{srv.log_tail()}",
                        pytrace=False)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/about/health", timeout=2) as r:
                if r.status == 200:
                    break
                last = r.status
        except (urllib.error.URLError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            stop_server(srv)
            pytest.fail(f"/about/health not 200 within 20 s (last: {last}); log:\n{srv.log_tail()}",
                        pytrace=False)
        time.sleep(0.1)  # polling the health endpoint at startup, bounded by the deadline above
    # The XMPP listeners must be up too once the server says it is healthy.
    for port in (c2s, comp):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    return srv


def stop_server(srv: Server) -> None:
    if srv.proc.poll() is None:
        srv.proc.terminate()
        try:
            srv.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("oxbridge"))
    yield srv
    stop_server(srv)


@pytest.fixture
def srv(server, request):
    """The module's server; after each test it must still be running."""
    request.node._oxbridge = server
    if server.proc.poll() is not None:
        pytest.fail(f"oxbridge is not running (exit {server.proc.returncode}); log:\n{server.log_tail()}",
                    pytrace=False)
    yield server
    assert server.proc.poll() is None, (
        f"oxbridge died during the test (exit {server.proc.returncode}); log:\n{server.log_tail()}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    srv = getattr(item, "_oxbridge", None)
    if rep.failed and srv is not None:
        rep.sections.append(("oxbridge log (tail)", srv.log_tail()))
