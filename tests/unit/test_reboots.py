"""hosts/reboots.py: a new boot after one that did not end cleanly is an incident
(REBOOT); a clean shutdown, a kexec, a panic or a boot whose report was an incident is
not; the judgement waits for a late report's incident."""

from syslogng_netconsole.hosts.reboots import SIGNATURE, TYPE, BootWatch
from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.reports import kinds

SHUTDOWN = ["systemd-shutdown[1]: Syncing filesystems and block devices.",
            "systemd-shutdown[1]: Sending SIGTERM to remaining processes...",
            "reboot: Restarting system"]


def boot(w, host, boot_no, lines, t0, ts0=0):
    for i, text in enumerate(lines):
        w.observe(Record(host=host, text=text, format=EXTENDED, seq=i, ts_us=ts0 + 1000 * i,
                         boot=boot_no, release="6.12.3"), t0 + i)


def outcome(lines, note=None):
    w = BootWatch(grace=10.0)
    boot(w, "10.0.0.1", 0, ["Linux version 6.12.3", "eth0: link up"] + lines, 100.0)
    if note is not None:
        note(w)
    boot(w, "10.0.0.1", 1, ["Linux version 6.12.3"], 200.0)
    assert w.due(205.0) == []                      # within the grace
    return w.due(211.0)


def test_a_hard_reset_and_reboot_f_are_unexplained():
    (inc,) = outcome(["last words before the reset"])
    assert (inc.type, inc.signature, inc.boot, inc.release) == (TYPE, SIGNATURE, 0, "6.12.3")
    assert inc.title == "unexplained reboot after 98 s of silence"
    assert inc.text.endswith("[    0.002000] last words before the reset")
    assert kinds.severity(inc.type) == "warning"
    (forced,) = outcome(["reboot: Restarting system"])     # no shutdown sequence
    assert forced.first_line.endswith("reboot: Restarting system")


def test_clean_kexec_panic_and_reported_boots_are_not():
    assert outcome(SHUTDOWN) == []
    assert outcome(SHUTDOWN[:2]) == []     # as netconsole delivers it: no kernel last line
    assert outcome(SHUTDOWN[:2] + ["reboot: Power down"]) == []
    assert outcome(["reboot: Power down"]) == []           # poweroff -f: still deliberate
    assert outcome(["reboot: System halted"]) == []
    assert outcome(["kexec_core: Starting new kernel"]) == []
    assert outcome(["Kernel panic - not syncing: Fatal exception"]) == []
    report = Incident(host="10.0.0.1", type="WARNING", title="WARNING in f", signature="s",
                      text="x", boot=0)
    assert outcome(["WARNING: CPU: 0 PID: 1 at f"], lambda w: w.note_incident(report)) == []


def test_a_late_report_cancels_the_pending_reboot_and_hosts_are_apart():
    w = BootWatch(grace=10.0)
    boot(w, "10.0.0.2", 0, ["a", "b"], 0.0)
    boot(w, "10.0.0.3", 0, ["c"], 0.0)
    boot(w, "10.0.0.2", 1, ["Linux version"], 5.0)
    boot(w, "10.0.0.3", 1, ["Linux version"], 5.0)
    w.note_incident(Incident(host="10.0.0.2", type="BUG", title="t", signature="s", text="",
                             boot=0))
    assert [i.host for i in w.due(20.0)] == ["10.0.0.3"]
    assert w.counters["cancelled"] == 1 and w.counters["unexplained"] == 1
    assert w.next_due() is None


def test_a_new_boot_in_a_new_stream_is_seen_by_its_clock_going_back():
    """A host silent long enough for the core to forget its stream: the new boot's
    records come with boot 0 again, sequence numbers and kernel time far lower."""
    w = BootWatch(grace=0.0)
    boot(w, "10.0.0.4", 2, ["a"] * 3 + ["last words"], 0.0, ts0=100_000_000)
    w.observe(Record(host="10.0.0.4", text="late by 3 s", format=EXTENDED, seq=1,
                     ts_us=97_000_000, boot=2), 4.0)     # not far enough back: the same boot
    assert w.due(10.0) == []
    w.observe(Record(host="10.0.0.4", text="Linux version 6.12.3", format=EXTENDED, seq=0,
                     ts_us=0, boot=0), 3600.0)
    (inc,) = w.due(3600.0)
    assert inc.title == "unexplained reboot after 3596 s of silence" and inc.boot == 2


def test_pending_reboots_are_saved_and_restored_with_their_grace():
    import json
    w = BootWatch(grace=10.0)
    boot(w, "10.0.0.1", 0, ["Linux version 6.12.3", "last words"], 100.0)
    boot(w, "10.0.0.1", 1, ["Linux version 6.12.3"], 200.0)
    assert w.changed
    docs = json.loads(json.dumps(w.pending_docs()))       # what the file holds
    assert not w.changed and [d["due"] for d in docs] == [210.0]
    again = BootWatch(grace=10.0)                          # the next start
    junk = [{"due": "x"}, {"incident": {}}, 7, {"due": 1.0, "incident": {"type": "BUG"}}]
    assert again.restore(junk + docs + docs) == 1          # malformed and twice: skipped
    assert again.restore("not a list") == 0
    assert again.due(205.0) == [] and again.next_due() == 210.0
    (inc,) = again.due(210.5)
    assert inc.type == TYPE and inc.id == w.due(211.0)[0].id
    assert inc.text.endswith("last words")
