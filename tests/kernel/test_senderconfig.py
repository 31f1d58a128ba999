"""sender-config and sender-test on a real kernel (issue 16): Debian's 6.12 boots in
QEMU with no netconsole setup of init.sh's own; instead it runs the configfs script
that sender-config's pure core made from the guest's facts (its kernel release, and
/boot/config of that kernel for CONFIG_NETCONSOLE_DYNAMIC; eth0 with virtio_net as a
module; slirp's route and neighbour: 10.0.2.15 -> 10.0.2.2, MAC 52:55:0a:00:02:02,
tests/fixtures/iproute2/crafted.json "qemu-guest"), twice: the second run must change
nothing. Then init writes sender-test's record (hosts/selftest.py) to /dev/kmsg.

Checks: the plan has no error or warning; the guest's NIC sent extended records, each
with the release prefix and the userdata hostname (the pcap through `decode --json`);
the collector (a real syslog-ng 3.38 with the drop-in) got them all and its per-host
log agrees with the serial console; the self-test record arrived, user facility at the
notice level, and parse() reads its id back. One boot, about 15-30 s under TCG.
"""

import json
import pathlib
import re
import secrets
import subprocess
import sys
import time

import pytest

from harness import console_compare as cc
from harness import guest_build, guest_run
from harness.sng import REPO, Syslogng, available, wait_drained, wait_for
from syslogng_netconsole.hosts import selftest
from syslogng_netconsole.ingest.capture import read_packets
from syslogng_netconsole.sender import gather, render
from syslogng_netconsole.sender.plan import Driver, Facts, Request, System, make_plan

pytestmark = [pytest.mark.kernel, pytest.mark.syslogng]

KERNEL = "6.12"                   # release prefix (6.6+) and userdata (6.9+)
NAME = "nc-guest-7"               # the guest's host name (init.sh: hostname)
GUEST = json.loads((pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "iproute2"
                    / "crafted.json").read_text())["qemu-guest"]


def guest_plan(kver, port):
    """sender-config's plan for the guest, from the guest's facts."""
    config = gather.kernel_config(kver)
    system = System(kernel=kver, netconsole=gather.netconsole_kind(kver),
                    dynamic=config.get("CONFIG_NETCONSOLE_DYNAMIC") == "y",
                    drivers={"eth0": Driver("virtio_net", "virtio_net", True)},
                    hostname=NAME, console_loglevel=7)     # the guest boots loglevel=7
    facts = Facts(route=GUEST["route"], neigh=GUEST["neigh"], links=GUEST["links"],
                  system=system)
    return make_plan(facts, Request(collector="10.0.2.2", port=port))


def _hosts(statedir):
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "hosts", "--state-dir",
                          str(statedir), "--json"], capture_output=True, text=True, timeout=30,
                         cwd=str(REPO))
    return [json.loads(x) for x in out.stdout.splitlines()]


def test_sender_config_target_and_sender_test_record_on_a_real_kernel(tmp_path):
    why = available() or guest_run.missing_tools()
    if why:
        pytest.skip(why)
    kver = guest_build.kernels().get(KERNEL)
    if kver is None:
        pytest.fail("Debian's %s kernel (with headers) is not installed "
                    "(tests/install-deps.sh installs it)" % KERNEL)
    test_id = secrets.token_hex(6)
    with Syslogng(tmp_path / "sng") as sng:
        plan = guest_plan(kver, sng.port)
        assert plan.ok and not plan.warnings(), plan.messages
        t = plan.target
        assert (plan.method, t.extended, t.release, t.userdata, t.hostname) == \
            ("configfs", True, True, True, None)
        record = selftest.record(test_id, NAME, time.time())
        files = {guest_run.SENDERCONFIG_SCRIPT: render.configfs_script(plan).encode(),
                 guest_run.SELFTEST_LINE: selftest.kmsg_line(record)}
        run = guest_run.boot_guest(KERNEL, "senderconfig", "boot", sng.port,
                                   tmp_path / "guest", hostname=NAME, files=files)
        assert run.poweroff_hang or not run.timed_out, run.serial_text()[-2000:]
        sent = sum(1 for p in read_packets(str(run.pcap)) if p.dst_port == sng.port)
        received, drops, _ = wait_drained(sng, sent)
        decoded_text = sng.read_log("127.0.0.1")
        # the collector's host listing shows the self-test (hosts.sqlite: every 5 s)
        listed = wait_for(lambda: [h for h in _hosts(sng.statedir)
                                   if (h.get("selftest") or {}).get("id") == test_id], 15)
        listing = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "hosts",
                                  "--state-dir", str(sng.statedir)], capture_output=True, cwd=str(REPO),
                                 text=True, timeout=30).stdout
    console, _ = cc.console_lines(run.serial_log.read_bytes())
    texts = [x.text for x in console]

    # the script ran in the guest: the first run enabled the target, the second did nothing
    first = "nctest-init: netconsole-target: netconsole-%s: enabled: eth0 -> 10.0.2.2:%d " \
            "(52:55:0a:00:02:02)" % (t.name, sng.port)
    assert first in texts, [x for x in texts if "netconsole" in x]
    assert "nctest-init: netconsole-target again:" in texts
    # netpoll prints the options at each enabling of a target: once
    assert sum(1 for x in texts if x == "netpoll: netconsole: local port 6665") == 1

    # the guest's own stream: extended, release prefix, userdata hostname on every record
    assert sent > 0 and received == sent, (sent, received, drops)
    records = cc.cli_decode(run.pcap)
    # a configfs target replays nothing: its stream starts at its own enabling
    got = [r["text"] for r in records]
    assert got[0] == "netconsole: network logging started" and first in got
    assert got[-1] == "nctest-init: powering off" or run.poweroff_hang, got[-3:]
    assert {r["format"] for r in records} == {"extended"}
    assert {r["release"] for r in records} == {kver}
    assert {r.get("userdata.hostname") for r in records} == {NAME}
    ag = cc.compare_run(kver, "configfs", console, cc.decoded_lines(decoded_text))
    assert ag.ok and ag.ts_mismatch == 0, "%s\n%s" % (ag.summary(), "\n".join(ag.problems))

    # sender-test's record: on the wire (user.notice = 13) and at the collector
    (rec,) = [r for r in records if selftest.parse(r["text"])]
    assert (selftest.parse(rec["text"])["id"], rec["level"]) == (test_id, 13)
    (line,) = [x for x in cc.decoded_lines(decoded_text) if selftest.MARKER in x.text]
    assert selftest.parse(line.text) == {"id": test_id, "host": NAME,
                                         "time": int(record.rsplit("=", 1)[1])}
    assert re.search(r"id=%s\b" % test_id, decoded_text)
    (host,) = listed
    st = host["selftest"]
    assert (st["format"], st["release"], st["hostname"], st["missing"]) == \
        ("extended", kver, NAME, []), st
    assert "%s (127.0.0.1)" % NAME in listing and "self-test " in listing, listing
    assert listing.rstrip().endswith(" ok"), listing
    # and no incident of it
    assert not (sng.statedir / "incidents.jsonl").exists() or \
        not (sng.statedir / "incidents.jsonl").read_text().strip()
    print("\nsender-config on %s: %d records, release %s, hostname %s, self-test %s; "
          "boot %.1f s (+%.1f s build, %s)" % (kver, len(records), kver, NAME, test_id,
                                              run.seconds, run.build_seconds, run.accel))
