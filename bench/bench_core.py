#!/usr/bin/python3
"""Throughput of the pure core (wire decoding + reassembly), records per second.

Run: /usr/bin/python3 bench/bench_core.py [--datagrams N] [--hosts H] [--seed S]

A realistic mix from several hosts, interleaved: plain console lines (some
multi-line, some cut at 1000 bytes), extended records (with dictionary and
userdata lines, some escaped text, some fragmented with ncfrag, some 'c'
continuations). The core is driven like the syslog-ng glue drives it: one
process() per datagram, records() drained, expire() whenever next_deadline()
has passed. The baseline, measured in the same run over the same datagrams,
is a bare split-and-decode loop (the least any receiver must do).
Times are CPU time of this process (time.process_time), best of --repeat runs,
so that other jobs on a shared machine disturb the figure less.
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from syslogng_netconsole.ingest.reassembly import ReassemblyLimits, Reassembler  # noqa: E402

WORDS = (b"e1000e eth0 NIC Link is Up 1000 Mbps Full Duplex Flow Control RX/TX usb 1-1 new "
         b"high-speed device number 2 using xhci_hcd EXT4-fs mounted filesystem with ordered "
         b"data mode audit type=1400 apparmor=STATUS operation=profile_load").split()


def _text(rnd, lo, hi):
    n = rnd.randint(lo, hi)
    return b" ".join(rnd.choice(WORDS) for _ in range(n))


def _escape(b):
    return b"".join(("\\x%02x" % c).encode() if c < 0x20 or c >= 0x7f or c == 0x5c else bytes((c,))
                    for c in b)


def make_mix(n, hosts, seed):
    """Returns [(payload, host, src_port)] and the number of records it encodes."""
    rnd = random.Random(seed)
    streams = {}
    out = []
    records = 0
    for i in range(hosts):
        streams[i] = {"seq": rnd.randint(100, 100000), "ts": rnd.randint(10 ** 6, 10 ** 10),
                      "plain": i % 3 == 0}
    while len(out) < n:
        h = rnd.randrange(hosts)
        st = streams[h]
        host = "10.1.%d.%d" % (h // 250, h % 250 + 1)
        st["ts"] += rnd.randint(10, 50000)
        st["seq"] += 1 if rnd.random() < 0.9 else rnd.randint(2, 5)
        sec, usec = divmod(st["ts"], 10 ** 6)
        x = rnd.random()
        if st["plain"]:
            pre = b"[%5d.%06d] " % (sec, usec)
            if x < 0.85:
                out.append((pre + _text(rnd, 4, 20) + b"\n", host))
                records += 1
            elif x < 0.97:
                k = rnd.randint(2, 6)
                out.append((b"".join(pre + _text(rnd, 3, 12) + b"\n" for _ in range(k)), host))
                records += k
            else:
                line = pre + _text(rnd, 200, 220)[:1400] + b"\n"
                for o in range(0, len(line), 1000):
                    out.append((line[o:o + 1000], host))
                records += 1
            continue
        hdr = b"%d,%d,%d,-" % (rnd.choice((4, 6, 6, 6, 7)), st["seq"], st["ts"])
        if x < 0.70:
            out.append((hdr + b";" + _text(rnd, 4, 20) + b"\n", host))
            records += 1
        elif x < 0.82:
            body = _escape(_text(rnd, 4, 12) + " caf\u00e9 \\ ok".encode()) + \
                b"\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n"
            out.append((hdr + b";" + body, host))
            records += 1
        elif x < 0.94:
            body = _text(rnd, 150, 200)[:1900] + b"\n host=web%02d\n role=db\n cpu=3\n" % h
            total = len(body)
            frags = []
            off = 0
            while off < total:
                prefix = hdr + b",ncfrag=%d/%d;" % (off, total)
                room = 1000 - len(prefix)
                frags.append((prefix + body[off:off + room], host))
                off += room
            if rnd.random() < 0.2:
                frags.reverse()
            out.extend(frags)
            records += 1
        else:
            out.append((hdr + b";" + _text(rnd, 3, 8) + b"\n", host))
            st["seq"] += 1
            st["ts"] += 5
            out.append((b"4,%d,%d,c;" % (st["seq"], st["ts"]) + _text(rnd, 1, 4) + b"\n", host))
            records += 1        # joined into its parent
    return out, records


def run_core(mix):
    r = Reassembler(ReassemblyLimits())
    now = 0.0
    n = 0
    proc = r.process
    t0 = time.process_time()
    for i, (payload, host) in enumerate(mix):
        now += 2e-5
        if (i & 63) == 0:
            dl = r.next_deadline()
            if dl is not None and dl <= now:
                r.expire(now)
        proc(payload, host, 6665, 6666, now)
        n += len(r.records())
    r.flush(now + 10)
    n += len(r.records())
    return time.process_time() - t0, n, r.counters


def run_baseline(mix):
    t0 = time.process_time()
    n = 0
    for payload, host in mix:
        for line in payload.split(b"\n"):
            if line:
                line.decode("utf-8", "backslashreplace")
                n += 1
    return time.process_time() - t0, n


def run_memory():
    """Peak Python memory of the core under hostile floods (tracemalloc)."""
    import tracemalloc
    cases = []
    # 10,000 distinct incomplete fragment sets (900 bytes each) from one host
    cases.append(("10k incomplete fragment sets, 1 host",
                  [(b"6,%d,%d,-,ncfrag=0/5000;" % (i, i) + b"z" * 900, "10.0.0.1")
                   for i in range(10000)]))
    # 4096 hosts each leaving a fragment set, a cut plain line and a held record
    flood = []
    for i in range(4096):
        h = "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
        flood.append((b"6,1,1,-,ncfrag=0/16000;" + b"f" * 960, h))
        flood.append((b"6,5,5,-;" + b"h" * 900 + b"\n", h))     # held: waits for seq 2-4
        flood.append((b"[    1.000000] " + b"p" * 985, h))       # cut plain line
    cases.append(("4096 hosts x (open fragment set + held record + cut line)", flood))
    for name, dgs in cases:
        tracemalloc.start()
        r = Reassembler(ReassemblyLimits())
        for i, (p, h) in enumerate(dgs):
            r.process(p, h, 6665, 6666, i * 1e-6)
            r.records()
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print("memory: %-60s peak %6.1f MiB, held %6.1f MiB, pending_bytes %d, drops %s"
              % (name, peak / 2 ** 20, cur / 2 ** 20, r.pending_bytes,
                 {k: v for k, v in r.counters.items()
                  if v and (k.startswith("dropped_") or k in ("fragments_evicted", "evicted",
                                                               "forced_flushes"))}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=200000)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    ap.add_argument("--memory", action="store_true", help="also measure memory under floods")
    a = ap.parse_args()
    if a.memory:
        run_memory()
    mix, expect = make_mix(a.datagrams, a.hosts, a.seed)
    core_t = base_t = float("inf")
    for _ in range(a.repeat):
        t, n, counters = run_core(mix)
        core_t = min(core_t, t)
        bt, bn = run_baseline(mix)
        base_t = min(base_t, bt)
    drops = {k: v for k, v in counters.items() if k.startswith("dropped_") and v}
    print("python %s, %d datagrams (%d bytes) from %d hosts, %d records (mix encodes %d)"
          % (sys.version.split()[0], len(mix), sum(len(p) for p, _ in mix), a.hosts, n, expect))
    print("core:     %8.3f s  %9.0f records/s  %9.0f datagrams/s  (%.2f us/datagram)"
          % (core_t, n / core_t, len(mix) / core_t, core_t / len(mix) * 1e6))
    print("baseline: %8.3f s  %9.0f lines/s    (bare split + decode of the same datagrams)"
          % (base_t, bn / base_t))
    print("ratio core/baseline time: %.1fx" % (core_t / base_t))
    print("counters: fragments=%d fragments_incomplete=%d continued=%d lines_joined=%d "
          "lost=%d duplicates=%d drops=%s"
          % (counters["fragments"], counters["fragments_incomplete"], counters["continued"],
             counters["lines_joined"], counters["lost"], counters["duplicates"], drops or "none"))
    if n != expect:
        print("WARNING: record count differs from the mix", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
