#!/usr/bin/python3
"""Regenerate the real-kernel fixtures under tests/fixtures/ (``make kernel-fixtures``).

Each fixture is one QEMU run of the kernel tier (harness.guest_run.boot_guest) with a
real syslog-ng collector (tests/harness/sng.py) listening:

  NAME.pcap         every frame the guest NIC sent (QEMU filter-dump; Ethernet,
                    10.0.2.15:6665 -> 10.0.2.2:PORT), i.e. the netconsole stream
  NAME.serial.log   the guest's serial console (ground truth, CR LF line ends)
  NAME.decoded.log  the per-host log syslog-ng wrote for that stream
  kernel-fixtures.json  per fixture: kernel release, mode, scenario, port, the
                    agreement of the decoded log with the console

A run whose decoded log does not agree with its console is not written.
Usage: make_fixtures.py [NAME...]   (default: all of FIXTURES)
"""

import json
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]    # tests/ (harness), the checkout

from harness import console_compare as cc  # noqa: E402
from harness import guest_run  # noqa: E402
from harness.sng import Syslogng, wait_drained  # noqa: E402
from syslogng_netconsole.ingest.capture import read_packets  # noqa: E402

OUT = HERE.parent / "fixtures"
MANIFEST = OUT / "kernel-fixtures.json"

# name -> (kernel, mode, scenario, why it is here)
FIXTURES = {
    "kernel-6.1-extended-oops-panic": (
        "6.1", "extended", "oops-panic",
        "NULL-pointer Oops that becomes a panic (panic_on_oops=1); extended format"),
    "kernel-6.12-release-warn": (
        "6.12", "release", "warn",
        "one WARN() with a message; extended format with the release prefix"),
    "kernel-6.1-plain-bug": (
        "6.1", "plain", "bug", "BUG() (invalid opcode Oops, not a panic); plain format"),
    "kernel-6.12-configfs-oops": (
        "6.12", "configfs", "oops",
        "NULL-pointer Oops without panic; configfs target with userdata guest, role; no boot replay"),
    "kernel-6.1-extended-sysrq-t": (
        "6.1", "extended", "sysrq-t",
        "sysrq-t task dump: stack traces that are not a crash; many 'c' continuation records"),
    "kernel-6.12-extended-sysrq-t": (
        "6.12", "extended", "sysrq-t",
        "sysrq-t on 6.12: the Sched Debug section is ~180 'c' records, each its own line"),
}


def make(name, kernel, mode, scenario, why, work):
    with Syslogng(work / ("sng-" + name)) as sng:
        run = guest_run.boot_guest(kernel, mode, scenario, sng.port, work, name=name)
        sent = sum(1 for p in read_packets(str(run.pcap)) if p.dst_port == sng.port)
        received, drops, _ = wait_drained(sng, sent)
        decoded = sng.read_log("127.0.0.1")
    if received != sent:
        raise SystemExit("%s: the guest sent %d datagrams, the collector read %d (%s dropped)"
                         % (name, sent, received, drops))
    if run.timed_out or run.exit_code != 0:
        raise SystemExit("%s: QEMU failed (exit %s, timed out %s)" % (name, run.exit_code,
                                                                      run.timed_out))
    console, _ = cc.console_lines(run.serial_log.read_bytes())
    ag = cc.compare_run(run.kver, mode, console, cc.decoded_lines(decoded))
    if not ag.ok:
        raise SystemExit("%s: decoded log disagrees with the console: %s\n%s"
                         % (name, ag.summary(), "\n".join(ag.problems)))
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy2(str(run.pcap), str(OUT / (name + ".pcap")))
    shutil.copy2(str(run.serial_log), str(OUT / (name + ".serial.log")))
    (OUT / (name + ".decoded.log")).write_text(decoded)
    print("%s: %s (%.1fs)" % (name, ag.summary(), run.seconds), flush=True)
    return {"kernel": run.kver, "mode": mode, "scenario": scenario, "about": why,
            "collector_port": run.port, "host_in_pcap": "10.0.2.15",
            "host_at_collector": "127.0.0.1", "cmdline": run.cmdline,
            "agreement": ag.summary()}


def main(names):
    names = names or list(FIXTURES)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    with tempfile.TemporaryDirectory(prefix="kernel-fixtures-") as tmp:
        for name in names:
            kernel, mode, scenario, why = FIXTURES[name]
            manifest[name] = make(name, kernel, mode, scenario, why, pathlib.Path(tmp))
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
