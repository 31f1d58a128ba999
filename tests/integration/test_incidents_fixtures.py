"""Real kernels' crash reports, from the kernel tier's fixtures (tests/fixtures/, made
by tests/kernel/make_fixtures.py: NIC captures of Debian kernels crashing in QEMU).

For every fixture: `analyze` of its pcap finds exactly the expected incidents (one per
crash scenario, of the right type; none for non-crash scenarios), and replaying the
pcap (`syslogng-netconsole replay`) into a real syslog-ng stores the same incidents
in the destination's SQLite store and JSON lines.
"""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from harness.sng import Syslogng, available, wait_for
from syslogng_netconsole.incidents.store import read_incidents

pytestmark = pytest.mark.syslogng

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(os.environ.get("NETCONSOLE_FIXTURES", REPO / "tests" / "fixtures"))
MANIFEST = FIXTURES / "kernel-fixtures.json"

# scenario -> (incident types in order, panicked); tests/kernel/README.md lists them
EXPECTED = {
    "oops": (["NULL-POINTER-DEREFERENCE"], False),
    "oops-panic": (["NULL-POINTER-DEREFERENCE"], True),
    "bug": (["BUG"], False),
    "warn": (["WARNING"], False),
    "warn3": (["WARNING"] * 3, False),
    "panic": (["DoS"], True),
    "sysrq-c": (["DoS"], True),
    "boot": ([], False),
    "sysrq-t": ([], False),
    "sysrq-l": ([], False),
    "sysrq-m": ([], False),
    "long": ([], False),
    "burst": ([], False),
}
QUIET = 6.5      # > the detector's quiet timeout (5 s) + the timer tick: open reports are closed


def fixtures():
    if not MANIFEST.exists():
        return []
    data = json.loads(MANIFEST.read_text())
    items = data.items() if isinstance(data, dict) else ((d["name"], d) for d in data)
    out = []
    for name, meta in items:
        if isinstance(meta, dict) and (FIXTURES / (name + ".pcap")).exists():
            out.append((name, meta))
    return sorted(out)


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "syslogng_netconsole"] + list(args),
                          capture_output=True, text=True, cwd=str(REPO), timeout=timeout,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def analyze(path, via_cli=False):
    """`analyze --json PATH` as objects (in-process unless via_cli: same code, faster)."""
    if via_cli:
        r = cli("analyze", "--json", str(path))
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines()]
    from syslogng_netconsole.cli import analyze as cmd_analyze
    errors = []
    found = cmd_analyze.analyze_path(str(path), None, errors)
    assert errors == []
    return [json.loads(json.dumps(cmd_analyze.incident_json(str(path), i))) for i in found]


def stored(statedir, host=None):
    return read_incidents(statedir, host)


def _check(name, meta, found):
    scenario = meta.get("scenario")
    assert scenario in EXPECTED, "fixture %s: scenario %r has no expectation" % (name, scenario)
    types, panicked = EXPECTED[scenario]
    assert [i["type"] for i in found] == types, (name, [(i["type"], i["title"]) for i in found])
    for i in found:
        assert i["panicked"] is panicked, (name, i["title"])
        assert "nctest" in i["title"] or "sysrq" in i["title"] or scenario == "sysrq-c", i["title"]
        assert not i["corrupted"], (name, i["title"])


def test_fixtures_are_present():
    """The kernel tier's fixtures are part of the tree (tests/kernel/make_fixtures.py):
    without them the two tests below would check nothing."""
    assert MANIFEST.exists(), "%s is missing" % MANIFEST
    found = fixtures()
    assert found, "manifest lists no fixture with a pcap"
    assert any(EXPECTED.get(m.get("scenario"), ([], False))[0] for _, m in found), \
        "no crash scenario among the fixtures"


@pytest.mark.parametrize("name,meta", fixtures())
def test_analyze_real_kernel_capture(name, meta):
    found = analyze(FIXTURES / (name + ".pcap"), via_cli=True)
    _check(name, meta, found)
    assert all(i["input"].endswith(name + ".pcap") for i in found)


@pytest.mark.parametrize("name,meta", fixtures())
def test_per_host_file_and_serial_console_agree_with_the_capture(name, meta):
    """The drop-in's per-host file (NAME.decoded.log, written by syslog-ng) and the
    serial console (NAME.serial.log, CR LF) give the incidents of the capture."""
    ref = [(i["type"], i["title"], i["signature"], i["panicked"])
           for i in analyze(FIXTURES / (name + ".pcap"))]
    for suffix in (".decoded.log", ".serial.log"):
        path = FIXTURES / (name + suffix)
        assert path.exists(), path
        got = [(i["type"], i["title"], i["signature"], i["panicked"]) for i in analyze(path)]
        assert got == ref, (path.name, got, ref)


def test_replay_real_kernel_captures_into_syslog_ng(tmp_path):
    """Every fixture replayed into its own syslog-ng (all at once): its store holds the
    incidents `analyze` finds, one row and one JSON line each."""
    items = fixtures()
    assert items, "no kernel fixtures in %s" % FIXTURES
    why = available()
    if why:
        pytest.skip(why)
    daemons = {}
    try:
        for name, _meta in items:
            daemons[name] = Syslogng(tmp_path / name).start()
        for name, _meta in items:
            r = cli("replay", str(FIXTURES / (name + ".pcap")), "--to",
                    "127.0.0.1:%d" % daemons[name].port, "--speed", "0")
            assert r.returncode == 0, r.stderr
        # every record has reached the per-host file, then the reports' timers have run
        for name, _meta in items:
            decoded = FIXTURES / (name + ".decoded.log")
            if decoded.exists():
                want = len(decoded.read_text(errors="replace").splitlines())
                wait_for(lambda: len(daemons[name].log_lines("127.0.0.2")) >= want, 30,
                         message="%s: replayed records missing" % name)
        time.sleep(QUIET)
        for name, meta in items:
            sng = daemons[name]
            rows = stored(sng.statedir)
            _check(name, meta, rows)
            ref = analyze(FIXTURES / (name + ".pcap"))
            assert [(r["title"], r["signature"]) for r in rows] == \
                [(i["title"], i["signature"]) for i in ref], name
            assert all(r["host"] == "127.0.0.2" for r in rows)
            lines = (sng.statedir / "incidents.jsonl")
            assert len(lines.read_text().splitlines() if lines.exists() else []) == len(rows)
    finally:
        for sng in daemons.values():
            sng.stop()
