"""State of one pytest session of the kernel tier (imported by conftest.py and
the tests; not named conftest, since every tier has a conftest module).

RUNS: this session's folder for each run's files (serial log, pcap, syslog-ng
folder) and ``results.jsonl``; the last 3 sessions' folders are kept.
"""

import json
import os
import pathlib
import shutil
import time

HERE = pathlib.Path(__file__).resolve().parent
SESSION = "%s-%d" % (time.strftime("%Y%m%d-%H%M%S", time.gmtime()), os.getpid())
RUNS = HERE / ".cache" / "runs" / SESSION
RESULTS_FILE = RUNS / "results.jsonl"
RESULTS = []


def add_result(row):
    RESULTS.append(row)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(str(RESULTS_FILE), "a") as f:
        f.write(json.dumps(row) + "\n")


def prune_old_sessions(keep=3):
    if not RUNS.parent.exists():
        return
    old = sorted(RUNS.parent.iterdir(), key=lambda p: p.stat().st_mtime)
    for p in old[:-keep]:
        if p != RUNS:
            shutil.rmtree(str(p), ignore_errors=True)
