"""The netconsole() source inside a real syslog-ng 3.38: per-host files and name-value
pairs for several senders, plain and extended, fragments, cut lines, and timer-driven
output of a host that goes silent mid-record."""

import random
import time

import pytest

from harness.sng import wait_for
from harness.ncdata import dmesg_prefix, ext, ext_fragments, plain

pytestmark = pytest.mark.syslogng


def pairs_of(sng, host):
    return [p for p in sng.pairs() if p.get("HOST") == host]


def test_extended_records_become_messages_with_pairs(shared_sng):
    s = shared_sng
    tx = s.sender("127.0.0.2")
    tx.send(ext(10, "usb 1-1: new high-speed USB device", level=6, header_extra=",caller=T42",
                lines=["SUBSYSTEM=usb", "DEVICE=c189:1"]))
    tx.send(ext(11, "Oops: general protection fault \\ tab\there", level=3,
                lines=["SUBSYSTEM=net", "DEVICE=n2", "role=db", "cpu=3", "taskname=kworker/0:1"]))
    tx.send(ext(13, "after a gap", level=4))  # seq 12 never sent: one record lost
    pairs = wait_for(lambda: len(pairs_of(s, "127.0.0.2")) >= 3 and pairs_of(s, "127.0.0.2"), 10)
    assert len(pairs) == 3
    a, b, c = pairs
    assert a["MESSAGE"] == "usb 1-1: new high-speed USB device"
    assert (a["FACILITY"], a["PRIORITY"]) == ("kern", "info")
    assert a[".netconsole.format"] == "extended"
    assert a[".netconsole.seq"] == "10"
    assert a[".netconsole.ts_us"] == "1010000"
    assert a[".netconsole.caller"] == "T42"
    assert a[".netconsole.subsystem"] == "usb"
    assert a[".netconsole.device"] == "c189:1"
    assert a[".netconsole.src_port"] == str(tx.port)
    assert a[".netconsole.incomplete"] == "0"
    assert a[".netconsole.dmesg"] == dmesg_prefix(1010000) + a["MESSAGE"]
    # escapes undone, level 3 = kern.err, userdata and sysdata fields
    assert b["MESSAGE"] == "Oops: general protection fault \\ tab\there"
    assert (b["FACILITY"], b["PRIORITY"]) == ("kern", "err")
    assert b[".netconsole.userdata.role"] == "db"
    assert b[".netconsole.cpu"] == "3"
    assert b[".netconsole.taskname"] == "kworker/0:1"
    assert c[".netconsole.lost_before"] == "1"
    assert c["PRIORITY"] == "warning"
    for p in pairs:
        assert p["HOST"] == "127.0.0.2"
    lines = wait_for(lambda: len(s.log_lines("127.0.0.2")) >= 3 and s.log_lines("127.0.0.2"), 5)
    assert lines == [
        "[    1.010000] usb 1-1: new high-speed USB device",
        "[    1.011000] Oops: general protection fault \\ tab\there",
        "[    1.013000] after a gap",
    ]
    # nothing of this host leaked into another host's file
    assert "usb 1-1" not in s.read_log("127.0.0.3")


def test_plain_lines_cut_and_multiline(shared_sng):
    s = shared_sng
    tx = s.sender("127.0.0.3")
    tx.send(plain(1000000, "first plain line"))
    tx.send(b"<4>" + plain(2000000, "with a level prefix"))
    # a 1200-byte line arrives cut at 1000 bytes: the first piece has no newline
    long_line = plain(3000000, "L" * 1170)
    assert len(long_line) > 1000
    tx.send(long_line[:1000])
    tx.send(long_line[1000:])
    tx.send(plain(4000000, "two lines") + plain(4000001, "in one datagram"))
    want = [
        "[    1.000000] first plain line",
        "[    2.000000] with a level prefix",
        "[    3.000000] " + "L" * 1170,
        "[    4.000000] two lines",
        "[    4.000001] in one datagram",
    ]
    lines = wait_for(lambda: len(s.log_lines("127.0.0.3")) >= len(want) and s.log_lines("127.0.0.3"), 10)
    assert lines == want
    pairs = wait_for(lambda: len(pairs_of(s, "127.0.0.3")) >= 5 and pairs_of(s, "127.0.0.3"), 5)
    assert [p[".netconsole.format"] for p in pairs] == ["plain"] * 5
    assert pairs[1]["PRIORITY"] == "warning"
    assert pairs[2][".netconsole.fragments"] == "2"
    assert pairs[2][".netconsole.incomplete"] == "0"


def test_fragments_in_any_order_with_duplicates(shared_sng):
    s = shared_sng
    tx = s.sender("127.0.0.4")
    text = "".join(random.Random(4).choice("abcdefghij ") for _ in range(2500))
    frags = ext_fragments(77, text, level=2, lines=["host=web01"])
    assert len(frags) == 3
    mixed = frags + [frags[1]]
    random.Random(7).shuffle(mixed)
    tx.send_all(mixed)
    pairs = wait_for(lambda: pairs_of(s, "127.0.0.4"), 10)
    time.sleep(0.3)  # a duplicate record would arrive right behind
    pairs = pairs_of(s, "127.0.0.4")
    assert len(pairs) == 1
    p = pairs[0]
    assert p["MESSAGE"] == text
    assert p[".netconsole.fragments"] == "3"
    assert p[".netconsole.incomplete"] == "0"
    assert p[".netconsole.userdata.host"] == "web01"
    assert p["PRIORITY"] == "crit"
    assert s.log_lines("127.0.0.4") == [dmesg_prefix(1077000) + text]


def test_silent_host_mid_fragment_comes_out_flagged_incomplete(shared_sng):
    """A host that dies between two fragments: its piece comes out after the fragment
    timeout (1 s) with no further traffic from anyone, flagged incomplete."""
    s = shared_sng
    tx = s.sender("127.0.0.5")
    tx.send(ext(1, "last words before the crash", level=0))
    frags = ext_fragments(2, "Kernel panic - not syncing: " + "P" * 2400, level=0)
    assert len(frags) == 3
    t0 = time.monotonic()
    sent_at = time.time()
    tx.send(frags[0])
    tx.send(frags[1])
    # nothing else is sent to the collector from here on
    lines = wait_for(lambda: len(s.log_lines("127.0.0.5")) >= 2 and s.log_lines("127.0.0.5"), 8)
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0, elapsed  # 1 s timeout + slack for a busy machine
    assert lines[0] == "[    1.001000] last words before the crash"
    assert lines[1].startswith("[    1.002000] Kernel panic - not syncing: PPP")
    assert lines[1].endswith(" [incomplete]")
    p = pairs_of(s, "127.0.0.5")[1]
    assert p[".netconsole.incomplete"] == "1"
    assert p["PRIORITY"] == "emerg"
    assert p["MESSAGE"].startswith("Kernel panic - not syncing: PPP")
    # stamped when its first piece arrived, not when the timeout let it out
    assert abs(float(p["UNIXTIME"]) - sent_at) < 0.8, (p["UNIXTIME"], sent_at)


def test_silent_host_with_a_cut_plain_line(shared_sng):
    s = shared_sng
    tx = s.sender("127.0.0.6")
    t0 = time.monotonic()
    tx.send(plain(9000000, "BUG: soft lockup " + "Q" * 1200)[:1000])  # the rest never comes
    line = wait_for(lambda: s.log_lines("127.0.0.6"), 8)[0]
    assert time.monotonic() - t0 < 5.0
    assert line.startswith("[    9.000000] BUG: soft lockup QQQ")
    assert line.endswith(" [incomplete]")
    assert pairs_of(s, "127.0.0.6")[0][".netconsole.incomplete"] == "1"


def test_counters_file(shared_sng):
    s = shared_sng
    s.send(ext(1, "counted"), src="127.0.0.9")
    c = wait_for(lambda: s.counter("source.posted") and s.stats()["counters"], 5)
    assert c["source.datagrams"] >= 1
    assert c["core.datagrams"] == c["source.datagrams"]
    assert c.get("source.kernel_drops", 0) == 0
