"""What a SIGKILL of syslog-ng still loses, measured: per-host log lines and incidents.

A benchmark, not a test. Per rate and trial: a fresh drop-in collector (the harness's
Syslogng: SCL + unmodified conf.d drop-in, alerts off), HOSTS senders streaming
extended records at an aggregate rate (every CRASH_EVERY-th host also sends a short
Oops, no end marker), the senders stop, the socket's receive queue is waited empty
(the source has read every datagram; --during: not waited for), then syslog-ng is
killed with SIGKILL at once.
A second syslog-ng is started on the same state; the figures:
  lines lost   datagrams read by the source but missing from the per-host files
               (syslog-ng's memory queues and file buffers): count and ms of traffic
  incidents    stored after the restart vs reports sent (the journal: expected all)

    /usr/bin/python3 bench/sigkill_window.py [--rates 1000,10000] [--trials 5] [--hosts 20]
"""

import argparse
import os
import pathlib
import random
import signal
import socket
import sqlite3
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from harness import samples  # noqa: E402
from harness.sng import Syslogng, _udp_sockets, wait_for  # noqa: E402

CRASH_EVERY = 5


def rx_queue(port):
    for fields in _udp_sockets(port):
        return int(fields[4].split(":")[1], 16)
    return 0


def stored(statedir):
    p = pathlib.Path(statedir) / "incidents.sqlite"
    if not p.exists():
        return 0
    db = sqlite3.connect("file:%s?mode=ro" % p, uri=True, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def trial(tmp, rate, hosts, seconds, rng, during=False):
    sng = Syslogng(tmp)
    sng.start()
    addrs = ["127.0.4.%d" % (i + 1) for i in range(hosts)]
    socks = []
    for a in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a, 6665))
        socks.append(s)
    seq = {a: 0 for a in addrs}
    oops = [a for i, a in enumerate(addrs) if i % CRASH_EVERY == 0]
    oops_at = {a: rng.randrange(int(rate * seconds * 0.5)) for a in oops}
    sent, n_total = 0, int(rate * seconds)
    t0 = time.monotonic()
    for n in range(n_total):
        i = n % hosts
        a = addrs[i]
        text = "bench line %d of %s" % (seq[a], a)
        if a in oops_at and n >= oops_at[a] and seq[a] < 10 ** 6:
            for line in samples.OOPS_LINES[:25]:        # a report, its end never sent
                socks[i].sendto(("4,%d,%d,-;%s\n" % (seq[a], seq[a] * 100, line)).encode(),
                                ("127.0.0.1", sng.port))
                seq[a] += 1
                sent += 1
            del oops_at[a]
        socks[i].sendto(("6,%d,%d,-;%s\n" % (seq[a], seq[a] * 100, text)).encode(),
                        ("127.0.0.1", sng.port))
        seq[a] += 1
        sent += 1
        delay = t0 + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if not during:
        wait_for(lambda: rx_queue(sng.port) == 0, 30)
    queued = rx_queue(sng.port)
    os.kill(sng.proc.pid, signal.SIGKILL)
    sng.proc.wait(10)
    sng.stop()
    written = sum(len(sng.log_lines(a)) for a in addrs)
    again = Syslogng(tmp, port=sng.port)
    again.start()
    try:
        got = wait_for(lambda: stored(again.statedir) >= len(oops), 30) and stored(again.statedir)
        time.sleep(1.0)
        got = stored(again.statedir)
    finally:
        again.stop()
        for s in socks:
            s.close()
    return sent, written, got, len(oops), queued


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="1000,10000")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--during", action="store_true",
                    help="kill as soon as the senders stop, without waiting for the socket "
                         "queue to drain (the kernel's queue dies with the socket too)")
    args = ap.parse_args(argv)
    import tempfile
    rng = random.Random(1)
    print("| rate/s | trial | sent | socket queue at kill (bytes) | in files | lost lines |"
          " lost ms of traffic | incidents stored / reports sent |")
    print("|---|---|---|---|---|---|---|---|")
    for rate in [int(r) for r in args.rates.split(",")]:
        for t in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="sigkill-") as tmp:
                sent, written, got, want, queued = trial(tmp, rate, args.hosts, args.seconds,
                                                         rng, args.during)
            print("| %d | %d | %d | %d | %d | %d | %.1f | %d / %d |" % (
                rate, t + 1, sent, queued, written, sent - written,
                1000.0 * (sent - written) / rate, got, want), flush=True)


if __name__ == "__main__":
    main()
