"""Lost crashes from real kernels (issue 13, part 4): one Debian 6.12 guest (extended
netconsole; the collector sees every boot as 127.0.0.1:6665, one host) boots
six times into one real syslog-ng 3.38 with the unmodified drop-in, each boot ending
differently:

  boot 0  a clean reboot: the lines systemd-shutdown writes to the kernel log, then
          reboot(2) (the busybox guest has no systemd: init writes them, as
          systemd-shutdown would)                                    -> no REBOOT
  boot 1  a clean power-off, the same way ("Powering off.")          -> no REBOOT
  boot 2  `reboot -f`: no shutdown sequence                          -> one REBOOT
  boot 3  a hard reset: QEMU's `system_reset` (monitor) after init's marker;
          the guest prints nothing more                              -> one REBOOT
  boot 4  an oops with panic_on_oops and panic=2 (its report is an
          incident, NULL-POINTER-DEREFERENCE, panicked)              -> no REBOOT
  boot 5  the guest's forced power-off ends the run (never judged: no next boot)

Seen here first: the kernel's own last line ("reboot: Restarting system", "reboot:
Power down") never reaches the collector, the NIC is down by then; the last record of
a boot is what user space wrote before (asserted below)."""

import json

import pytest

from harness import guest_run
from harness.sng import Syslogng, wait_for
from syslogng_netconsole.hosts.reboots import GRACE

pytestmark = [pytest.mark.kernel, pytest.mark.syslogng]

KERNEL, MODE = "6.12", "extended"
BOOTS = ["clean", "clean-off", "reboot-f", "hang", "oops-panic", "boot"]


def test_reboots_of_a_real_kernel(tmp_path):
    why = guest_run.why_no_guest(KERNEL)
    if why:
        pytest.skip(why)
    jsonl = None
    with Syslogng(tmp_path / "sng") as sng:
        jsonl = sng.statedir / "incidents.jsonl"
        for n, scenario in enumerate(BOOTS):
            run = guest_run.boot_guest(KERNEL, MODE, scenario, sng.port, tmp_path / "guest",
                                       name="boot%d-%s" % (n, scenario))
            assert not run.timed_out, (scenario, run.serial_text()[-1500:])

        def reboots():
            got = [json.loads(x) for x in jsonl.read_text().splitlines()] \
                if jsonl.exists() else []
            return [i for i in got if i["type"] == "REBOOT"]
        # the last transition is judged GRACE seconds after the last boot began
        assert wait_for(lambda: len(reboots()) >= 2, GRACE + 30), sng.stderr_tail()
        stored = [json.loads(x) for x in jsonl.read_text().splitlines()]
    got = sorted((i["boot"], i["first_line"].split("] ", 1)[-1]) for i in stored
                 if i["type"] == "REBOOT")
    assert got == [(2, "nctest-init: rebooting with reboot -f"),
                   (3, "nctest-init: waiting for the reset")], got
    assert not any("reboot: Restarting system" in i["text"] for i in stored), \
        "the kernel's last line reached the collector: the rules could use it"
    others = [(i["type"], i["panicked"], i["boot"]) for i in stored if i["type"] != "REBOOT"]
    assert others == [("NULL-POINTER-DEREFERENCE", True, 4)], others
    for i in stored:
        if i["type"] == "REBOOT":
            print("\n%s boot %d: %s\n  %s" % (i["host"], i["boot"], i["title"],
                                              i["text"].replace("\n", "\n  ")))
