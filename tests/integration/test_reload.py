"""`syslog-ng-ctl reload` while datagrams flow: the socket and per-host state survive,
nothing is lost or duplicated, and no thread is left behind per reload."""

import os
import threading
import time

import pytest

from harness.sng import wait_for
from harness.ncdata import dmesg_prefix, ext, ext_fragments

pytestmark = pytest.mark.syslogng

MIN_RECORDS = 2000
N_RELOADS = 5


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def fds(pid):
    """Sockets and pipes: what the source opens (other destinations' files come and go)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(("socket:", "pipe:"))
        except OSError:
            pass
    return n


def test_reload_during_traffic_loses_nothing(start_sng):
    s = start_sng()
    tx = s.sender("127.0.0.21")
    tx.send(ext(1, "record 00001"))
    wait_for(lambda: s.read_log("127.0.0.21"), 5)  # its file is open from here on
    threads_before = threads(s.pid)
    fds_before = fds(s.pid)
    stop = threading.Event()
    sent = [1]

    def send():
        # ~1000 records/s until told to stop (and at least MIN_RECORDS)
        seq = 1
        while seq < MIN_RECORDS or not stop.is_set():
            seq += 1
            tx.send(ext(seq, "record %05d" % seq))
            sent[0] = seq
            if seq % 10 == 0:
                time.sleep(0.01)
            if seq >= 60000:
                break

    t = threading.Thread(target=send)
    t.start()
    try:
        for reloads in range(1, N_RELOADS + 1):
            time.sleep(0.2)
            s.reload()  # while datagrams keep coming
    finally:
        stop.set()
        t.join(60)
    n = sent[0]
    assert not t.is_alive() and n >= MIN_RECORDS

    want = [dmesg_prefix(1000000 + seq * 1000) + "record %05d" % seq for seq in range(1, n + 1)]
    wait_for(lambda: len(s.log_lines("127.0.0.21")) >= n, 20,
             message="only %d of %d records arrived" % (len(s.log_lines("127.0.0.21")), n))
    time.sleep(1.5)  # anything duplicated would show up behind
    lines = s.log_lines("127.0.0.21")
    assert lines == want  # all of them, once each, in order
    c = wait_for(lambda: s.counter("source.reloads") == reloads and s.stats()["counters"], 5)
    assert c["core.lost"] == 0
    assert c["core.duplicates"] == 0
    assert c.get("source.kernel_drops", 0) == 0
    assert threads(s.pid) == threads_before, "threads leaked across %d reloads" % reloads
    assert fds(s.pid) == fds_before, "sockets/pipes leaked across %d reloads" % reloads
    assert s.alive()


def test_reload_between_two_fragments_keeps_the_record(start_sng):
    s = start_sng()
    tx = s.sender("127.0.0.22")
    frags = ext_fragments(40, "F" * 1800, level=1)
    assert len(frags) == 2
    tx.send(frags[0])
    s.reload()
    tx.send(frags[1])
    lines = wait_for(lambda: s.log_lines("127.0.0.22"), 5)
    assert lines == [dmesg_prefix(1040000) + "F" * 1800]


def test_reload_with_a_changed_config_keeps_state(start_sng):
    """A reload that changes the config (a new log path) still takes the socket over."""
    s = start_sng(capture_pairs=False)
    tx = s.sender("127.0.0.23")
    tx.send(ext(1, "before"))
    wait_for(lambda: s.read_log("127.0.0.23"), 5)
    s.capture_pairs = True
    s.write_config()
    s.reload()
    tx.send(ext(2, "after"))
    pairs = wait_for(lambda: s.pairs(), 5)
    assert pairs[0]["MESSAGE"] == "after"
    lines = wait_for(lambda: len(s.log_lines("127.0.0.23")) >= 2 and s.log_lines("127.0.0.23"), 5)
    assert lines == [dmesg_prefix(1001000) + "before", dmesg_prefix(1002000) + "after"]
    assert "cannot listen" not in s.stderr_text()


def test_reload_with_changed_addresses_keeps_port_and_state(start_sng):
    """Adding a listen address on reload: the running socket and the host's unfinished
    record are taken over (no close/reopen of the port), the new address is bound."""
    s = start_sng()
    tx = s.sender("127.0.0.24")
    frags = ext_fragments(50, "A" * 1700)
    tx.send(frags[0])
    s.defines["netconsole_ip"] = "127.0.0.1,127.0.0.25"
    s.write_config()
    s.reload()
    tx.send(frags[1])
    lines = wait_for(lambda: s.log_lines("127.0.0.24"), 5)
    assert lines == [dmesg_prefix(1050000) + "A" * 1700]
    wait_for(lambda: "listening on 127.0.0.25 port %d" % s.port in s.stderr_text(), 5)
    from harness.sng import Sender
    with Sender("127.0.0.26", s.port, dst="127.0.0.25") as tx2:
        tx2.send(ext(1, "to the new address"))
        wait_for(lambda: s.read_log("127.0.0.26"), 5)
    assert "cannot listen" not in s.stderr_text()


def test_unfinished_record_survives_a_restart(start_sng, tmp_path):
    """Stopping syslog-ng while a host's record waits for a fragment: the piece is saved
    in the state dir and comes out, flagged incomplete, when syslog-ng starts again."""
    s = start_sng("first")
    tx = s.sender("127.0.0.27")
    tx.send(ext(1, "complete one"))
    frags = ext_fragments(2, "Kernel panic: " + "K" * 1500, level=0)
    tx.send(frags[0])
    time.sleep(0.2)  # read by now, and well inside the 1 s fragment timeout
    assert s.stop() == 0
    assert "saved to" in s.stderr_text()
    # a complete record is never held: it was written before the stop
    assert s.log_lines("127.0.0.27") == [dmesg_prefix(1001000) + "complete one"]
    s2 = start_sng("first", port=s.port)  # same directory: same state dir
    lines = wait_for(lambda: len(s2.log_lines("127.0.0.27")) >= 2 and s2.log_lines("127.0.0.27"), 5)
    assert lines[0] == dmesg_prefix(1001000) + "complete one"
    assert lines[1].startswith(dmesg_prefix(1002000) + "Kernel panic: KKK")
    assert lines[1].endswith(" [incomplete]")
    assert s2.counter("source.restored") == 1
    assert not list(s2.statedir.glob("*.pending.jsonl"))


def test_reload_with_a_bad_option_keeps_running_on_3_38(start_sng):
    """syslog-ng 3.38 aborts (SIGABRT) when a reload's init() fails. A bad option at
    reload therefore keeps the source on its previous settings, with an error naming
    the option, instead of killing the collector; fixing the config and reloading
    again takes the new settings."""
    s = start_sng()
    tx = s.sender("127.0.0.28")
    frags = ext_fragments(60, "S" * 1500)
    tx.send(frags[0])
    s.defines["netconsole_port"] = "66x"
    s.write_config()
    s.reload()  # raises if syslog-ng died
    assert "invalid value '66x' for option 'port'" in s.stderr_text()
    assert "keeping the previous settings of the source on port %d" % s.port in s.stderr_text()
    tx.send(frags[1])  # the old port, the old state
    lines = wait_for(lambda: s.log_lines("127.0.0.28"), 5)
    assert lines == [dmesg_prefix(1060000) + "S" * 1500]
    s.defines["netconsole_port"] = str(s.port)
    s.write_config()
    s.reload()
    tx.send(ext(61, "after the fix"))
    wait_for(lambda: len(s.log_lines("127.0.0.28")) == 2, 5)
    assert s.alive()
