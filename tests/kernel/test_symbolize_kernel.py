"""Symbolized reports from a real kernel (issue 14).

Debian's 6.1 kernel boots in QEMU (harness.guest_run), loads the test module
(tests/kernel/nctest, built with -g: its .ko carries DWARF) which writes through a
NULL pointer; the Oops goes by netconsole into a real syslog-ng with the project's
SCL and drop-in, whose incidents destination is given the module's debug file laid
out by release (DIR/lib/modules/RELEASE/extra/nctest.ko). The stored incident must
have every module frame symbolized to the source line of its statement in
nctest.c (found by its ``SYM:`` marker, not by number) and nctest.c as the guilty
file; the alert (alerts.jsonl) carries them and the mail shows them.

Then the same capture through ``analyze`` with a real debuginfod server (Debian's
package) serving the full .ko by build-id, the local directory holding only the
stripped module: the same frames. With the server down: unsymbolized, counted by
reason, and no slower than the bound. A vmlinux frame check runs when Debian's
linux-image-RELEASE-dbg is installed.
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from harness import guest_build, guest_run
from harness.sng import Syslogng, free_udp_port, wait_for
from syslogng_netconsole.alerts import mail, model
from syslogng_netconsole.incidents.store import read_incidents
from syslogng_netconsole.symbols import elf

pytestmark = [pytest.mark.kernel, pytest.mark.syslogng]

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "kernel" / "nctest" / "nctest.c"
KERNEL = "6.1"


def marker_line(tag):
    """Line number of the nctest.c statement marked ``SYM:tag``."""
    for i, line in enumerate(SOURCE.read_text().splitlines(), 1):
        if "SYM:%s " % tag in line + " ":
            return i
    raise AssertionError("no SYM:%s marker in %s" % (tag, SOURCE))


def module_frames(symbols):
    return [f for f in symbols["frames"] if f["module"] == "nctest"]


def check_module_frames(symbols):
    frames = module_frames(symbols)
    assert frames, symbols
    for f in frames:
        assert f["locations"], ("module frame not symbolized", f)
        assert f["locations"][0]["file"] == "nctest.c", f
    want = {"nctest_null_deref": marker_line("oops"), "nctest_init": marker_line("call")}
    got = {(f["func"], f["locations"][0]["line"]) for f in frames}
    assert got == set(want.items()), (got, want)
    assert symbols["guilty_file"] == "nctest.c"


def analyze(pcap, *args, cache=None, timeout=120):
    """`analyze --json` of the capture; its debuginfod cache in `cache`."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache or pathlib.Path(pcap).parent / "cache"))
    proc = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "analyze", "--json",
                           *args, str(pcap)], capture_output=True, text=True, cwd=str(REPO),
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def oops(tmp_path_factory):
    """(run, stored row, alert dict, debug dir, release) of one 6.1 Oops."""
    why = guest_run.why_no_guest(KERNEL)
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("symbolize")
    kver = guest_build.kernel_version(KERNEL)
    ko = guest_build.build_module(kver)
    assert elf.read_file(str(ko)).has_dwarf(), "nctest.ko has no .debug_line"
    dbg = tmp / "dbg"
    (dbg / "lib/modules" / kver / "extra").mkdir(parents=True)
    shutil.copy2(str(ko), str(dbg / "lib/modules" / kver / "extra" / "nctest.ko"))
    opts = "debug_dirs('%s') debuginfod_urls('none') symbolize_wait('10')" % dbg
    with Syslogng(tmp / "sng", defines={"netconsole_alert_options": opts}) as sng:
        run = guest_run.boot_guest(KERNEL, "extended", "oops", sng.port, tmp / "guest")
        assert run.poweroff_hang or not run.timed_out
        wait_for(lambda: [r for r in read_incidents(sng.statedir) if r.get("symbols")], 40,
                 message="no symbolized incident:\n" + sng.stderr_tail())
        alerts = sng.statedir / "alerts.jsonl"
        wait_for(lambda: alerts.exists() and alerts.read_text().strip(), 20,
                 message="no alert:\n" + sng.stderr_tail())
        row = read_incidents(sng.statedir)[0]
        alert = json.loads(alerts.read_text().splitlines()[0])
        stats = json.loads((sng.statedir / "incidents-stats.json").read_text()) \
            if (sng.statedir / "incidents-stats.json").exists() else {}
    return run, row, alert, dbg, kver, stats


def test_module_crash_stored_symbolized(oops):
    run, row, alert, _dbg, _kver, _stats = oops
    assert row["type"] == "NULL-POINTER-DEREFERENCE", row["title"]
    check_module_frames(row["symbols"])
    assert row["guilty_file"] == "nctest.c"
    # the alert document (generic JSON, as alerts.jsonl and the webhook carry it):
    # file:line per frame and the guilty file
    doc = alert["netconsole"]
    assert doc["incident"]["guilty_file"] == "nctest.c", doc
    check_module_frames(dict(doc["incident"]["symbols"], guilty_file="nctest.c"))
    assert "(nctest.c:%d)" % marker_line("oops") in doc["text"]
    # the mail of this stored incident
    from syslogng_netconsole.incidents.store import incident_from_dict
    body = mail.body_text(model.from_incident(incident_from_dict(row), row["stored_at"]))
    assert "Guilty file: nctest.c" in body
    assert "nctest_null_deref+0x" in body and "(nctest.c:%d)" % marker_line("oops") in body
    print("\n---- the mail body ----\n" + body)


@pytest.fixture(scope="module")
def debuginfod_server(oops, tmp_path_factory):
    if not shutil.which("debuginfod"):
        pytest.fail("debuginfod is missing (tests/install-deps.sh installs it)")
    _run, _row, _alert, dbg, kver, _stats = oops
    tmp = tmp_path_factory.mktemp("debuginfod")
    srv = tmp / "srv"
    srv.mkdir()
    ko = dbg / "lib/modules" / kver / "extra" / "nctest.ko"
    shutil.copy2(str(ko), str(srv / "nctest.ko"))
    bid = elf.read_file(str(ko)).build_id()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["debuginfod", "-F", "-d", str(tmp / "db.sqlite"), "-p", str(port),
                             "-t", "1", "-g", "0", str(srv)], stdout=subprocess.DEVNULL,
                            stderr=open(str(tmp / "log"), "wb"))
    url = "http://127.0.0.1:%d" % port
    try:
        def ready():
            try:
                with urllib.request.urlopen("%s/buildid/%s/debuginfo" % (url, bid), timeout=2):
                    return True
            except OSError:
                return False
        wait_for(ready, 30, interval=0.5, message="debuginfod did not index the module")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def stripped_dir(dbg, kver, tmp):
    """The host's view: the module without DWARF (it keeps its build-id note)."""
    out = tmp / "stripped"
    d = out / "lib/modules" / kver / "extra"
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["objcopy", "--strip-debug", str(dbg / "lib/modules" / kver / "extra" /
                                                   "nctest.ko"), str(d / "nctest.ko")],
                   check=True)
    assert not elf.read_file(str(d / "nctest.ko")).has_dwarf()
    return out


def test_same_frames_through_debuginfod(oops, debuginfod_server, tmp_path):
    run, row, _alert, dbg, kver, _stats = oops
    local = analyze(run.pcap, "--symbols", str(dbg))
    assert [i["symbols"]["frames"] for i in local] == [row["symbols"]["frames"]]
    found = analyze(run.pcap, "--symbols", str(stripped_dir(dbg, kver, tmp_path)),
                    "--debuginfod", debuginfod_server, cache=tmp_path / "cache")
    assert len(found) == 1
    assert found[0]["symbols"]["sources"] == {"debuginfod": len(module_frames(row["symbols"]))}
    assert found[0]["symbols"]["frames"] == row["symbols"]["frames"]
    assert found[0]["guilty_file"] == "nctest.c"


def test_debuginfod_down_degrades_quickly(oops, tmp_path):
    run, _row, _alert, dbg, kver, _stats = oops
    dead = "http://127.0.0.1:%d" % free_udp_port()     # nothing listens on TCP there
    t0 = time.monotonic()
    found = analyze(run.pcap, "--symbols", str(stripped_dir(dbg, kver, tmp_path)),
                    "--debuginfod", dead, cache=tmp_path / "cache")
    took = time.monotonic() - t0
    assert len(found) == 1 and found[0]["symbols"]["status"] == "none"
    assert "debuginfod-down" in found[0]["symbols"]["reason"]
    assert found[0]["guilty_file"] is None
    assert took < 30, took


def test_vmlinux_frames(oops):
    run, _row, _alert, dbg, kver, _stats = oops
    if not os.path.exists("/usr/lib/debug/boot/vmlinux-%s" % kver):
        pytest.skip("linux-image-%s-dbg is not installed (5.6 GB; too big for CI): "
                    "no vmlinux frames to check" % kver)
    found = analyze(run.pcap, "--symbols", "/usr/lib/debug", "--symbols", str(dbg), timeout=600)
    symbols = found[0]["symbols"]
    kernel = [f for f in symbols["frames"] if not f["module"] and f["kind"] != "unreliable"]
    assert kernel and all(f["locations"] for f in kernel), kernel
    # shown relative to the kernel tree, as in a kernel checkout (Debian builds out of
    # tree: its DWARF names debian/build/build_FLAVOUR/... and absolute paths)
    files = {loc["file"] for f in symbols["frames"] for loc in f["locations"]}
    assert not [p for p in files if p.startswith(("/", "debian/", "."))], files
    assert "init/main.c" in files and "arch/x86/entry/entry_64.S" in files, files
    assert symbols["status"] == "ok" and found[0]["guilty_file"] == "nctest.c"
    check_module_frames(symbols)
    shown = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "analyze", "--text",
                            "--symbols", "/usr/lib/debug", "--symbols", str(dbg), str(run.pcap)],
                           capture_output=True, text=True, cwd=str(REPO), timeout=600).stdout
    assert "do_one_initcall+0x" in shown and "(init/main.c:" in shown, shown
    assert "(nctest.c:%d)" % marker_line("oops") in shown, shown
    print("\n" + shown)
