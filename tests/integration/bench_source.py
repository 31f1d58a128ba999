"""End-to-end rate of the collector: paced extended records into a real syslog-ng
running the project's SCL + drop-in (per-host files and whatever else the drop-in's
log path holds), counting what arrived and what the kernel dropped.

    /usr/bin/python3 tests/integration/bench_source.py [RATE ...] [-n N]

Prints, per rate: datagrams sent, read by the source, dropped by the kernel (socket
buffer full), lines written, and the time until the last line was written. Not a
test (pytest does not collect it); loopback only.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from harness.sng import Syslogng, wait_for  # noqa: E402
from ncdata import ext  # noqa: E402


def run(rate: float, n: int) -> dict:
    s = Syslogng().start()
    try:
        tx = s.sender("127.0.0.50")
        data = [ext(i, "nf_conntrack: table full, dropping packet %d" % i) for i in range(1, n + 1)]
        chunk = max(1, int(rate / 200))  # 5 ms slices
        t0 = time.monotonic()
        for i in range(0, n, chunk):
            tx.send_all(data[i:i + chunk])
            delay = t0 + (i + chunk) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent_in = time.monotonic() - t0

        def seen():
            c = s.stats().get("counters", {})
            return c.get("source.datagrams", 0) + c.get("source.kernel_drops", 0) >= n and c
        c = wait_for(seen, 120, interval=0.2)
        wait_for(lambda: len(s.log_lines("127.0.0.50")) >= c["source.datagrams"] - 1, 120, interval=0.1)
        done_in = time.monotonic() - t0
        return {"rate": rate, "sent": n, "send_s": round(sent_in, 2), "read": c["source.datagrams"],
                "kernel_drops": c.get("source.kernel_drops", 0), "lines": len(s.log_lines("127.0.0.50")),
                "all_written_s": round(done_in, 2), "load1": os.getloadavg()[0]}
    finally:
        s.cleanup()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rates", nargs="*", type=float, default=[2000, 5000, 10000])
    ap.add_argument("-n", type=int, default=20000, help="datagrams per rate (default 20000)")
    a = ap.parse_args(argv)
    for rate in a.rates:
        print(run(rate, a.n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
