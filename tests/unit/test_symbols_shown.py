"""A symbolized incident as people see it: stored by the real symbolizer (a gcc
object laid out by release, real addr2line, a MAINTAINERS file), then shown by
`syslogng-netconsole incidents --text` (a subprocess over the state directory) and
rendered as the mail body, the generic JSON document and the Alertmanager
payload, each with the frame's file:line, the guilty file and its subsystem."""

import json
import pathlib
import shutil
import subprocess

import pytest

from syslogng_netconsole.alerts import alertmanager, model, webhook
from syslogng_netconsole.alerts.mail import body_text
from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.incidents.store import Store, incident_from_dict
from syslogng_netconsole.symbols import elf, service

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
RELEASE = "6.1.0-9-amd64"
SOURCE = """__attribute__((noinline)) void crash_here(volatile int *p)
{
\t*p = 42;
}
"""
REPORT = ("BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
          "RIP: 0010:crash_here+0x1/0x%x [demo]\nCall Trace:\n <TASK>\n"
          " do_one_initcall+0x59/0x220\n")
MAINTAINERS = ("DEMO DRIVER\nM:\tDee Veloper <dee@example.org>\nL:\tdemo-list@example.org\n"
               "S:\tMaintained\nF:\tdemo.c\n")


@pytest.fixture
def state(tmp_path):
    if not (shutil.which("gcc") and shutil.which("addr2line")):
        pytest.skip("gcc or addr2line missing")
    dbg = tmp_path / "dbg" / "lib" / "modules" / RELEASE / "extra"
    dbg.mkdir(parents=True)
    (tmp_path / "demo.c").write_text(SOURCE)
    subprocess.run(["gcc", "-c", "-g", "-O2", "-fno-pic", "-ffunction-sections", "-o",
                    str(dbg / "demo.ko"), "demo.c"], check=True, cwd=str(tmp_path))
    size = elf.read_file(str(dbg / "demo.ko")).symbols()["crash_here"][0].size
    (tmp_path / "MAINTAINERS").write_text(MAINTAINERS)
    sym = service.Symbolizer([str(tmp_path / "dbg")], [], str(tmp_path / "cache"),
                             maintainers_file=str(tmp_path / "MAINTAINERS"))
    inc = Incident(host="10.0.0.7", type="NULL-POINTER-DEREFERENCE",
                   title="BUG: kernel NULL pointer dereference in crash_here",
                   signature="s1", text=REPORT % size, release=RELEASE)
    symbols, guilty, subsystem = sym.run(inc.text, inc.release)
    assert guilty == "demo.c" and subsystem["name"] == "DEMO DRIVER", symbols
    s = Store(str(tmp_path / "state"))
    assert s.add(inc, 1_800_000_000.0)
    assert s.set_symbols(inc.id, symbols, guilty, subsystem)
    s.close()
    return tmp_path / "state", size


def test_incidents_text_shows_the_symbolized_report(state):
    state_dir, size = state
    proc = subprocess.run([PYTHON, "-m", "syslogng_netconsole", "incidents", "--text",
                           "--state-dir", str(state_dir)], cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "RIP: 0010:crash_here+0x1/0x%x [demo] (demo.c:3)" % size in out, out
    assert "guilty file: demo.c" in out
    assert "subsystem: DEMO DRIVER demo-list@example.org" in out
    assert "symbols: partial (no-debug-file)" in out       # no vmlinux here


def stored_alert(state_dir):
    s = Store(str(state_dir), readonly=True)
    (d,) = s.list()
    s.close()
    return model.from_incident(incident_from_dict(d), 1_800_000_100.0)


def test_mail_and_json_carry_file_line_guilty_file_and_subsystem(state):
    state_dir, size = state
    alert = stored_alert(state_dir)
    body = body_text(alert)
    assert "crash_here+0x1/0x%x [demo] (demo.c:3)" % size in body
    assert "Guilty file: demo.c" in body
    assert "Subsystem: DEMO DRIVER" in body
    assert "List:      demo-list@example.org" in body
    assert "Maintainer: Dee Veloper <dee@example.org>" in body
    doc = json.loads(json.dumps(webhook.document(alert)))
    nc = doc["netconsole"]
    assert nc["incident"]["guilty_file"] == "demo.c"
    assert nc["incident"]["subsystem"]["name"] == "DEMO DRIVER"
    assert nc["incident"]["subsystem"]["lists"] == ["demo-list@example.org"]
    (frame,) = [f for f in nc["incident"]["symbols"]["frames"] if f["module"] == "demo"]
    assert frame["locations"][0] == {"func": "crash_here", "file": "demo.c", "line": 3}
    assert "(demo.c:3)" in nc["text"]
    for ann in (doc["commonAnnotations"], alertmanager.payload(alert)[0]["annotations"]):
        assert ann["guilty_file"] == "demo.c"
        assert ann["subsystem"] == "DEMO DRIVER demo-list@example.org"
