"""`analyze` and textinput on plain text: console logs, dmesg with and without
timestamps, /dev/kmsg dumps, kern.log lines and the drop-in's per-host files.

The report texts below follow real Debian 6.1 x86_64 output (QEMU, a test module
doing a NULL dereference / WARN), and are reused by tests/integration/test_incidents.py.
"""

import gzip
import json
import os
import pathlib
import subprocess
import sys

import pytest

from harness.shared import shared_path

from syslogng_netconsole import cmd_analyze, textinput

REPO = pathlib.Path(__file__).resolve().parents[2]


OOPS_LINES = """\
BUG: kernel NULL pointer dereference, address: 0000000000000000
#PF: supervisor write access in kernel mode
#PF: error_code(0x0002) - not-present page
PGD 0 P4D 0 
Oops: 0002 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 95 Comm: insmod Tainted: G           OE      6.1.0-27-amd64 #1  Debian 6.1.115-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:nctest_init+0x15/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
RDX: 0000000000000000 RSI: ffffffffa1f3a1e0 RDI: 0000000000000000
RBP: ffffffffc0357000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: ffff8f5a41c0e0c0
R13: 0000000000000000 R14: ffffb5c9c03c7e88 R15: 0000000000000000
FS:  00007f2f8b2ec740(0000) GS:ffff8f5a7ed00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 0000000000000000 CR3: 0000000001a2e000 CR4: 00000000000006e0
Call Trace:
 <TASK>
 ? __die_body.cold+0x1a/0x1f
 ? page_fault_oops+0xd2/0x2b0
 ? exc_page_fault+0x70/0x170
 ? asm_exc_page_fault+0x22/0x30
 ? nctest_init+0x15/0x1000 [nctest]
 do_one_initcall+0x56/0x220
 do_init_module+0x4a/0x1f0
 __do_sys_finit_module+0xac/0x120
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
RIP: 0033:0x7f2f8b40e5a9
Code: 08 89 e8 5b 5d c3 66 2e 0f 1f 84 00 00 00 00 00 90 48 89 f8 48 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 <48> 3d 01 f0 ff ff 73 01 c3 48 8b 0d 37 08 0d 00 f7 d8 64 89 01 48
RSP: 002b:00007ffd2d7b0f78 EFLAGS: 00000246 ORIG_RAX: 0000000000000139
RAX: ffffffffffffffda RBX: 0000000000000000 RCX: 00007f2f8b40e5a9
RDX: 0000000000000000 RSI: 0000000000c7e2a0 RDI: 0000000000000003
RBP: 0000000000000000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000003 R11: 0000000000000246 R12: 0000000000c7e2a0
R13: 0000000000000000 R14: 0000000000000000 R15: 0000000000000000
 </TASK>
Modules linked in: nctest(OE+) netconsole virtio_net net_failover failover
CR2: 0000000000000000
---[ end trace 0000000000000000 ]---
RIP: 0010:nctest_init+0x15/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
RDX: 0000000000000000 RSI: ffffffffa1f3a1e0 RDI: 0000000000000000
RBP: ffffffffc0357000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: ffff8f5a41c0e0c0
R13: 0000000000000000 R14: ffffb5c9c03c7e88 R15: 0000000000000000
FS:  00007f2f8b2ec740(0000) GS:ffff8f5a7ed00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 0000000000000000 CR3: 0000000001a2e000 CR4: 00000000000006e0
""".splitlines()

PANIC_LINES = """\
Kernel panic - not syncing: Fatal exception
Kernel Offset: 0x1f000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
Rebooting in 2 seconds..""".splitlines()

WARN_LINES = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 97 at /tmp/nctest/nctest.c:41 nctest_init+0x2a/0x1000 [nctest]
Modules linked in: nctest(OE+) netconsole virtio_net net_failover failover
CPU: 0 PID: 97 Comm: insmod Tainted: G           OE      6.1.0-27-amd64 #1  Debian 6.1.115-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:nctest_init+0x2a/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
Call Trace:
 <TASK>
 ? __warn+0x7d/0xc0
 ? nctest_init+0x2a/0x1000 [nctest]
 ? report_bug+0xe2/0x150
 ? handle_bug+0x41/0x70
 ? exc_invalid_op+0x13/0x60
 ? asm_exc_invalid_op+0x16/0x20
 do_one_initcall+0x56/0x220
 do_init_module+0x4a/0x1f0
 __do_sys_finit_module+0xac/0x120
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
---[ end trace 0000000000000000 ]---""".splitlines()

# sysrq-t: stack dumps of every task; not a crash
SYSRQ_LINES = """\
sysrq: Show State
task:systemd         state:S stack:0     pid:1     ppid:0      flags:0x00000002
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 schedule_hrtimeout_range_clock+0x9f/0x110
 do_epoll_wait+0x4bc/0x620
 __x64_sys_epoll_wait+0x6f/0x110
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
task:kthreadd        state:S stack:0     pid:2     ppid:0      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 kthreadd+0x1e3/0x210
 ret_from_fork+0x22/0x30
 </TASK>
Sched Debug Version: v0.11, 6.1.0-27-amd64 #1
ktime                                   : 100123.456789
sysrq: Show Blocked State
task:jbd2/vda-8      state:D stack:0     pid:150   ppid:2      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 io_schedule+0x42/0x70
 bit_wait_io+0xd/0x60
 __wait_on_bit+0x42/0x110
 out_of_line_wait_on_bit+0x8c/0xb0
 jbd2_journal_commit_transaction+0x163e/0x1a40 [jbd2]
 kjournald2+0xab/0x270 [jbd2]
 kthread+0xda/0x100
 ret_from_fork+0x22/0x30
 </TASK>""".splitlines()

BOOT_LINES = """\
Linux version 6.1.0-27-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)
Command line: console=ttyS0,115200 loglevel=7 panic=2
x86/fpu: x87 FPU will use FXSAVE
signal: max sigframe size: 1440
BIOS-provided physical RAM map:
netpoll: netconsole: local port 6665
netconsole: network logging started""".splitlines()


def dmesg(lines, start_us=12_345_678, step_us=97, caller=None):
    """Lines with dmesg `[sec.usec]` prefixes (and an optional [Tnn] caller tag)."""
    out = []
    for i, line in enumerate(lines):
        sec, usec = divmod(start_us + i * step_us, 1_000_000)
        tag = "[%6s] " % caller if caller else ""
        out.append("[%5d.%06d] %s%s" % (sec, usec, tag, line))
    return out


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def analyze(path, host=None):
    errors = []
    found = cmd_analyze.analyze_path(str(path), host, errors)
    assert errors == []
    return found


def test_oops_with_panic_is_one_panicked_incident(tmp_path):
    p = write(tmp_path / "10.0.0.5.log", dmesg(BOOT_LINES + OOPS_LINES + PANIC_LINES))
    [inc] = analyze(p)
    assert inc.host == "10.0.0.5"
    assert inc.panicked is True
    assert "nctest_init" in inc.title and "NULL pointer dereference" in inc.title
    assert inc.first_line.startswith("BUG: kernel NULL pointer dereference")
    assert "Call Trace:" in inc.text and "Linux version" not in inc.text
    assert inc.first_ts_us == 12_345_678 + len(BOOT_LINES) * 97


def test_warning_then_oops_are_two_incidents(tmp_path):
    lines = dmesg(WARN_LINES) + dmesg(OOPS_LINES, start_us=20_000_000)
    found = analyze(write(tmp_path / "h.log", lines))
    assert len(found) == 2
    warn, oops = found
    assert warn.title.startswith("WARNING") and "nctest_init" in warn.title
    assert not warn.panicked
    assert "NULL pointer dereference" in oops.title
    assert warn.signature != oops.signature


def test_sysrq_dumps_and_boot_log_are_not_incidents(tmp_path):
    assert analyze(write(tmp_path / "h.log", dmesg(BOOT_LINES + SYSRQ_LINES))) == []


@pytest.mark.parametrize("shape", ["dmesg", "caller", "bare", "kmsg", "kernlog", "perhost"])
def test_text_shapes_give_the_same_incident(tmp_path, shape):
    lines = OOPS_LINES + PANIC_LINES
    if shape == "dmesg":
        text = dmesg(lines)
    elif shape == "caller":
        text = dmesg(lines, caller="T95")
    elif shape == "bare":
        text = lines
    elif shape == "kmsg":
        text = []
        for i, line in enumerate(lines):
            text.append("%d,%d,%d,-,caller=T95;%s" % (0 if i < 30 else 4, 700 + i, 12_345_678 + i, line))
            if i == 3:
                text.append(" SUBSYSTEM=pci")    # dictionary line, skipped
    elif shape == "kernlog":
        text = ["Nov 27 12:00:01 web7 kernel: " + line for line in dmesg(lines)]
    else:       # the drop-in's per-host file: dmesg lines, a record missing a piece marked
        text = dmesg(lines)
        text[3] += " [incomplete]"
    [inc] = analyze(write(tmp_path / "web7.log", text))
    assert "NULL pointer dereference" in inc.title and "nctest_init" in inc.title
    assert inc.panicked
    assert inc.host == "web7"


def test_signature_stable_across_hosts_times_and_addresses(tmp_path):
    a = analyze(write(tmp_path / "a.log", dmesg(OOPS_LINES)))[0]
    other = [l.replace("ffffb5c9c03c7c48", "ffffa00000001234").replace("PID: 95", "PID: 4242")
             for l in OOPS_LINES]
    b = analyze(write(tmp_path / "b.log", dmesg(other, start_us=99_000_000)))[0]
    assert a.host != b.host and a.id != b.id
    assert a.signature == b.signature and a.title == b.title


def test_gzip_and_host_override(tmp_path):
    p = tmp_path / "console.txt.gz"
    p.write_bytes(gzip.compress(("\n".join(dmesg(OOPS_LINES)) + "\n").encode()))
    [inc] = analyze(p, host="db3")
    assert inc.host == "db3"
    assert textinput.host_from_path(str(p)) == "console"


def test_garbage_input_gives_nothing_and_does_not_raise(tmp_path):
    p = tmp_path / "junk.bin"
    p.write_bytes(bytes(range(256)) * 50 + b"\n\x00\xff[ 1.0] BUG:\n" + b"\xc3(" * 100)
    found = analyze(p)
    assert all(isinstance(i.title, str) for i in found)


def test_records_from_lines_times_rise_across_reboot():
    lines = dmesg(["a", "b"], start_us=50_000_000) + dmesg(["Linux version 6.1", "c"], start_us=0)
    recs = list(textinput.records_from_lines(lines, "h"))
    times = [r.recv_time for r in recs]
    assert times == sorted(times) and times[2] > times[1]
    assert [r.ts_us for r in recs] == [50_000_000, 50_000_097, 0, 97]
    assert [r.text for r in recs] == ["a", "b", "Linux version 6.1", "c"]


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "syslogng_netconsole", "analyze"] + list(args),
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60)


def test_cli_json_fields(tmp_path):
    p1 = write(tmp_path / "10.0.0.7.log", dmesg(OOPS_LINES + PANIC_LINES))
    p2 = write(tmp_path / "quiet.log", dmesg(BOOT_LINES))
    r = cli("--json", p1, p2)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(objs) == 1
    o = objs[0]
    for key in ("input", "host", "type", "title", "alt_titles", "signature", "corrupted",
                "panicked", "release", "first_line"):
        assert key in o
    assert o["input"] == p1 and o["host"] == "10.0.0.7" and o["panicked"] is True
    assert isinstance(o["alt_titles"], list)


def test_cli_summary_and_missing_file(tmp_path):
    p = write(tmp_path / "h1.log", dmesg(WARN_LINES))
    r = cli(p, str(tmp_path / "nope.log"))
    assert r.returncode == 1
    assert "cannot read" in r.stderr
    assert "h1: WARNING" in r.stdout and "1 incident(s) in 2 input(s)" in r.stdout


def test_cli_sanitizes_control_characters(tmp_path):
    lines = list(WARN_LINES)
    lines[1] = lines[1].replace("nctest_init", "nctest_init\x1b[2J\x07")
    r = cli(write(tmp_path / "h.log", dmesg(lines)))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout


def _corpus_case(path):
    raw = path.read_bytes().replace(b"\r", b"").decode("utf-8", "backslashreplace")
    head, _, log = raw.partition("\n\n")
    log = log.split("\n\nREPORT:\n")[0]
    title = ""
    for line in head.splitlines():
        if line.startswith("TITLE:"):
            title = line[6:].strip()
    return title, log


def test_corpus_sample_through_analyze(tmp_path):
    """Text input must not lose what the detector finds in a whole corpus log:
    detection on a sample of crash logs, nothing on the no-crash ones."""
    corpus = shared_path("corpus", "syzkaller-linux-report")
    files = sorted((p for p in corpus.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    crash, clean = [], []
    for p in files:
        title, log = _corpus_case(p)
        (crash if title else clean).append((p, log))
    sample = crash[::12] + clean
    missed, false = [], []
    for p, log in sample:
        f = tmp_path / ("c%s.log" % p.name)
        f.write_text(log)
        found = analyze(f)
        if p in dict(crash) and not found:
            missed.append(p.name)
        if p in dict(clean) and found:
            false.append(p.name)
    assert len(crash[::12]) > 40 and len(clean) > 10
    assert false == []
    assert len(missed) <= 1, missed


def test_pcap_input_two_hosts_interleaved(tmp_path):
    """A capture (as tcpdump writes it) goes through the collector's core: plain and
    extended senders interleaved, each gets its own incident; a sysrq host none."""
    from syslogng_netconsole.pcap import PcapWriter

    a = [(l + "\n").encode() for l in dmesg(OOPS_LINES + PANIC_LINES)]
    b = [("4,%d,%d,-;%s\n" % (50 + i, 9_000_000 + i, l)).encode() for i, l in enumerate(WARN_LINES)]
    c = [(l + "\n").encode() for l in dmesg(SYSRQ_LINES)]
    path = tmp_path / "fleet.pcap"
    with PcapWriter(str(path)) as w:
        t = 1_700_000_000.0
        for k in range(max(len(a), len(b), len(c))):
            for src, seq in (("10.0.0.1", a), ("10.0.0.2", b), ("10.0.0.3", c)):
                if k < len(seq):
                    t += 0.0005
                    w.write(t, src, 6665, "10.0.0.99", 6666, seq[k])
    found = analyze(path)
    assert sorted((i.host, i.type) for i in found) == [
        ("10.0.0.1", "NULL-POINTER-DEREFERENCE"), ("10.0.0.2", "WARNING")]
    by_host = {i.host: i for i in found}
    assert by_host["10.0.0.1"].panicked and "nctest_init" in by_host["10.0.0.1"].title
    assert by_host["10.0.0.2"].first_seq == 51 and by_host["10.0.0.2"].title == "WARNING in nctest_init"
    r = cli("--json", str(path))
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(l)["host"] for l in r.stdout.splitlines()) == ["10.0.0.1", "10.0.0.2"]


def test_pcap_capture_time_drives_report_timeouts(tmp_path):
    """A report cut off by silence (no end marker) is closed by the quiet timeout at
    capture time, so the same host's next report 30 s later is a second incident."""
    from syslogng_netconsole.pcap import PcapWriter

    first = [(l + "\n").encode() for l in dmesg(WARN_LINES[:12])]        # no end trace
    second = [(l + "\n").encode() for l in dmesg(OOPS_LINES + PANIC_LINES, start_us=40_000_000)]
    path = tmp_path / "gap.pcap"
    with PcapWriter(str(path)) as w:
        for i, p in enumerate(first):
            w.write(1000.0 + i * 0.001, "10.0.0.9", 6665, "10.0.0.99", 6666, p)
        for i, p in enumerate(second):
            w.write(1030.0 + i * 0.001, "10.0.0.9", 6665, "10.0.0.99", 6666, p)
    found = analyze(path)
    assert [i.type for i in found] == ["WARNING", "NULL-POINTER-DEREFERENCE"]
    assert "Kernel panic" not in found[0].text


def test_cli_incidents_lists_the_store(tmp_path):
    """`incidents` reads what the destination stored (here: the store filled directly)."""
    from syslogng_netconsole.store import Store

    state = tmp_path / "state"
    r = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "incidents",
                        "--state-dir", str(state)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 1 and "no incident store" in r.stderr
    store = Store(str(state))
    found = analyze(write(tmp_path / "10.0.0.5.log", dmesg(OOPS_LINES + PANIC_LINES)))
    found += analyze(write(tmp_path / "10.0.0.6.log", dmesg(OOPS_LINES)))
    found += analyze(write(tmp_path / "10.0.0.7.log", dmesg(WARN_LINES)))
    import time
    now = time.time()
    for n, inc in enumerate(found):
        assert store.add(inc, now - 7200 + n if n < 2 else now)     # two stored 2 h ago

    def run(*extra):
        r = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "incidents",
                            "--state-dir", str(state)] + list(extra), capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    lines = run()
    assert len(lines) == 3 and "10.0.0.7" in lines[0] and "WARNING in nctest_init" in lines[0]
    assert "[panicked]" in lines[2]
    objs = [json.loads(l) for l in run("--json", "--host", "10.0.0.6")]
    assert [o["host"] for o in objs] == ["10.0.0.6"] and objs[0]["text"].startswith("BUG:")
    sigs = run("--by-signature")
    assert len(sigs) == 2 and " 2 incident(s)    2 host(s)" in " ".join(sigs)
    recent = run("--since", "1h")
    assert len(recent) == 1 and "10.0.0.7" in recent[0]


def test_random_text_never_raises():
    """Any text (timestamps going back and forth, kmsg-looking lines, control
    characters) goes through textinput and the detector without an exception."""
    from hypothesis import given, settings, strategies as st

    line = st.one_of(
        st.text(max_size=200),
        st.builds(lambda t, s: "[%12.6f] %s" % (t, s), st.floats(0, 1e6), st.text(max_size=80)),
        st.builds(lambda a, b, s: "%d,%d,%d,-;%s" % (a, a, b, s), st.integers(0, 10 ** 20),
                  st.integers(0, 10 ** 12), st.text(max_size=80)),
        st.sampled_from(OOPS_LINES + WARN_LINES + PANIC_LINES + SYSRQ_LINES + [" SUBSYSTEM=x"]),
    )

    @settings(max_examples=150, deadline=None)
    @given(st.lists(line, max_size=60))
    def check(lines):
        recs = list(textinput.records_from_lines(lines, "h"))
        assert len(recs) <= len(lines)
        times = [r.recv_time for r in recs]
        assert times == sorted(times)                 # the clock never runs back
        for inc in cmd_analyze.analyze_records((r, r.recv_time) for r in recs):
            assert inc.host == "h"

    check()


def test_pcap_plain_and_extended_targets_of_one_host_one_incident(tmp_path):
    """Like the store: a host's plain and extended copies of a report are one incident."""
    from syslogng_netconsole.pcap import PcapWriter

    a = [(l + "\n").encode() for l in dmesg(OOPS_LINES + PANIC_LINES)]
    b = [("4,%d,%d,-;%s\n" % (50 + i, 12_345_678 + i * 97, l)).encode()
         for i, l in enumerate(OOPS_LINES + PANIC_LINES)]
    path = tmp_path / "two-targets.pcap"
    with PcapWriter(str(path)) as w:
        for k, (p, e) in enumerate(zip(a, b)):
            w.write(100.0 + k * 0.001, "10.0.0.1", 6665, "10.0.0.99", 6666, p)
            w.write(100.0 + k * 0.001, "10.0.0.1", 6664, "10.0.0.99", 6666, e)
    [inc] = analyze(path)
    assert "nctest_init" in inc.title
