"""End-to-end rate of the collector against a plain `udp() -> file()` baseline.

One real syslog-ng runs the project's SCL + drop-in (the netconsole() source, per-host
files, the incidents destination) and, beside it, syslog-ng's own
`udp(flags(no-parse)) -> file()` on another port: the reference the project's path is
compared with, measured in the same run on the same machine. The same paced extended
records go to each in turn.

    /usr/bin/python3 bench/bench_source.py [RATE ...] [-n N]

Prints, per rate and path: datagrams sent, dropped by the kernel (socket buffer full),
lines written, the time until the last line was written, and the ratio
project/baseline of lines written. Loopback only.
"""

import argparse
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from harness.ncdata import ext  # noqa: E402
from harness.sng import Sender, Syslogng, free_udp_port, udp_socket_drops  # noqa: E402

HOST = "127.0.0.50"
# syslog-ng's own path for the same traffic, beside the project's in one daemon
BASELINE = """
source s_bench_baseline { udp(ip("127.0.0.1") port(%d) flags(no-parse) so-rcvbuf(4194304)); };
destination d_bench_baseline { file("%s"); };
log { source(s_bench_baseline); destination(d_bench_baseline); };
"""


def kernel_drops(port: int) -> int:
    return udp_socket_drops(port) or 0


def _count_lines(path: pathlib.Path) -> int:
    try:
        with open(str(path), "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def send_paced(tx: Sender, data, rate: float) -> float:
    chunk = max(1, int(rate / 200))  # 5 ms slices
    t0 = time.monotonic()
    for i in range(0, len(data), chunk):
        tx.send_all(data[i:i + chunk])
        delay = t0 + (i + chunk) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return t0


def measure(port: int, lines, rate: float, n: int, data) -> dict:
    """Send n records to port; wait until every datagram is written or dropped."""
    tx = Sender(HOST, port)
    try:
        t0 = send_paced(tx, data, rate)
    finally:
        tx.close()
    last, since = -1, time.monotonic()
    while time.monotonic() - since < 3.0 and time.monotonic() - t0 < 300:
        got = lines() + kernel_drops(port)
        if got != last:
            last, since = got, time.monotonic()
        if got >= n:
            break
        time.sleep(0.1)
    return {"lines": lines(), "kernel_drops": kernel_drops(port),
            "all_written_s": round(time.monotonic() - t0, 2)}


def run(rate: float, n: int) -> dict:
    base_port = free_udp_port()
    s = Syslogng()
    s.prelude = BASELINE % (base_port, s.tmp / "baseline.log")
    s.start()
    try:
        data = [ext(i, "nf_conntrack: table full, dropping packet %d" % i) for i in range(1, n + 1)]
        base = measure(base_port, lambda: _count_lines(s.tmp / "baseline.log"), rate, n, data)
        proj = measure(s.port, lambda: _count_lines(s.log_path(HOST)), rate, n, data)
        return {"rate": rate, "sent": n, "baseline": base, "netconsole": proj,
                "ratio_lines": round(proj["lines"] / max(1, base["lines"]), 3),
                "load1": round(os.getloadavg()[0], 2)}
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
