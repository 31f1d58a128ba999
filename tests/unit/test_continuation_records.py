"""'c' records from real kernels: one line each in the log, one report in the detector.

Since ~4.9 a 'c' record is a KERN_CONT piece the kernel could not merge; its
console shows it as a line of its own, so the reassembler emits it as one. The
detector joins such a piece to the report line it continues, so a report reads
the same whether or not the kernel merged the piece (4.9-5.9 kernels with an
extended console merge nothing: every pr_cont of "Modules linked in:" is a 'c'
record). Inputs are the kernel tier's committed captures (tests/fixtures/).
"""

import dataclasses
import pathlib

import pytest

from syslogng_netconsole.ingest.capture import CaptureFeed, CaptureReader
from syslogng_netconsole.ingest.reassembly import Reassembler
from syslogng_netconsole.reports import Detector

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def records(name):
    path = FIXTURES / (name + ".pcap")
    if not path.exists():
        pytest.skip("%s is not in this checkout" % path)
    feed = CaptureFeed(Reassembler())
    with CaptureReader(str(path)) as reader:
        out = [r for r, _ in feed.packets(reader)]
    return out + [r for r, _ in feed.finish()]


def detect(recs, step=0.001):
    d = Detector()
    now = 0.0
    for r in recs:
        d.feed(r, now)
        d.expire(now)
        now += step
    d.flush(now)
    assert d.errors == 0
    return d.incidents()


def summary(incs):
    return [(i.type, i.title, i.panicked, i.modules, i.frames, i.pc, i.comm, i.truncated,
             i.corrupted) for i in incs]


def split_pieces(recs, starts, width=2):
    """Each record whose text starts with one of `starts` cut into a head and 'c'
    records of `width` words, as a 4.9-5.9 kernel with an extended console sends a
    pr_cont line (seq numbers renumbered so no gap appears)."""
    out, seq = [], 0
    for r in recs:
        pieces = [r.text]
        if r.text.startswith(starts):
            words = r.text.split(" ")
            head = 3 if r.text.startswith("Modules") else 1
            pieces = [" ".join(words[:head])]
            rest = words[head:]
            for i in range(0, len(rest), width):
                pieces.append(" " + " ".join(rest[i:i + width]))
        for i, text in enumerate(pieces):
            out.append(dataclasses.replace(r, text=text, seq=seq, flags="c" if i else r.flags,
                                           fields=dict(r.fields)))
            seq += 1
    return out


@pytest.mark.parametrize("name", ["kernel-6.1-extended-oops-panic",
                                  "kernel-6.12-configfs-oops", "kernel-6.12-release-warn"])
def test_report_split_into_c_records_gets_the_same_incident(name):
    recs = records(name)
    want = summary(detect(recs))
    assert len(want) == 1 and want[0][3], want          # one report, modules found
    split = split_pieces(recs, ("Modules linked in:", "CPU: ", "Call Trace:"))
    assert sum(1 for r in split if r.flags == "c") > 3
    assert summary(detect(split)) == want


def test_a_c_record_that_starts_a_report_is_not_glued_to_the_line_before():
    recs = records("kernel-6.1-extended-oops-panic")
    i = next(n for n, r in enumerate(recs) if r.text.startswith("BUG: kernel NULL pointer"))
    changed = recs[:i] + [dataclasses.replace(recs[i], flags="c")] + recs[i + 1:]
    assert summary(detect(changed)) == summary(detect(recs))


@pytest.mark.parametrize("name,at_least", [("kernel-6.1-extended-sysrq-t", 170),
                                           ("kernel-6.12-extended-sysrq-t", 160)])
def test_c_run_is_one_line_per_record_and_no_incident(name, at_least):
    recs = records(name)
    cont = [r for r in recs if r.flags == "c"]
    assert len(cont) >= at_least
    # each 'c' record is a line of its own, with its own timestamp
    assert all("\n" not in r.text and r.continued == 0 and r.ts_us is not None for r in cont)
    assert max(len(r.text) for r in recs) < 300
    assert detect(recs) == []


def test_multi_line_record_is_one_log_line_per_text_line():
    recs = records("kernel-6.1-extended-oops-panic")
    multi = next(r for r in recs if r.text.startswith("Unstable clock detected"))
    lines = multi.dmesg().split("\n")
    prefix = "[%5d.%06d] " % divmod(multi.ts_us, 1000000)
    assert len(lines) == multi.text.count("\n") + 1 >= 4
    assert all(x.startswith(prefix) for x in lines)
    assert [x[len(prefix):] for x in lines] == multi.text.split("\n")


def test_plus_era_pieces_are_joined_into_one_line_and_one_report():
    # hand-built from the 4.2-4.8 format: the real report, its "Modules linked in:"
    # line sent as 'c' (first piece) + '+' pieces, as those kernels' consoles joined
    recs = records("kernel-6.1-extended-oops-panic")
    start = next(n for n, r in enumerate(recs) if r.text.startswith("BUG: kernel NULL pointer"))
    datagrams, seq = [], 0
    for r in recs[start:]:
        pieces = [(r.flags, r.text)]
        if r.text.startswith("Modules linked in:"):
            words = r.text.split(" ")
            pieces = [("c", " ".join(words[:4]))] + [("+", " " + w) for w in words[4:]]
        for flag, text in pieces:
            datagrams.append(("%d,%d,%d,%s;%s\n" % (r.level, seq, r.ts_us, flag, text)).encode())
            seq += 1
    core = Reassembler()
    out = []
    for n, d in enumerate(datagrams):
        core.process(d, "10.0.0.9", 6665, 6666, n * 0.001)
        out += core.records()
    core.flush(10.0)
    out += core.records()
    mods = [r for r in out if r.text.startswith("Modules linked in:")]
    assert len(mods) == 1 and mods[0].text == next(
        r.text for r in recs if r.text.startswith("Modules linked in:"))
    assert mods[0].continued >= 5 and core.counters["cont_orphans"] == 0
    assert [r.text for r in out] == [r.text for r in recs[start:]]
    assert summary(detect(out)) == summary(detect(recs))


def test_prefix_buffers_stay_small_for_many_contexts():
    """An idle host keeps the last lines of each printk context (the prefix of a report
    that may start there): short lists, not ~600-byte deques (S2 of bench/storm.py)."""
    import sys
    from syslogng_netconsole.ingest.records import Record
    det = Detector()
    for i in range(40):
        for n in range(7):
            det.feed(Record(host="h", text="line %d of task %d" % (n, i), caller="T%d" % i,
                            ts_us=i * 1000 + n), 1.0)
    (st,) = det._streams.values()
    assert len(st.prefix) == 40
    assert all(b == ["line %d of task %d" % (n, i) for n in range(2, 7)]
               for i, b in ((int(k[1:]), v) for k, v in st.prefix.items()))
    assert max(sys.getsizeof(b) for b in st.prefix.values()) < 200
