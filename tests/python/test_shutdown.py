"""SIGTERM is a clean shutdown: every open stream gets a system-shutdown stream error
and its closing tag, and the process exits promptly with status 0."""

import asyncio
import signal
import time

from conftest import start_server, stop_server
from helpers import ALICE_PASS, STREAM_ERROR, raw_login


def test_sigterm_closes_streams_with_system_shutdown_and_exits(tmp_path):
    srv = start_server(tmp_path)
    try:
        async def scenario():
            conn, _jid = await raw_login(srv.host, srv.c2s_port, "alice", ALICE_PASS)
            mark = len(conn.buf)
            srv.proc.send_signal(signal.SIGTERM)
            rest = await conn.read_to_close(timeout=5)
            conn.close()
            return rest[mark:]

        closing = asyncio.run(scenario())
        assert STREAM_ERROR.search(closing), f"no stream error before close: {closing!r}"
        assert b"system-shutdown" in closing, f"wrong condition: {closing!r}"
        assert b"</stream:stream>" in closing, f"stream not closed: {closing!r}"
        started = time.monotonic()
        code = srv.proc.wait(timeout=5)
        assert code == 0, f"exit status {code}; log:\n{srv.log_tail()}"
        assert time.monotonic() - started < 5
    finally:
        stop_server(srv)
