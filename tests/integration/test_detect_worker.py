"""The drop-in's detection worker (sng/detect_worker.py) inside a real syslog-ng:
killed with SIGKILL in the middle of several hosts' crash reports, it is restarted
and every report is stored once, whole; a reload in the middle of a storm keeps the
worker and every report. On 3.38 and in the 4.x chroot (strict @version: 4.4)."""

import os
import pathlib
import signal
import time

import pytest

from harness import chroot
from harness.sng import Syslogng, available, child_pids, wait_for
from syslogng_netconsole.incidents.store import read_incidents
from syslogng_netconsole.ingest.capture import read_packets

pytestmark = pytest.mark.syslogng
FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / \
    "kernel-6.1-extended-oops-panic.pcap"
TITLE = "BUG: unable to handle kernel NULL pointer dereference in nctest_null_deref"


def crash_part():
    """The capture's datagrams from a little before the report to its end."""
    if not FIXTURE.exists():
        pytest.skip("%s is not in this checkout" % FIXTURE)
    payloads = [p.payload for p in read_packets(str(FIXTURE)) if p.payload]
    start = next(i for i, p in enumerate(payloads) if b"BUG: kernel NULL pointer" in p)
    return payloads[start - 10:]


def worker_pids(sng):
    out = []
    for pid in child_pids(sng.pid):
        try:
            cmd = open("/proc/%d/cmdline" % pid, "rb").read()
        except OSError:
            continue
        if b"syslogng_netconsole.worker" in cmd:
            out.append(pid)
    return out


def send_interleaved(senders, payloads, lo, hi):
    for k in range(lo, hi):
        for tx in senders:
            tx.send(payloads[k])
        if k % 5 == 4:
            time.sleep(0.002)


def check_one_whole_incident_per_host(sng, hosts):
    wait_for(lambda: len(read_incidents(sng.statedir)) >= len(hosts), 30,
             message="incidents missing:\n" + sng.stderr_tail())
    time.sleep(1.0)                     # a duplicate would be stored by now
    found = read_incidents(sng.statedir)
    assert sorted(r["host"] for r in found) == sorted(hosts)
    for r in found:
        assert r["title"] == TITLE and r["panicked"] and not r["truncated"], r


def kill_worker_mid_report(sng, hosts):
    payloads = crash_part()
    senders = [sng.sender(h) for h in hosts]
    first = wait_for(lambda: worker_pids(sng), 10, message="no detection worker")
    half = 35
    send_interleaved(senders, payloads, 0, half)
    time.sleep(0.5)                     # the worker has the first halves
    os.kill(first[0], signal.SIGKILL)
    send_interleaved(senders, payloads, half, len(payloads))
    check_one_whole_incident_per_host(sng, hosts)
    again = wait_for(lambda: worker_pids(sng), 10, message="the worker was not restarted")
    assert again != first
    err = sng.stderr_text()
    assert "netconsole: detection worker " in err and "restarting it with the" in err, err


def test_a_killed_worker_is_restarted_and_every_report_stored_once(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    hosts = ["127.0.3.%d" % i for i in range(1, 9)]
    with Syslogng(tmp_path / "sng") as sng:
        kill_worker_mid_report(sng, hosts)
        assert "Traceback" not in sng.stderr_text()


def test_a_reload_in_a_storm_keeps_the_worker_and_every_report(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    hosts = ["127.0.4.%d" % i for i in range(1, 21)]
    payloads = crash_part()
    with Syslogng(tmp_path / "sng") as sng:
        senders = [sng.sender(h) for h in hosts]
        before = wait_for(lambda: worker_pids(sng), 10)
        send_interleaved(senders, payloads, 0, 30)
        sng.reload()
        send_interleaved(senders, payloads, 30, len(payloads))
        check_one_whole_incident_per_host(sng, hosts)
        assert worker_pids(sng) == before


@pytest.mark.chroot
def test_a_killed_worker_on_4x_strict(tmp_path):
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    root = chroot.ensure_chroot("trixie", chroot.SYSLOGNG_4X)
    sng = Syslogng(chroot=root, version="4.4")
    try:
        sng.start(timeout=40)
        kill_worker_mid_report(sng, ["127.0.5.%d" % i for i in range(1, 5)])
        assert "Traceback" not in sng.stderr_text()
    finally:
        sng.stop()
        print(sng.stderr_tail(30))
