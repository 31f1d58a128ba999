"""Symbolized reports through a real syslog-ng 3.38 when the debuginfod server is
DOWN (nothing listens) or HANGS (a TCP listener that accepts and never answers):
storage is not delayed, the alert goes out unsymbolized within symbolize_wait plus
a small margin of the incident being stored, and the reason is counted in
incidents-stats.json.

The module's debug file is a module-like ELF built here: gcc -c -g, ``ld -r
--build-id`` (as kbuild links a .ko), ``objcopy --strip-debug``; laid out as
lib/modules/RELEASE/extra/nctest.ko of a debug_dirs directory. It has no line
tables but a build-id, so the lookup asks the debuginfod server for it."""

import json
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

from alert_servers import free_port, wait_for
from harness import samples
from harness.sng import Syslogng, available
from test_alerts_syslogng import extended, incidents, prelude

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]

RELEASE = "6.1.0-27-amd64"          # what extended() and the Oops' CPU: line carry
WAIT = 1.5                          # symbolize_wait
MARGIN = 1.0
SOURCE = "int nctest_init(void) { volatile int *p = 0; *p = 1; return 0; }\n"


@pytest.fixture(autouse=True)
def _need_syslogng():
    why = available()
    if why:
        pytest.skip(why)


@pytest.fixture
def debug_dir(tmp_path):
    for tool in ("gcc", "ld", "objcopy"):
        if not shutil.which(tool):
            pytest.skip("%s is missing (binutils, gcc)" % tool)
    build = tmp_path / "build"
    build.mkdir()
    (build / "nctest.c").write_text(SOURCE)
    mod = tmp_path / "debug" / "lib" / "modules" / RELEASE / "extra" / "nctest.ko"
    mod.parent.mkdir(parents=True)
    for argv in (["gcc", "-c", "-g", "-O2", "-o", "nctest.o", "nctest.c"],
                 ["ld", "-r", "--build-id=sha1", "-o", str(mod), "nctest.o"],
                 ["objcopy", "--strip-debug", str(mod)]):
        subprocess.run(argv, check=True, cwd=str(build))
    return tmp_path / "debug"


class HangingServer:
    """Accepts TCP connections and never answers (a debuginfod wedged behind a
    proxy); counts what it accepted."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)      # kept open, never read nor answered

    def close(self):
        self.sock.close()
        for c in self.accepted:
            c.close()


def alerts(state):
    p = pathlib.Path(state) / "alerts.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


def stats(state):
    return json.loads((pathlib.Path(state) / "incidents-stats.json").read_text())


@pytest.mark.parametrize("server", ["down", "hang"])
def test_dead_debuginfod_delays_neither_storage_nor_the_alert(tmp_path, debug_dir, server):
    hang = HangingServer() if server == "hang" else None
    url = "http://127.0.0.1:%d" % (hang.port if hang else free_port())
    state = tmp_path / "alertstate"
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, debug_dirs=str(debug_dir), debuginfod_urls=url,
        symbolize_wait=str(WAIT), symbolize_timeout="5"))
    sng.start()
    try:
        sng.sender("127.0.0.2").send_all(extended(samples.OOPS_LINES), pace=0.001)
        t_last = time.time()
        seen = {}

        def alert_seen():
            if "t" not in seen and alerts(state):
                seen["t"] = time.time()     # polled every 10 ms
            return seen.get("t")
        assert wait_for(alert_seen, 20, step=0.01), sng.stderr_tail()
        (inc,) = incidents(state)
        (doc,) = alerts(state)
        delay = seen["t"] - inc["stored_at"]
        print("%s: last datagram -> stored %.2f s; stored -> alert %.3f s (bound %.1f)"
              % (server, inc["stored_at"] - t_last, delay, WAIT + MARGIN))
        assert inc["stored_at"] - t_last < 3.0          # a request times out at 5 s
        assert not inc.get("symbols")                   # the line written when stored
        assert delay < WAIT + MARGIN, delay
        assert doc["netconsole"]["id"] == inc["id"]
        assert not doc["netconsole"].get("guilty_file")
        assert "(nctest.c:" not in json.dumps(doc)
        if hang:
            assert hang.accepted, "the hanging server was never asked"
            assert delay >= WAIT - 0.3, delay      # it did wait for the symbols
        # the store gets the (unsymbolized) result once the request gives up
        db = pathlib.Path(state) / "incidents.sqlite"
        def symbols():
            c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            try:
                row = c.execute("SELECT json_extract(data, '$.symbols') FROM incidents"
                                " WHERE id = ?", (inc["id"],)).fetchone()
            finally:
                c.close()
            return json.loads(row[0]) if row and row[0] else None
        sym = wait_for(symbols, 15)
        assert sym and sym["status"] == "none", sym
        assert "debuginfod-down" in sym["reason"], sym
    finally:
        sng.stop()
        if hang:
            hang.close()
    st = stats(state)
    print({k: v for k, v in st.items() if "symbol" in k or "debuginfod" in k})
    assert st["unsymbolized_debuginfod_down"] == 1
    assert st["debuginfod_errors"] == 1
    assert st.get("symbolize_late", 0) == (1 if hang else 0)
    assert "Traceback" not in sng.stderr_text()
