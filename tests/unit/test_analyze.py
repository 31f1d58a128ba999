"""`analyze` and textinput on plain text: console logs, dmesg with and without
timestamps, /dev/kmsg dumps, kern.log lines and the drop-in's per-host files
(report texts from harness.samples).
"""

import gzip
import json
import os
import pathlib
import subprocess
import sys

import pytest

from harness.samples import BOOT_LINES, OOPS_LINES, PANIC_LINES, SYSRQ_LINES, WARN_LINES, dmesg
from harness.shared import shared_path

from syslogng_netconsole.cli import analyze as cmd_analyze
from syslogng_netconsole.ingest import textinput

REPO = pathlib.Path(__file__).resolve().parents[2]


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
    from syslogng_netconsole.ingest.capture import PcapWriter

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
    from syslogng_netconsole.ingest.capture import PcapWriter

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
    from syslogng_netconsole.incidents.store import Store

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
    from syslogng_netconsole.ingest.capture import PcapWriter

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
