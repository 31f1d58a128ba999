"""Kernel tier: shared set-up, and a per-run table printed at the end.

Each boot adds a row (kernel, mode, scenario, result, seconds, agreement) to
the table printed in pytest's terminal summary and written to
``tests/kernel/.cache/runs/SESSION/results.jsonl``, beside each run's files.
"""

import json
import os
import pathlib
import shutil
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
for p in (str(HERE), str(TESTS), str(TESTS.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

# each run's files (serial log, pcap, syslog-ng dir) stay here for a look
# after the session; one folder per session, the last 3 kept
SESSION = "%s-%d" % (time.strftime("%Y%m%d-%H%M%S", time.gmtime()), os.getpid())
RUNS = HERE / ".cache" / "runs" / SESSION

RESULTS = []
# one file per session: concurrent sessions must not mix their rows
RESULTS_FILE = RUNS / "results.jsonl"


def pytest_sessionfinish(session):
    old = sorted((RUNS.parent.iterdir() if RUNS.parent.exists() else []),
                 key=lambda p: p.stat().st_mtime)
    for p in old[:-3]:
        if p != RUNS:
            shutil.rmtree(str(p), ignore_errors=True)


def missing_tools():
    """Why this host cannot boot guests, or None."""
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is not installed (tests/install-deps.sh installs it)"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    for tool in ("cpio", "make", "gcc", "modprobe"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


@pytest.fixture
def kernel_report():
    """Call with a dict to add a row to the run table."""
    def add(row):
        RESULTS.append(row)
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(str(RESULTS_FILE), "a") as f:
            f.write(json.dumps(row) + "\n")
    return add


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("kernel runs: decoded stream vs serial console")
    tr.write_line("%-5s %-9s %-10s %-6s %6s  %s" % ("kern", "mode", "scenario", "result",
                                                   "secs", "agreement"))
    for r in RESULTS:
        tr.write_line("%-5s %-9s %-10s %-6s %6.1f  %s" % (
            r["kernel"], r["mode"], r["scenario"], r["result"], r["seconds"],
            r.get("agreement", "")))
