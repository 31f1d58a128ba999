"""Debian kernels in QEMU send netconsole to a real syslog-ng with the project's config.

Each case boots one kernel in one netconsole mode, runs one scenario, and
checks that

1. the guest really did it (the scenario's marks are on the serial console
   and in the decoded per-host log, harness.guest_run.EXPECT);
2. the collector read every datagram the guest NIC sent (QEMU's pcap of the
   NIC), and that pcap decodes (``syslogng-netconsole decode --json``) to the
   console's lines, with the mode's fields (seq, release prefix, userdata);
3. the per-host log written by syslog-ng (``LOGDIR/127.0.0.1.log``) agrees
   with the serial console line by line (console_compare: every console line
   up to power-off once, in order, same text and timestamp; lines printed
   while the NIC is torn down are counted, not failed).

CI runs MATRIX_CI (every scenario and every mode at least once, both
kernels); ``NETCONSOLE_KERNEL_MATRIX=full`` (``make test-kernel-full``) runs
every scenario in every mode of both kernels.
"""

import os
import re
import shutil
import time

import pytest

from harness import console_compare as cc
from harness import guest_build, guest_run
from harness.console_compare import cli_decode, cli_json, records_to_lines
from harness.guest_run import BURST_LINES, EXPECT, missing_tools
from harness.sng import wait_drained
from kernel_session import RUNS
from syslogng_netconsole.ingest.capture import read_packets
from syslogng_netconsole.incidents.store import read_incidents

pytestmark = pytest.mark.kernel

# (kernel, mode, scenario): every scenario and every mode at least once,
# crashes on both kernels; about 5 minutes under TCG.
MATRIX_CI = [
    ("6.1", "plain", "boot"),
    ("6.1", "plain", "bug"),
    ("6.1", "plain", "long"),
    ("6.1", "plain", "sysrq-m"),
    ("6.1", "extended", "oops-panic"),
    ("6.1", "extended", "oops"),
    ("6.1", "extended", "warn3"),
    ("6.1", "extended", "sysrq-t"),
    ("6.1", "extended", "long"),
    ("6.1", "extended", "burst"),
    ("6.1", "extended", "panic"),
    ("6.12", "plain", "panic"),
    ("6.12", "plain", "long"),
    ("6.12", "plain", "sysrq-l"),
    ("6.12", "extended", "sysrq-c"),
    ("6.12", "extended", "bug"),
    ("6.12", "extended", "warn"),
    ("6.12", "extended", "long"),
    ("6.12", "release", "warn"),
    ("6.12", "release", "long"),
    ("6.12", "release", "burst"),
    ("6.12", "configfs", "oops"),
    ("6.12", "configfs", "long"),
    ("6.12", "configfs", "sysrq-t"),
]
MODES_BY_KERNEL = {"6.1": ("plain", "extended"),
                   "6.12": ("plain", "extended", "release", "configfs")}
MATRIX_FULL = [(k, m, s) for k, modes in MODES_BY_KERNEL.items() for m in modes
               for s in guest_run.SCENARIOS if s not in guest_run.REBOOTS]

# scenario -> the incidents the crash detector must store, as (type, panicked),
# in order; a scenario not listed is no crash (stack dumps, bursts, long records)
INCIDENTS = {
    "oops": [("NULL-POINTER-DEREFERENCE", False)],
    "oops-panic": [("NULL-POINTER-DEREFERENCE", True)],
    "bug": [("BUG", False)],
    "warn": [("WARNING", False)],
    "warn3": [("WARNING", False)] * 3,
    "panic": [("DoS", True)],
    "sysrq-c": [("DoS", True)],
}
# a report with no end marker is finished by the detector's quiet timer (5 s
# after the host's last line): wait this long after the stream went still
INCIDENT_QUIET = 6.5


def matrix():
    chosen = MATRIX_FULL if os.environ.get("NETCONSOLE_KERNEL_MATRIX") == "full" else MATRIX_CI
    return [pytest.param(*c, id="%s-%s-%s" % c) for c in chosen]


def _count(lines, pattern):
    rx = re.compile(pattern)
    return sum(1 for line in lines if rx.search(line.text))


@pytest.fixture(scope="module")
def tools():
    why = missing_tools()
    if why:
        pytest.skip(why)


@pytest.mark.parametrize("kernel,mode,scenario", matrix())
def test_guest_stream_matches_console(kernel, mode, scenario, tools, request, kernel_report):
    from harness.sng import Syslogng, available, wait_for

    why = available()
    if why:
        pytest.skip(why)
    kver = guest_build.kernels().get(kernel)
    if kver is None:
        pytest.skip("kernel %s (with headers) is not installed" % kernel)
    row = {"kernel": kernel, "kver": kver, "mode": mode, "scenario": scenario,
           "result": "error", "seconds": 0.0}
    work = RUNS / request.node.callspec.id
    shutil.rmtree(str(work), ignore_errors=True)
    sng = Syslogng(work / "sng")
    sng.start()
    try:
        run = guest_run.boot_guest(kernel, mode, scenario, sng.port, work,
                                   lines=BURST_LINES)
        row["seconds"] = round(run.seconds, 1)
        row["early_boot_retries"] = run.early_boot_retries
        row["qemu_exit"] = run.exit_code
        row["accel"] = run.accel
        sent = sum(1 for p in read_packets(str(run.pcap)) if p.dst_port == sng.port)
        received, drops, drained = wait_drained(sng, sent)
        row.update(sent=sent, received=received, socket_drops=drops, drain_seconds=drained)
        expected = INCIDENTS.get(scenario, [])
        time.sleep(max(0.0, INCIDENT_QUIET - 2.0))   # wait_drained saw 2 s of stillness
        try:   # a shortfall is reported with the rows in step 5
            wait_for(lambda: len(read_incidents(sng.statedir)) >= len(expected), 20, interval=0.2)
        except AssertionError:
            pass
        stored = read_incidents(sng.statedir)
        decoded_text = sng.read_log("127.0.0.1")
        counters = sng.stats().get("counters", {})
        row["core_counters"] = {k: v for k, v in counters.items() if v}
    finally:
        sng.stop()
    try:
        # A guest that hangs in the kernel's shutdown after init's power-off
        # marker has sent its stream (the lines after the marker are the
        # teardown window anyway): recorded, compared as usual. Any other
        # time-out or QEMU error fails.
        row["poweroff_hang"] = run.poweroff_hang
        assert run.poweroff_hang or not run.timed_out, (
            "QEMU ran past its time limit; serial tail:\n%s" % run.serial_text()[-2000:])
        assert run.poweroff_hang or run.exit_code == 0, (
            "QEMU exited %s: %s" % (run.exit_code, run.qemu_log.read_text()[-2000:]))
        console, other = cc.console_lines(run.serial_log.read_bytes())
        decoded = cc.decoded_lines(decoded_text)

        # 0. every datagram the guest NIC sent reached the collector
        assert received == sent, (
            "the guest sent %d datagrams, the collector read %d; the host kernel "
            "dropped %s at its socket (receive buffer full); artifacts in %s"
            % (sent, received, drops, work))

        # 1. the guest's NIC sent every console line (else the kernel, not
        #    the receiver, lost them: see init.sh ncbql for one such case)
        records = cli_decode(run.pcap)
        ag2 = cc.compare_run(kver, mode, console, records_to_lines(records))
        row["pcap_agreement"] = ag2.summary()
        assert ag2.ok and ag2.ts_mismatch == 0, (
            "the guest NIC's own stream (pcap) disagrees with its console: %s\n%s"
            % (ag2.summary(), "\n".join(ag2.problems)))

        # 2. the scenario happened, and the collector got it
        for pattern, n in EXPECT[scenario]:
            assert _count(console, pattern) >= n, "console lacks %d x %r" % (n, pattern)
            assert _count(decoded, pattern) >= n, "decoded log lacks %d x %r" % (n, pattern)
        if scenario in guest_run.PANICS:
            assert _count(console, re.escape(cc.END_MARKER)) == 0
        else:
            assert _count(console, "^" + re.escape(cc.END_MARKER) + "$") == 1

        # 3. the collector's per-host log agrees with the console
        ag = cc.compare_run(kver, mode, console, decoded)
        row["agreement"] = ag.summary()
        row.update({k: getattr(ag, k) for k in (
            "strict_total", "matched", "kernel_truncated", "console_truncated",
            "ts_mismatch", "missing", "extra", "teardown_total", "teardown_lost",
            "window_start", "console_other")})
        assert ag.ok and ag.ts_mismatch == 0, "%s\n%s" % (ag.summary(), "\n".join(ag.problems))
        # one line per record, 'c' records too: nothing glued into lines the host
        # never printed
        longest = max(len(x.text) for x in console)
        assert max(len(x.text) for x in decoded) <= longest, "a decoded line is longer " \
            "than any console line: records glued together?"
        if mode != "configfs":
            assert ag.window_start == 0, "a netconsole= target replays from Linux version"
        if mode == "plain" or guest_run.kernel_tuple(kver) < (6, 2):
            assert ag.kernel_truncated == 0
        if scenario in guest_run.PANICS:
            assert ag.teardown_total == 0

        # 4. the mode's fields, as the core decodes them from the pcap
        assert {r["host"] for r in records} == {"10.0.2.15"}
        assert {r["format"] for r in records} == {"plain" if mode == "plain" else "extended"}
        if mode != "plain":
            assert all(r["seq"] is not None for r in records)
        if mode == "release":
            assert {r["release"] for r in records} == {kver}
        if mode == "configfs":
            assert all(r.get("userdata.guest") == "nctest-guest"
                       and r.get("userdata.role") == "kernel-tier" for r in records)
        # 5. one incident per kernel report, the right kind, in the collector's
        #    store and in `analyze` of the same capture; none for non-crashes
        assert [(r["type"], bool(r["panicked"])) for r in stored] == expected, \
            [(r["type"], r["title"], r["panicked"]) for r in stored]
        for r in stored:
            assert r["host"] == "127.0.0.1" and not r["corrupted"], r
            assert ("nctest" in r["title"]) or scenario == "sysrq-c", r["title"]
        analyzed = cli_json("analyze", run.pcap)
        assert [(i["type"], i["title"], i["signature"]) for i in analyzed] == \
            [(r["type"], r["title"], r["signature"]) for r in stored]
        row["incidents"] = [r["title"] for r in stored]
        row["result"] = "pass"
    except AssertionError:
        row["result"] = "FAIL"
        raise
    finally:
        kernel_report(row)
