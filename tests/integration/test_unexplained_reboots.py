"""Lost crashes with a real syslog-ng 3.38 and the unmodified drop-in (issue 13): four
hosts boot, end their boot in four ways, and boot again (extended records, sequence
numbers and kernel timestamps starting over, as a real reboot sends them):

  127.0.15.2  hard reset (the stream stops mid-boot)       -> one REBOOT incident
  127.0.15.3  reboot -f (the kernel's last line, no shutdown sequence) -> one
  127.0.15.4  clean reboot (systemd-shutdown's lines, then the kernel's last line,
              which a real netconsole never delivers: the rule does not need it) -> none
  127.0.15.5  panic with panic=N (its report is an incident of its own) -> none of REBOOT

These are crafted records in the kernel's extended format; real kernels that reboot
in these ways are in tests/kernel/test_reboots_kernel.py. A REBOOT still in its grace
when syslog-ng stops, or is killed, is judged after the next start (sng/rebootstate.py).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import samples
from harness.sng import REPO, Syslogng, available, wait_for
from syslogng_netconsole.hosts.reboots import GRACE

pytestmark = pytest.mark.syslogng

SHUTDOWN = ["systemd-shutdown[1]: Syncing filesystems and block devices.",
            "systemd-shutdown[1]: Sending SIGTERM to remaining processes...",
            "reboot: Restarting system"]
ENDINGS = {
    "127.0.15.2": ["eth0: link up", "EXT4-fs (vda1): mounted filesystem"],
    "127.0.15.3": ["eth0: link up", "reboot: Restarting system"],
    "127.0.15.4": ["eth0: link up"] + SHUTDOWN,
    "127.0.15.5": samples.OOPS_LINES + samples.PANIC_LINES,
}


def extended(lines, release="6.12.3-amd64", ts0=1000):
    return [("%s,6,%d,%d,-;%s\n" % (release, seq, ts0 + seq * 5000, text)).encode()
            for seq, text in enumerate(lines)]


def test_unexplained_reboots_and_the_clean_ones(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    sng = Syslogng(tmp_path / "sng")
    sng.start(timeout=30)
    jsonl = sng.statedir / "incidents.jsonl"

    def stored():
        return [json.loads(x) for x in jsonl.read_text().splitlines()] if jsonl.exists() else []
    try:
        for host, ending in ENDINGS.items():
            sng.sender(host).send_all(extended(["Linux version 6.12.3-amd64 (gcc)"] + ending),
                                      pace=0.001)
        assert wait_for(lambda: any(i["host"] == "127.0.15.5" for i in stored()), 20)
        for host in ENDINGS:        # the same stream again from seq 0: a new boot
            sng.sender(host).send_all(extended(["Linux version 6.12.3-amd64 (gcc)",
                                                "eth0: link up again"], ts0=700), pace=0.001)
        assert wait_for(lambda: len([i for i in stored() if i["type"] == "REBOOT"]) >= 2,
                        GRACE + 15), sng.stderr_tail()
    finally:
        sng.stop()
    reboots = {i["host"]: i for i in stored() if i["type"] == "REBOOT"}
    assert sorted(reboots) == ["127.0.15.2", "127.0.15.3"], sorted(reboots)
    reset = reboots["127.0.15.2"]
    assert reset["title"].startswith("unexplained reboot after ")
    assert reset["text"].splitlines()[-1].endswith("EXT4-fs (vda1): mounted filesystem")
    assert reset["release"] == "6.12.3-amd64" and reset["boot"] == 0
    assert [i["type"] for i in stored() if i["host"] == "127.0.15.5"] == \
        ["NULL-POINTER-DEREFERENCE"]
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "incidents",
                          "--state-dir", str(sng.statedir), "--by-signature"], cwd=str(REPO),
                         capture_output=True, text=True, timeout=60)
    print(out.stdout)
    assert any(" 2 incident(s)    2 host(s)" in line and "REBOOT: unexplained reboot" in line
               for line in out.stdout.splitlines()), out.stdout


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_reboot_in_its_grace_survives_a_stop_or_a_kill(tmp_path, how):
    """A hard reset's new boot arrives, and syslog-ng stops (SIGTERM) or is killed
    (SIGKILL) within the 15 s grace: the next start stores the REBOOT once, when the
    grace ends, and not before."""
    why = available()
    if why:
        pytest.skip(why)
    sng = Syslogng(tmp_path / "sng")
    jsonl = sng.statedir / "incidents.jsonl"
    saved = sng.statedir / ("source-%d.reboots.json" % sng.port)

    def reboots():
        docs = [json.loads(x) for x in jsonl.read_text().splitlines()] if jsonl.exists() else []
        return [i for i in docs if i["type"] == "REBOOT"]
    sng.start(timeout=30)
    host = "127.0.15.9"
    try:
        sng.sender(host).send_all(extended(["Linux version 6.12.3-amd64 (gcc)", "eth0: link up",
                                            "EXT4-fs (vda1): mounted filesystem"]), pace=0.001)
        time.sleep(1.0)
        sng.sender(host).send_all(extended(["Linux version 6.12.3-amd64 (gcc)",
                                            "eth0: link up again"], ts0=700), pace=0.001)
        t_boot = time.time()
        # on disk within the save period (a kill loses nothing older)
        assert wait_for(saved.exists, 6), sng.stderr_tail()
        if how == "kill":
            os.kill(sng.pid, signal.SIGKILL)
            sng.proc.wait(10)
        sng.stop()
        assert not reboots() and time.time() - t_boot < GRACE - 5
        sng.start(timeout=30)
        assert wait_for(lambda: reboots(), GRACE + 10), sng.stderr_tail()
        # judged when its grace ended, not at the start
        assert time.time() - t_boot >= GRACE - 1
        time.sleep(2.5)
    finally:
        sng.stop()
    got = reboots()
    assert len(got) == 1 and got[0]["host"] == host, got
    assert got[0]["text"].splitlines()[-1].endswith("EXT4-fs (vda1): mounted filesystem")
    assert not saved.exists() or json.loads(saved.read_text()) == []
