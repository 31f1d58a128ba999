"""Bad input never crashes syslog-ng, never stalls ingestion, never loses data silently:
garbage, empty, maximum-size (65507 bytes: the largest IPv4 UDP payload; 65 KiB cannot
be sent over IPv4), NUL-containing and invalid UTF-8 datagrams, and a flood of 10,000
distinct incomplete fragment sets from one host. RSS stays bounded; counters say what
was dropped."""

import random
import time

import pytest

from harness.sng import wait_for
from harness.ncdata import dmesg_prefix, ext

pytestmark = pytest.mark.syslogng

FLOOD = 10000


def flood_datagrams(first_seq, n):
    # each one opens a fragment set of 3000 bytes that never gets its other pieces
    return [b"4,%d,%d,-,ncfrag=0/3000;" % (seq, 5000000 + seq) + b"%08d" % seq + b"z" * 900
            for seq in range(first_seq, first_seq + n)]


def send_paced(tx, payloads, chunk=100, pause=0.04):
    # paced (<= 2,500/s) so the 4 MiB socket buffer does not overflow even while other
    # Python destinations share the GIL: the test is about bad input, not throughput
    for i in range(0, len(payloads), chunk):
        tx.send_all(payloads[i:i + chunk])
        time.sleep(pause)


def received(s, n):
    """Wait until the source has read or the kernel has dropped n datagrams in all;
    return the counters."""
    def done():
        c = s.stats().get("counters", {})
        return c.get("source.datagrams", 0) + c.get("source.kernel_drops", 0) >= n and c
    return wait_for(done, 30, interval=0.2, message="source saw fewer than %d datagrams: %r"
                    % (n, s.stats().get("counters")))


def test_bad_input_leaves_syslog_ng_running_with_bounded_memory(start_sng):
    s = start_sng()
    ok = s.sender("127.0.0.30")
    ok.send(ext(1, "alive before"))
    wait_for(lambda: s.read_log("127.0.0.30"), 5)
    rss_start = s.rss_kib()

    bad = s.sender("127.0.0.31")
    rnd = random.Random(31)
    garbage = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 1500))) for _ in range(300)]
    odd = [
        b"",                                                  # empty
        b"x" * 65507,                                         # the largest IPv4 UDP payload
        b"6,5,100,-;" + b"y" * 65000,                         # largest extended record
        b"before\x00after\n",                                 # NUL in plain text
        b"6,6,200,-;nul\x00inside\n",                         # raw NUL in extended text
        b"bad \xff\xfe utf8 \xc3\x28 end\n",                  # invalid UTF-8
        b"6,7,300,-,ncfrag=5/3;inconsistent\n",               # offset beyond total
        b"6,8,400,-,ncfrag=0/999999999;huge total\n",         # absurd total
        b"6,9,500,-,ncfrag=0/10,ncfrag=0/10;twice\n",        # repeated ncfrag
        b"99999999999999999999,1,1,-;overflow\n",            # absurd level/seq
        b"\n", b"\x00" * 100, b";;;;", b"6,1,1,-",
    ]
    send_paced(bad, garbage + odd)
    n_before_flood = 1 + len(garbage) + len(odd)
    c0 = received(s, n_before_flood)
    assert c0["source.datagrams"] == n_before_flood, c0  # nothing lost before the flood

    flooder = s.sender("127.0.0.32")
    send_paced(flooder, flood_datagrams(1, FLOOD))
    c1 = received(s, n_before_flood + FLOOD)
    flood1 = c1["source.datagrams"] - n_before_flood
    # the flood's sets come out incomplete: fragment timeout and per-host cap
    wait_for(lambda: len(s.log_lines("127.0.0.32")) >= flood1, 30,
             message="flood records missing: %d of %d" % (len(s.log_lines("127.0.0.32")), flood1))
    rss_one = s.rss_kib()
    send_paced(flooder, flood_datagrams(FLOOD + 1, FLOOD))
    c2 = received(s, n_before_flood + 2 * FLOOD)
    flood2 = c2["source.datagrams"] - n_before_flood
    wait_for(lambda: len(s.log_lines("127.0.0.32")) >= flood2, 30,
             message="second flood records missing: %d of %d" % (len(s.log_lines("127.0.0.32")), flood2))
    rss_two = s.rss_kib()
    print("RSS KiB: start %d, after 1st flood %d, after 2nd flood %d; flood datagrams read %d, "
          "kernel drops %d" % (rss_start, rss_one, rss_two, flood2, c2.get("source.kernel_drops", 0)))

    assert s.alive()
    # still ingesting: a good record right after all that
    ok.send(ext(2, "alive after"))
    wait_for(lambda: "alive after" in s.read_log("127.0.0.30"), 5)

    # bounded: a second flood of the same size does not grow memory the way the first did
    assert rss_one - rss_start < 64 * 1024, (rss_start, rss_one)
    assert rss_two - rss_one < 16 * 1024, (rss_one, rss_two)

    # every datagram is accounted for: read by the source, or dropped by the kernel
    # (counted); the paced flood should mostly get through even on a busy machine
    n_sent = n_before_flood + 2 * FLOOD + 1
    c = received(s, n_sent)
    assert c["source.datagrams"] + c.get("source.kernel_drops", 0) == n_sent
    assert c["core.datagrams"] == c["source.datagrams"]
    assert flood2 >= 0.9 * 2 * FLOOD, flood2

    flood_lines = s.log_lines("127.0.0.32")
    assert len(flood_lines) == flood2  # every set read is emitted once, flagged incomplete
    assert all(line.endswith(" [incomplete]") for line in flood_lines)
    assert flood_lines[0].startswith(dmesg_prefix(5000001) + "00000001zzz")

    # the bad host's usable datagrams came out, visibly; nothing crashed on the rest
    text = s.read_log("127.0.0.31")
    assert "before\\x00after" in text
    assert "nul\\x00inside" in text
    assert "bad \\xff\\xfe utf8 \\xc3( end" in text

    assert c.get("source.core_errors", 0) == 0
    assert c.get("source.message_errors", 0) == 0
    assert c.get("source.loop_errors", 0) == 0
    assert c["core.dropped_empty"] >= 1
    assert c["core.dropped_bad_ncfrag"] >= 2
    assert c["core.fragments_incomplete"] >= flood2
    assert c.get("core.dropped_internal_error", 0) == 0
    print({k: v for k, v in c.items() if v})
