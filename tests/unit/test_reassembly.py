"""reassembly.py: per-stream state machine, table-driven scenarios (spec section 10)."""

import pytest

from syslogng_netconsole.ingest.reassembly import ReassemblyLimits, Reassembler
from syslogng_netconsole.ingest.records import EXTENDED, PLAIN

H = "10.0.0.5"


def run(datagrams, limits=None, end=None, host=H, dst=6666):
    """Feed (t, payload) pairs (or payloads, 1 ms apart), expire by the deadlines
    the core announces, flush at `end` (None: no flush). Returns (records, core)."""
    r = Reassembler(limits or ReassemblyLimits())
    out = []
    t = 0.0
    for i, d in enumerate(datagrams):
        if isinstance(d, tuple):
            t, d = d
        else:
            t = i * 0.001
        dl = r.next_deadline()
        while dl is not None and dl <= t:
            r.expire(dl)
            dl2 = r.next_deadline()
            assert dl2 is None or dl2 > dl, "deadline did not advance"
            dl = dl2
        r.process(d, host, 6665, dst, t)
        out += r.records()
    if end is not None:
        # drive timers like the glue would, then flush
        for _ in range(1000):
            dl = r.next_deadline()
            if dl is None or dl > end:
                break
            r.expire(dl)
        out += r.records()
        r.flush(end)
        out += r.records()
    return out, r


def texts(recs):
    return [x.text for x in recs]


# --- plain format -----------------------------------------------------------

def test_plain_single_and_multiline():
    recs, r = run([b"[   12.345678] e1000e: eth0 NIC Link is Up\n",
                   b"[    1.000000] first\n[    1.000001] second\n[    1.000002] third\n"], end=10)
    assert texts(recs) == ["e1000e: eth0 NIC Link is Up", "first", "second", "third"]
    assert [x.ts_us for x in recs] == [12345678, 1000000, 1000001, 1000002]
    assert all(x.format == PLAIN and not x.incomplete for x in recs)
    assert r.counters["records"] == 4 and r.counters["datagrams"] == 2


def test_plain_dropped_marker():
    recs, r = run([b"** 3 printk messages dropped **\n[  101.000001] next message\n"], end=1)
    assert texts(recs) == ["** 3 printk messages dropped **", "next message"]
    assert recs[0].lost_before == 3 and recs[0].fields == {"printk_dropped": "3"}
    assert r.counters["printk_dropped"] == 3


def test_plain_syslog_prefix_sets_severity():
    recs, _ = run([b"<4>[   12.345678] warn\n"], end=1)
    assert (recs[0].level, recs[0].facility, recs[0].severity) == (4, 0, 4)


def test_plain_cut_line_joined():
    line = b"[    5.000000] " + b"A" * 1200 + b"\n"
    d1, d2 = line[:1000], line[1000:]
    recs, r = run([d1, d2], end=5)
    assert len(recs) == 1
    assert recs[0].text == "A" * 1200 and recs[0].fragments == 2 and not recs[0].incomplete
    assert recs[0].ts_us == 5000000


def test_plain_cut_line_emitted_on_next_datagram_immediately():
    line = b"[    5.000000] " + b"A" * 1200 + b"\n"
    r = Reassembler()
    r.process(line[:1000], H, 6665, 6666, 0.0)
    assert r.records() == []
    assert r.next_deadline() == pytest.approx(ReassemblyLimits().line_timeout)
    r.process(line[1000:] + b"[    5.000001] next\n", H, 6665, 6666, 0.01)
    assert texts(r.records()) == ["A" * 1200, "next"]
    assert r.next_deadline() is None


def test_plain_cut_line_times_out_incomplete():
    line = b"[    5.000000] " + b"B" * 1200 + b"\n"
    r = Reassembler()
    r.process(line[:1000], H, 6665, 6666, 0.0)
    dl = r.next_deadline()
    r.expire(dl - 0.001)
    assert r.records() == []
    r.expire(dl)
    recs = r.records()
    assert len(recs) == 1 and recs[0].incomplete and recs[0].text == "B" * 985
    assert r.counters["lines_incomplete"] == 1
    assert r.next_deadline() is None


def test_plain_short_partial_then_new_record_not_joined():
    # 3.5-4.8 pr_cont: a short datagram without newline, then a new prefixed record
    recs, _ = run([b"[    1.000000] Calibrating delay... ", b"[    1.100000] other\n"], end=3)
    assert texts(recs) == ["Calibrating delay... ", "other"]
    assert not recs[0].incomplete


def test_plain_short_partial_joined_with_unprefixed_continuation():
    recs, _ = run([b"[    1.000000] Calibrating delay... ", b"4000 BogoMIPS\n"], end=3)
    assert texts(recs) == ["Calibrating delay... 4000 BogoMIPS"]
    assert recs[0].fragments == 2


def test_plain_no_trailing_newline_flushed():
    recs, r = run([b"[    1.000000] tail"], end=0.0001)
    assert texts(recs) == ["tail"]


# --- extended format ----------------------------------------------------------

def test_extended_basic_fields():
    recs, r = run([b"6,339,5140900,-;e1000e 0000:00:19.0 eth0: NIC Link is Up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n"],
                  end=5)
    (x,) = recs
    assert x.format == EXTENDED and x.seq == 339 and x.ts_us == 5140900
    assert (x.level, x.facility, x.severity, x.flags) == (6, 0, 6, "-")
    assert x.fields == {"subsystem": "pci", "device": "+pci:0000:00:19.0"}
    assert x.text == "e1000e 0000:00:19.0 eth0: NIC Link is Up"


def test_extended_release_prefix_and_user_facility():
    recs, _ = run([b"6.11.1-0_fbk0_rc13_509_g30d75cea12f7,13,1822,115075213798,-;netconsole selftest: netcons_gtJHM\n key=value\n"],
                  end=5)
    (x,) = recs
    assert x.release == "6.11.1-0_fbk0_rc13_509_g30d75cea12f7"
    assert (x.facility, x.severity) == (1, 5)
    assert x.fields == {"userdata.key": "value"}


def test_extended_sysdata_release_fills_release():
    recs, _ = run([b"6,1,2,-;m\n release=6.16.0\n"], end=5)
    assert recs[0].release == "6.16.0"


def test_fragments_in_order():
    f1 = b"6,2041,98765432,-,ncfrag=0/1002;" + b"x" * 968
    f2 = b"6,2041,98765432,-,ncfrag=968/1002;" + b"x" * 12 + b"\n host=web01\n role=db\n"
    recs, r = run([f1, f2], end=5)
    (x,) = recs
    assert x.text == "x" * 980 and x.fields == {"userdata.host": "web01", "userdata.role": "db"}
    assert x.fragments == 2 and not x.incomplete and x.seq == 2041
    assert r.counters["fragments"] == 2


def test_fragments_reversed_and_duplicated():
    f1 = b"6,416,1758426,-,ncfrag=0/31;the first chunk,"
    f2 = b"6,416,1758426,-,ncfrag=16/31; the 2nd chunk."
    recs, r = run([f2, f2, f1, f1], end=5)
    assert texts(recs) == ["the first chunk, the 2nd chunk."]
    assert r.counters["duplicates"] == 2


def test_fragment_cut_inside_escape_and_userdata():
    body = b"caf\\xc3\\xa9 ok\n host=we"
    rest = b"b01\n"
    total = len(body) + len(rest)
    cut = body.index(b"\\xa9") + 2      # inside the escape
    f1 = b"4,7,8,-,ncfrag=0/%d;" % total + body[:cut]
    f2 = b"4,7,8,-,ncfrag=%d/%d;" % (cut, total) + body[cut:] + rest
    recs, _ = run([f2, f1], end=5)
    assert texts(recs) == ["caf\u00e9 ok"]
    assert recs[0].fields == {"userdata.host": "web01"}


def test_lost_fragment_times_out_incomplete_and_late_fragment_dropped():
    f1 = b"6,50,100,-,ncfrag=0/20;0123456789"
    f2 = b"6,50,100,-,ncfrag=10/20;abcdefghij"
    r = Reassembler()
    r.process(f1, H, 6665, 6666, 0.0)
    assert r.records() == []
    dl = r.next_deadline()
    assert dl == pytest.approx(ReassemblyLimits().frag_timeout)
    r.expire(dl)
    # incomplete record comes out; may wait for continuation hold
    r.expire(r.next_deadline())
    recs = r.records()
    assert len(recs) == 1 and recs[0].incomplete and recs[0].text.startswith("0123456789")
    assert r.counters["fragments_incomplete"] == 1
    r.process(f2, H, 6665, 6666, dl + 0.5)
    r.flush(dl + 1)
    assert r.records() == []
    assert r.counters["dropped_late_fragment"] == 1


def test_c_record_is_a_line_of_its_own():
    # 4.9+: a KERN_CONT piece the kernel could not merge is its own console line
    recs, r = run([b"4,1234,987654321,-,caller=T123;foo\n",
                   b"4,1235,987654400,c,caller=T123; bar\n",
                   b"4,1236,987654500,-,caller=T123;next\n"], end=5)
    assert texts(recs) == ["foo", " bar", "next"]
    assert [(x.flags, x.continued, x.ts_us) for x in recs] == [
        ("-", 0, 987654321), ("c", 0, 987654400), ("-", 0, 987654500)]
    assert r.counters["continued"] == 0 and r.counters["cont_orphans"] == 0


def test_continuation_orphan_with_gap_kept_alone():
    recs, r = run([b"4,10,1000,-;foo\n", b"4,12,1100,c; bar\n"], end=5)
    assert texts(recs) == ["foo", " bar"]
    assert recs[1].lost_before == 1


def test_seq_gap_counted():
    recs, r = run([b"6,1,10,-;a\n", b"6,2,20,-;b\n", b"6,5,50,-;e\n"], end=5)
    assert texts(recs) == ["a", "b", "e"]
    assert [x.lost_before for x in recs] == [0, 0, 2]
    assert r.counters["lost"] == 2


def test_duplicates_dropped():
    d = b"6,1,10,-;a\n"
    recs, r = run([d, d, b"6,2,20,-;b\n", d], end=5)
    assert texts(recs) == ["a", "b"]
    assert r.counters["duplicates"] == 2


def test_reorder_fixed_within_window():
    recs, r = run([b"6,1,10,-;a\n", b"6,3,30,-;c\n", b"6,2,20,-;b\n"], end=5)
    assert texts(recs) == ["a", "b", "c"]
    assert [x.lost_before for x in recs] == [0, 0, 0]
    assert r.counters["reordered"] == 1 and r.counters["lost"] == 0


def test_late_record_after_window_still_emitted():
    recs, r = run([(0.0, b"6,1,10,-;a\n"), (0.01, b"6,3,30,-;c\n"), (2.0, b"6,2,20,-;b\n")], end=5)
    assert texts(recs) == ["a", "c", "b"]
    assert r.counters["late"] == 1


def test_reboot_by_seq_restart_and_linux_version():
    recs, r = run([b"6,5000,90000000,-;old boot\n",
                   b"5,0,0,-;Linux version 6.1.0-13-amd64\n",
                   b"6,1,10,-;new boot\n"], end=5)
    assert texts(recs) == ["old boot", "Linux version 6.1.0-13-amd64", "new boot"]
    assert [x.boot for x in recs] == [0, 1, 1]
    assert r.counters["reboots"] == 1 and r.counters["duplicates"] == 0


def test_plain_and_extended_of_one_host_stay_apart():
    recs, _ = run([b"6,1,10,c;ext one\n", b"[    1.000000] plain one\n",
                   b"6,2,20,+;+more\n"], end=5)
    ext = [x for x in recs if x.format == EXTENDED]
    plain = [x for x in recs if x.format == PLAIN]
    assert texts(ext) == ["ext one+more"] and texts(plain) == ["plain one"]


def test_hosts_interleaved_never_mix():
    r = Reassembler()
    a = b"6,7,70,-,ncfrag=0/8;AAAA"
    b = b"6,7,70,-,ncfrag=0/8;BBBB"
    r.process(a, "10.0.0.1", 6665, 6666, 0.0)
    r.process(b, "10.0.0.2", 6665, 6666, 0.0)
    r.process(b"6,7,70,-,ncfrag=4/8;bbbb", "10.0.0.2", 6665, 6666, 0.001)
    r.process(b"6,7,70,-,ncfrag=4/8;aaaa", "10.0.0.1", 6665, 6666, 0.001)
    r.flush(1.0)
    got = sorted((x.host, x.text) for x in r.records())
    assert got == [("10.0.0.1", "AAAAaaaa"), ("10.0.0.2", "BBBBbbbb")]


BAD_INPUT = [b"", b"\x00" * 100, b"\xff" * 2000, b"6,1,2,-,ncfrag=9/4;x", b"A" * 65507,
             b"6,1,2,-,ncfrag=0/999999;x"]


@pytest.mark.parametrize("payload", BAD_INPUT)
def test_bad_input_never_raises_and_is_counted(payload):
    r = Reassembler()
    r.process(payload, H, 1, 2, 0.0)
    r.flush(1.0)
    recs = r.records()
    c = r.counters
    assert c["dropped_internal_error"] == 0
    dropped = sum(v for k, v in c.items() if k.startswith("dropped_"))
    assert recs or dropped, "datagram vanished without a record or a drop counter"


def test_flood_of_incomplete_fragment_sets_is_bounded():
    lim = ReassemblyLimits()
    r = Reassembler(lim)
    for i in range(10000):
        r.process(b"6,%d,%d,-,ncfrag=0/5000;" % (i, i) + b"z" * 900, H, 6665, 6666, i * 1e-5)
        r.records()
        assert len(r._streams[(H, 6666, EXTENDED)].frags) <= lim.max_frag_sets
    assert r.counters["fragments_evicted"] >= 10000 - lim.max_frag_sets
    r.flush(1.0)
    r.records()
    assert r.counters["fragments_incomplete"] == 10000
    assert r.pending_bytes == 0


# --- timers: a held piece comes out when its timeout passes, host silent ------

HELD = {
    "fragment": ([b"6,50,100,-,ncfrag=0/20;0123456789"], True),
    "cut_line": ([b"[    1.000000] " + b"C" * 985], True),
    "reorder": ([b"6,1,10,-;a\n", b"6,3,30,-;c\n"], False),
    "cont_probe": ([b"6,1,10,c;last words\n"], False),
    "cont_hold": ([b"6,1,10,c;last \n", b"6,2,11,+;words\n"], False),
    "short_partial": ([b"[    1.000000] no newline"], False),
}


@pytest.mark.parametrize("kind", sorted(HELD))
def test_held_piece_comes_out_by_timer_alone(kind):
    datagrams, incomplete = HELD[kind]
    r = Reassembler()
    for i, d in enumerate(datagrams):
        r.process(d, H, 6665, 6666, i * 0.001)
    before = len(r.records())
    deadlines = []
    for _ in range(10):     # the glue's timer loop, no more datagrams
        dl = r.next_deadline()
        if dl is None:
            break
        assert not deadlines or dl > deadlines[-1]
        deadlines.append(dl)
        r.expire(dl)
    assert r.next_deadline() is None
    assert deadlines and deadlines[-1] < 3.0, "held longer than the timeouts allow"
    recs = r.records()
    assert before + len(recs) == len(datagrams) if kind == "reorder" else len(recs) == 1
    assert recs[-1].incomplete == incomplete
    assert r.pending_bytes == 0


def test_expire_before_deadline_does_nothing():
    r = Reassembler()
    r.process(b"6,50,100,-,ncfrag=0/20;0123456789", H, 6665, 6666, 0.0)
    dl = r.next_deadline()
    r.expire(dl - 1e-3)
    assert r.records() == [] and r.next_deadline() == dl


# --- fragments: validation and ordering ---------------------------------------

def test_fragment_counters_for_bogus_sets():
    r = Reassembler(ReassemblyLimits(max_frag_total=100))
    r.process(b"6,1,1,-,ncfrag=0/200;x", H, 1, 2, 0.0)              # total above cap
    r.process(b"6,2,2,-,ncfrag=0/10;abcde", H, 1, 2, 0.0)
    r.process(b"6,2,2,-,ncfrag=5/12;fghij", H, 1, 2, 0.0)           # total changed
    r.process(b"6,2,2,-,ncfrag=0/10;ABCDE", H, 1, 2, 0.0)           # same offset, other bytes
    r.process(b"6,2,2,-,ncfrag=9/3;x", H, 1, 2, 0.0)                # off >= total
    r.process(b"6,2,2,-,ncfrag=0/10,ncfrag=5/10;fghij", H, 1, 2, 0.0)  # two ncfrag fields
    c = r.counters
    assert c["dropped_frag_too_big"] == 1 and c["dropped_frag_mismatch"] == 1
    assert c["dropped_frag_conflict"] == 1 and c["dropped_bad_ncfrag"] == 2
    r.process(b"6,2,2,-,ncfrag=5/10;fghij", H, 1, 2, 0.01)
    r.flush(1)
    assert texts(r.records()) == ["abcdefghij"]


def test_overlapping_fragments_complete_once_covered():
    body = b"0123456789abcdef\n"
    r = Reassembler()
    r.process(b"6,9,9,-,ncfrag=0/17;" + body[:10], H, 1, 2, 0.0)
    r.process(b"6,9,9,-,ncfrag=5/17;" + body[5:12], H, 1, 2, 0.0)     # overlap, hole at 12
    assert r.records() == []
    r.process(b"6,9,9,-,ncfrag=12/17;" + body[12:], H, 1, 2, 0.0)
    r.flush(0.5)
    assert texts(r.records()) == ["0123456789abcdef"]


def test_incomplete_set_shows_holes():
    r = Reassembler()
    r.process(b"6,9,9,-,ncfrag=5/15;FGHIJ", H, 1, 2, 0.0)
    r.flush(1.0)
    (x,) = r.records()
    assert x.incomplete and x.text == "[...]FGHIJ[...]" and x.fragments == 1


def test_first_record_waits_for_lower_fragmented_seq():
    f1 = b"6,10,100,-,ncfrag=0/6;abc"
    f2 = b"6,10,100,-,ncfrag=3/6;de\n"
    recs, r = run([f1, b"6,11,110,-;next\n", f2], end=5)
    assert texts(recs) == ["abcde", "next"] and r.counters["late"] == 0


def test_gap_waits_for_fragment_set_in_it_then_keeps_order():
    # record 11 complete, record 10 loses its second fragment: 10 comes out
    # incomplete at the fragment timeout, before 11, and nothing is late
    recs, r = run([b"6,9,90,-;nine\n", b"6,10,100,-,ncfrag=0/6;abc", b"6,11,110,-;eleven\n"],
                  end=5)
    assert texts(recs) == ["nine", "abc[...]", "eleven"]
    assert recs[1].incomplete and r.counters["late"] == 0 and r.counters["lost"] == 0


# --- continuation ----------------------------------------------------------------

def test_a_normal_record_is_never_held():
    r = Reassembler()
    r.process(b"0,1,10,-;Kernel panic - not syncing: Fatal exception\n", H, 1, 2, 0.0)
    assert texts(r.records()) == ["Kernel panic - not syncing: Fatal exception"]
    assert r.next_deadline() is None


def test_c_record_waits_only_until_the_stream_shows_its_kind():
    r = Reassembler()
    r.process(b"6,1,10,-;Sched Debug Version: v0.11\n", H, 1, 2, 0.0)
    r.process(b"6,2,11,c;ktime : 4949.348816\n", H, 1, 2, 0.001)
    assert texts(r.records()) == ["Sched Debug Version: v0.11"]
    # a stream of unknown kind: the 'c' may open a 4.2-4.8 line, wait briefly for '+'
    assert r.next_deadline() == pytest.approx(0.001 + ReassemblyLimits().cont_probe)
    r.process(b"6,3,12,c;sched_clk : 4949.1\n", H, 1, 2, 0.002)
    # 'c' after 'c': a 4.9+ stream; from now on nothing waits
    assert texts(r.records()) == ["ktime : 4949.348816", "sched_clk : 4949.1"]
    assert r.next_deadline() is None
    r.process(b"6,4,13,c;cpu_clk : 4949.2\n", H, 1, 2, 0.003)
    assert texts(r.records()) == ["cpu_clk : 4949.2"]


def test_release_of_4_9_or_later_never_waits_for_pieces():
    r = Reassembler()
    r.process(b"6.12.117,6,2,11,c;ktime : 1\n", H, 1, 2, 0.0)
    assert texts(r.records()) == ["ktime : 1"] and r.next_deadline() is None
    r2 = Reassembler()
    r2.process(b"4.8.0,6,2,11,c;Calibrating... \n", H, 1, 2, 0.0)
    r2.process(b"4.8.0,6,3,12,+;done\n", H, 1, 2, 0.001)
    r2.flush(1.0)
    assert texts(r2.records()) == ["Calibrating... done"]


def test_old_kernel_c_plus_semantics():
    # 4.2-4.8: 'c' opens an unfinished line, '+' continues it, joined as the console did
    recs, r = run([b"6,1,10,-;plain\n", b"6,2,20,c;Calibrating... \n",
                   b"6,3,30,+;4000 BogoMIPS\n", b"6,4,40,c;next line \n", b"6,5,50,+;more \n",
                   b"6,6,60,+;done\n", b"6,7,70,-;after\n"],
                  end=5)
    assert texts(recs) == ["plain", "Calibrating... 4000 BogoMIPS", "next line more done",
                           "after"]
    assert [(x.flags, x.continued, x.ts_us, x.seq) for x in recs] == [
        ("-", 0, 10, 1), ("c", 1, 20, 2), ("c", 2, 40, 4), ("-", 0, 70, 7)]
    assert r.counters["continued"] == 3


def test_old_kernel_piece_waits_cont_hold_then_comes_out_alone():
    r = Reassembler()
    r.process(b"6,2,20,c;Calibrating... \n", H, 1, 2, 0.0)
    r.process(b"6,3,30,+;4000 \n", H, 1, 2, 0.001)
    assert r.records() == []
    assert r.next_deadline() == pytest.approx(0.001 + ReassemblyLimits().cont_hold)
    r.expire(2.0)
    assert texts(r.records()) == ["Calibrating... 4000 "]
    r.process(b"6,4,3000,+;BogoMIPS\n", H, 1, 2, 3.0)     # too late: a line of its own
    r.flush(5.0)
    assert texts(r.records()) == ["BogoMIPS"] and r.counters["cont_orphans"] == 1


def test_plus_piece_of_another_caller_not_joined():
    recs, r = run([b"4,1,10,c,caller=T1;foo\n", b"4,2,20,+,caller=T2; bar\n"], end=5)
    assert texts(recs) == ["foo", " bar"] and r.counters["cont_orphans"] == 1


def test_cont_without_parent_kept():
    recs, r = run([b"4,2,20,c; orphan\n"], end=5)
    assert texts(recs) == [" orphan"] and recs[0].flags == "c"


def test_cont_join_capped():
    lim = ReassemblyLimits(max_record_bytes=20)
    recs, r = run([b"4,1,10,c;0123456789\n", b"4,2,20,+;abcdefghij\n", b"4,3,30,+;KLMNO\n"],
                  limits=lim, end=5)
    assert texts(recs) == ["0123456789abcdefghij", "KLMNO"]


def test_a_reboot_forgets_the_kind_of_stream():
    r = Reassembler()
    r.process(b"6,1,10,c;a\n", H, 1, 2, 0.0)
    r.process(b"6,2,20,-;b\n", H, 1, 2, 0.001)          # 4.9+
    r.process(b"5,0,0,-;Linux version 4.8.0\n", H, 1, 2, 1.0)
    r.process(b"6,1,10,c;Calibrating... \n", H, 1, 2, 1.001)
    r.process(b"6,2,20,+;done\n", H, 1, 2, 1.002)
    r.flush(3.0)
    assert texts(r.records()) == ["a", "b", "Linux version 4.8.0", "Calibrating... done"]


# --- sequence: msgid, reboots, streams --------------------------------------------

def test_msgid_releases_across_seq_gap_without_waiting_and_counts_real_loss():
    r = Reassembler()
    r.process(b"6,10,100,-;a\n msgid=1\n", H, 1, 2, 0.0)
    r.process(b"6,15,150,-;b\n msgid=2\n", H, 1, 2, 0.001)     # seq gap 4: filtering
    r.process(b"6,16,160,-;c\n msgid=2\n", H, 1, 2, 0.002)     # wrong msgid: waits
    r.flush(0.003)
    recs = r.records()
    assert texts(recs) == ["a", "b", "c"]
    # b came out as soon as c arrived (no reorder wait); no loss counted for it
    assert [x.lost_before for x in recs] == [0, 0, 0]
    r2 = Reassembler()
    r2.process(b"6,10,100,-;a\n msgid=1\n", H, 1, 2, 0.0)
    r2.process(b"6,11,110,-;b\n msgid=4\n", H, 1, 2, 0.001)    # msgid 2, 3 lost
    r2.flush(1.0)
    recs = r2.records()
    assert [x.lost_before for x in recs] == [0, 2] and r2.counters["lost"] == 2


def test_msgid_release_is_immediate():
    r = Reassembler(ReassemblyLimits(cont_hold=0.01))
    r.process(b"6,10,100,-;a\n msgid=7\n", H, 1, 2, 0.0)
    r.process(b"6,20,200,-;b\n msgid=8\n", H, 1, 2, 0.001)
    # no reorder hold, no continuation hold: nothing waits
    assert r.next_deadline() is None
    assert texts(r.records()) == ["a", "b"]


def test_reboot_by_timestamp_jump_and_by_release_change():
    recs, r = run([b"6,100,900000000,-;old\n", b"6,120,5000,-;new boot, seq forward\n"], end=5)
    assert [x.boot for x in recs] == [0, 1]
    recs, r = run([b"6.1.0,6,100,900000,-;old\n", b"6.2.0,6,101,900100,-;new kernel\n"], end=5)
    assert [x.boot for x in recs] == [0, 1] and r.counters["reboots"] == 1


def test_small_timestamp_jitter_is_not_a_reboot():
    recs, r = run([b"6,1,1000000,-;a\n", b"6,2,999000,-;b\n"], end=5)
    assert [x.boot for x in recs] == [0, 0] and r.counters["reboots"] == 0


def test_plain_reboot_on_linux_version():
    recs, r = run([b"[ 5000.000000] old\n", b"[    0.000000] Linux version 6.1.0 (gcc)\n",
                   b"[    0.000001] Command line: x\n"], end=5)
    assert [x.boot for x in recs] == [0, 1, 1]


def test_reboot_flushes_held_pieces_of_old_boot():
    recs, r = run([b"6,4999,89000000,-;prev\n", b"6,5000,90000000,-,ncfrag=0/20;0123456789",
                   b"5,0,0,-;Linux version 6.1.0\n"], end=5)
    assert texts(recs) == ["prev", "0123456789[...]", "Linux version 6.1.0"]
    assert [x.boot for x in recs] == [0, 0, 1] and recs[1].incomplete


def test_two_targets_same_host_duplicates_dropped():
    r = Reassembler()
    for sport in (6665, 6675):      # two extended targets, same receiver port
        r.process(b"6,1,10,-;once\n", H, sport, 6666, 0.0)
    r.flush(1)
    assert texts(r.records()) == ["once"] and r.counters["duplicates"] == 1


def test_streams_split_by_destination_port():
    r = Reassembler()
    r.process(b"6,1,10,-;a\n", H, 6665, 6666, 0.0)
    r.process(b"6,1,10,-;b\n", H, 6665, 6667, 0.0)
    r.flush(1)
    assert sorted((x.dst_port, x.text) for x in r.records()) == [(6666, "a"), (6667, "b")]
    assert r.counters["duplicates"] == 0 and r.counters["hosts"] == 2


def test_ipv4_mapped_ipv6_is_the_ipv4_host():
    r = Reassembler()
    r.process(b"6,1,10,-,ncfrag=0/4;ab", "::ffff:10.0.0.7", 6665, 6666, 0.0)
    r.process(b"6,1,10,-,ncfrag=2/4;c\n", "10.0.0.7", 6665, 6666, 0.0)
    r.flush(1)
    (x,) = r.records()
    assert (x.host, x.text, x.incomplete) == ("10.0.0.7", "abc", False)


# --- memory bounds -------------------------------------------------------------------

def test_lru_eviction_beyond_stream_cap_emits_pending():
    r = Reassembler(ReassemblyLimits(max_streams=3))
    for i in range(5):
        r.process(b"6,1,10,-,ncfrag=0/8;half", "10.0.0.%d" % i, 1, 2, i * 0.01)
    c = r.counters
    assert c["evicted"] == 2 and c["hosts"] == 3 and len(r._streams) == 3
    recs = r.records()
    assert sorted(x.host for x in recs) == ["10.0.0.0", "10.0.0.1"]
    assert all(x.incomplete for x in recs)


def test_idle_streams_forgotten():
    r = Reassembler(ReassemblyLimits(idle_timeout=60))
    r.process(b"[    1.000000] hello\n", "10.0.0.1", 1, 2, 0.0)
    r.process(b"[    1.000000] hello\n", "10.0.0.2", 1, 2, 50.0)
    r.expire(61.0)
    assert r.counters["idle_evicted"] == 1 and r.counters["hosts"] == 1
    r.process(b"[    1.000000] x\n", "10.0.0.3", 1, 2, 200.0)
    assert r.counters["idle_evicted"] == 2


def test_pending_bytes_cap_forces_flush():
    r = Reassembler(ReassemblyLimits(max_pending_bytes=10000, max_frag_sets=1000))
    for i in range(40):
        r.process(b"6,%d,%d,-,ncfrag=0/4000;" % (i, i) + b"q" * 900, "10.0.0.%d" % (i % 4), 1, 2, 0.0)
        assert r.pending_bytes <= 10000 + 1000
    assert r.counters["forced_flushes"] > 0
    r.flush(1)
    assert len(r.records()) == 40 and r.pending_bytes == 0


def test_reorder_held_cap():
    lim = ReassemblyLimits(max_reorder_held=4)
    r = Reassembler(lim)
    r.process(b"6,1,10,-;first\n", H, 1, 2, 0.0)
    for s in range(3, 20):
        r.process(b"6,%d,%d,-;r\n" % (s, s * 10), H, 1, 2, 0.0)
        assert len(r._streams[(H, 2, EXTENDED)].held) <= 4
    r.flush(1)
    recs = r.records()
    assert [x.seq for x in recs] == [1] + list(range(3, 20)) and recs[1].lost_before == 1


def test_many_tiny_overlapping_fragments_are_capped():
    lim = ReassemblyLimits()
    r = Reassembler(lim)
    total = 16000
    for off in range(0, 4000):
        r.process(b"6,1,1,-,ncfrag=%d/%d;ab" % (off, total), H, 1, 2, 0.0)
    fs = r._streams[(H, 2, EXTENDED)].frags[(1, 1)]
    assert len(fs.parts) == lim.max_frag_parts
    assert r.counters["dropped_frag_too_many"] == 4000 - lim.max_frag_parts
    r.flush(1)
    (x,) = r.records()
    assert x.incomplete


def test_degenerate_limits_still_work():
    lim = ReassemblyLimits(max_streams=0, dup_memory=0, max_frag_sets=0, max_frag_parts=0,
                 reorder_window=0.0, frag_timeout=float("nan"), max_pending_bytes=0)
    r = Reassembler(lim)
    r.process(b"6,1,10,-,ncfrag=0/4;ab", "10.0.0.1", 1, 2, 0.0)
    r.process(b"6,1,10,-,ncfrag=2/4;c\n", "10.0.0.1", 1, 2, 0.0)
    r.process(b"6,3,30,-;x\n", "10.0.0.2", 1, 2, 0.0)
    r.expire(5.0)
    r.flush(5.0)
    assert r.counters["dropped_internal_error"] == 0
    # max_pending_bytes 0 flushes the set after its first piece: it comes out
    # incomplete and the second piece is counted as late
    assert sorted(x.text for x in r.records()) == ["ab[...]", "x"]
    assert r.counters["dropped_late_fragment"] == 1 and r.counters["evicted"] == 1
    assert lim.max_streams == 0     # the caller's object is not modified


# --- spec examples end to end (netconsole-wire.md 2 and 3.4) --------------------
# payload -> [(text, facility, severity, flags, caller, release, fields)]
SPEC_EXAMPLES = [
    (b"[   12.345678] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex\n",
     [("e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex", None, None, "", None, None, {})]),
    (b"<6>[   12.345678] e1000e: eth0 NIC Link is Up\n",
     [("e1000e: eth0 NIC Link is Up", 0, 6, "", None, None, {})]),
    (b"[    3.771531][    T1] pci 0000:3e:08.1: [8086:3246] type 00\n",
     [("pci 0000:3e:08.1: [8086:3246] type 00", None, None, "", "T1", None, {})]),
    (b"** 3 printk messages dropped **\n[  101.000001] next message\n",
     [("** 3 printk messages dropped **", None, None, "", None, None, {"printk_dropped": "3"}),
      ("next message", None, None, "", None, None, {})]),
    (b"6,416,1758426,-;netconsole: network logging started\n",
     [("netconsole: network logging started", 0, 6, "-", None, None, {})]),
    (b"6,339,5140900,-;e1000e 0000:00:19.0 eth0: NIC Link is Up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n",
     [("e1000e 0000:00:19.0 eth0: NIC Link is Up", 0, 6, "-", None, None,
       {"subsystem": "pci", "device": "+pci:0000:00:19.0"})]),
    (b"4,1234,987654321,-,caller=T123;foo\n", [("foo", 0, 4, "-", "T123", None, {})]),
    (b"4,1235,987654400,c,caller=T123; bar\n", [(" bar", 0, 4, "c", "T123", None, {})]),
    (b"4,77,1000,-;path a\\x5cb caf\\xc3\\xa9\n",
     [("path a\\b caf\u00e9", 0, 4, "-", None, None, {})]),
    (b"12,607,22085407756,-;This is a message\n foo=bar\n qux=baz\n",
     [("This is a message", 1, 4, "-", None, None, {"userdata.foo": "bar", "userdata.qux": "baz"})]),
    (b"6.4.0,6,444,501151268,-;netconsole: network logging started\n",
     [("netconsole: network logging started", 0, 6, "-", None, "6.4.0", {})]),
    (b"6.11.1-0_fbk0_rc13_509_g30d75cea12f7,13,1822,115075213798,-;netconsole selftest: netcons_gtJHM\n key=value\n",
     [("netconsole selftest: netcons_gtJHM", 1, 5, "-", None,
       "6.11.1-0_fbk0_rc13_509_g30d75cea12f7", {"userdata.key": "value"})]),
    (b"13,434,54928466,-;This is message #1\n msgid=1\n",
     [("This is message #1", 1, 5, "-", None, None, {"msgid": "1"})]),
    (b"6,1,2,-;\n", [("", 0, 6, "-", None, None, {})]),
    (b"6,1,2,-;a;b=c,d\n", [("a;b=c,d", 0, 6, "-", None, None, {})]),
    (b"6,1,2,-;m\n cpu=1\n cpu=42\n", [("m", 0, 6, "-", None, None, {"cpu": "42", "userdata.cpu": "1"})]),
]


@pytest.mark.parametrize("payload,want", SPEC_EXAMPLES)
def test_spec_examples_end_to_end(payload, want):
    recs, r = run([payload], end=5)
    got = [(x.text, x.facility, x.severity, x.flags, x.caller, x.release, x.fields) for x in recs]
    assert got == want
    assert not any(x.incomplete for x in recs)


# --- more section 10 edge cases ----------------------------------------------------

def test_fragment_cut_right_after_body_newline():
    body = b"the text\n SUBSYSTEM=net\n"
    cut = body.index(b"\n") + 1
    frags = [b"6,3,4,-,ncfrag=0/%d;" % len(body) + body[:cut],
             b"6,3,4,-,ncfrag=%d/%d;" % (cut, len(body)) + body[cut:]]
    recs, _ = run(frags, end=5)
    assert [(x.text, x.fields) for x in recs] == [("the text", {"subsystem": "net"})]


def test_release_prefix_in_every_fragment():
    body = b"y" * 1500 + b"\n"
    frags = []
    off = 0
    while off < len(body):
        pre = b"6.12.0,4,1023,52430118,-,ncfrag=%d/%d;" % (off, len(body))
        room = 1000 - len(pre)
        frags.append(pre + body[off:off + room])
        off += room
    assert all(len(f) <= 1000 for f in frags) and len(frags) == 2
    recs, _ = run(frags[::-1], end=5)
    assert [(x.text, x.release, x.fragments) for x in recs] == [("y" * 1500, "6.12.0", 2)]


def test_module_reload_replay_within_memory_is_dropped_as_duplicates():
    live = [b"6,%d,%d,-;r%d\n" % (s, s * 1000, s) for s in range(100, 140)]
    recs, r = run(live + live[:30], end=5)
    assert len(recs) == 40 and r.counters["duplicates"] == 30 and r.counters["reboots"] == 0


def test_nbcon_replay_marker_kept_as_text():
    recs, _ = run([b"[    2.000000] msg\n", b"** replaying previous printk message **\n",
                   b"[    2.000000] msg\n"], end=5)
    assert texts(recs) == ["msg", "** replaying previous printk message **", "msg"]


def test_merged_cont_keeps_first_piece_timestamp():
    recs, _ = run([b"4,1,100,c;foo\n", b"4,2,900,+; bar\n"], end=5)
    assert (recs[0].text, recs[0].ts_us, recs[0].seq) == ("foo bar", 100, 1)


def test_thousands_of_hosts_bounded_and_nothing_lost():
    lim = ReassemblyLimits(max_streams=1000)
    r = Reassembler(lim)
    n = 3000
    for i in range(n):
        host = "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
        r.process(b"6,1,10,-,ncfrag=0/6;abc", host, 6665, 6666, i * 1e-4)
        r.process(b"6,1,10,-,ncfrag=3/6;de\n", host, 6665, 6666, i * 1e-4)
    assert len(r._streams) == 1000 and r.counters["evicted"] == n - 1000
    r.flush(10)
    recs = r.records()
    assert len(recs) == n and all(x.text == "abcde" and not x.incomplete for x in recs)


def test_oversized_record_is_not_held_for_continuations():
    r = Reassembler(ReassemblyLimits(max_record_bytes=100))
    r.process(b"6,1,10,-;" + b"w" * 5000 + b"\n", H, 1, 2, 0.0)
    (x,) = r.records()
    assert len(x.text) == 5000 and r.next_deadline() is None


def test_late_fragment_of_old_boot_after_reboot_is_dropped():
    r = Reassembler()
    t = 0.0
    r.process(b"6,4999,89000000,-;prev\n", H, 1, 2, t)
    r.process(b"6,5000,90000000,-,ncfrag=0/20;0123456789", H, 1, 2, t)
    r.expire(5.0)                                               # set times out
    r.process(b"5,0,0,-;Linux version 6.1.0\n", H, 1, 2, 6.0)   # new boot
    r.process(b"6,5000,90000000,-,ncfrag=10/20;abcdefghij", H, 1, 2, 6.1)   # late piece
    r.process(b"6,1,10,-;second record of the new boot\n", H, 1, 2, 6.2)
    r.flush(10.0)
    recs = r.records()
    assert [x.text for x in recs] == ["prev", "0123456789[...]", "Linux version 6.1.0",
                                      "second record of the new boot"]
    assert r.counters["reboots"] == 1 and r.counters["dropped_late_fragment"] == 1


def test_small_duplicate_ring_remembers_what_the_full_one_does(monkeypatch):
    # the ring starts at 16 entries and grows; on the same input it must find the
    # same duplicates, late records and reboots as a ring of dup_memory from the start
    import random
    from syslogng_netconsole.ingest import extended

    def datagrams(seed):
        rnd = random.Random(seed)
        out, sent, seq = [], [], 0
        for _ in range(1500):
            r = rnd.random()
            if r < 0.08 and sent:            # a duplicate, recent or up to 600 back
                s = sent[-1 - int(rnd.random() ** 2 * min(len(sent) - 1, 600))]
            elif r < 0.12:                    # a gap (loglevel filtering or loss)
                seq += rnd.randint(2, 40)
                s = seq
            elif r < 0.125:                   # a reboot
                seq = 0
                s = seq
            else:
                seq += 1
                s = seq
            sent.append(s)
            out.append(b"6,%d,%d,-;r%d\n" % (s, 1000000 + s, s))
        return out

    def run_all(ds):
        core = Reassembler()
        recs = []
        for i, d in enumerate(ds):
            core.process(d, H, 1, 2, i * 0.01)
            core.expire(i * 0.01)
            recs += [(r.text, r.boot, r.lost_before) for r in core.records()]
        core.flush(1e6)
        recs += [(r.text, r.boot, r.lost_before) for r in core.records()]
        stream = next(iter(core._streams.values()))
        return recs, dict(core.counters), len(stream.ring_seq)

    for seed in range(8):
        ds = datagrams(seed)
        small = run_all(ds)
        monkeypatch.setattr(extended, "RING_START", 1 << 20)     # no small start
        full = run_all(ds)
        monkeypatch.undo()
        assert small[:2] == full[:2], seed
        assert full[2] == ReassemblyLimits().dup_memory
    # an idle stream of a few dozen records keeps a small ring
    core = Reassembler()
    for s in range(40):
        core.process(b"6,%d,%d,-;boot %d\n" % (s, s, s), H, 1, 2, 0.0)
    assert len(next(iter(core._streams.values())).ring_seq) == 64


def test_duplicates_are_found_with_seqs_and_timestamps_beyond_32_bits():
    """The duplicate ring keeps seqs and timestamps modulo 2**32 (memory per idle host):
    a stream whose seqs and kernel timestamps passed 2**32 still has its duplicates
    dropped, and a seq resent after a reboot (same seq, a timestamp far back) is not one."""
    base, ts0 = (1 << 32) - 3, (1 << 33) + 7
    core = Reassembler()
    ds = [b"6,%d,%d,-;r%d\n" % (base + i, ts0 + i * 1000, i) for i in range(6)]
    for d in ds + ds[1:4]:                       # three sent twice
        core.process(d, H, 1, 2, 0.0)
    core.flush(10.0)
    assert [r.text for r in core.records()] == ["r%d" % i for i in range(6)]
    assert core.counters["duplicates"] == 3
    core.process(b"6,%d,%d,-;again\n" % (base + 5, 1000), H, 1, 2, 1.0)   # rebooted
    core.flush(20.0)
    assert [(r.text, r.boot) for r in core.records()] == [("again", 1)]


def test_a_resolved_reorder_leaves_no_grown_table():
    """Memory per idle host: an emptied dict keeps its grown table (S2 of
    bench/storm.py counts 10,000 idle hosts), so the hold is a fresh one after."""
    import sys
    burst = [b"6,1,10,-;a\n"] + [b"6,%d,%d,-;x\n" % (s, s * 10) for s in range(40, 2, -1)] + \
        [b"6,2,20,-;b\n"]
    recs, r = run(burst)
    assert len(recs) == 40 and r.counters["reordered"] >= 1
    (stream,) = r._streams.values()
    assert not stream.held and sys.getsizeof(stream.held) == sys.getsizeof({})
