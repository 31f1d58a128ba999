#!/usr/bin/python3
"""What the incidents destination costs the collector: the same paced datagrams
(plain kernel lines from 4 senders) through a real syslog-ng 3.38 running the
drop-in with and without `netconsole_incidents()`.

For each rate: lines written to the per-host files, records the incidents
destination saw (its counters file), the source's kernel drops, and how long after
the first datagram the last line was on disk.

    /usr/bin/python3 bench/bench_incidents.py [--rates 5000,10000,20000] [-n 20000]
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import harness.sng as H  # noqa: E402

SENDERS = 4


def dropin_without_incidents(tmp: pathlib.Path) -> pathlib.Path:
    text = H.DROPIN.read_text()
    text = text.replace("    destination(d_netconsole_incidents);\n", "")
    out = tmp / "netconsole-noincidents.conf"
    out.write_text(text)
    return out


def one_run(tmp, rate, n, with_dest):
    H.DROPIN = REPO / "conf.d" / "netconsole.conf" if with_dest else dropin_without_incidents(tmp)
    sng = H.Syslogng(tmp / ("%s-%d" % ("with" if with_dest else "without", rate))).start()
    hosts = ["127.0.0.%d" % (i + 2) for i in range(SENDERS)]
    tx = [sng.sender(h) for h in hosts]
    lines = [("[%5d.%06d] e1000e 0000:00:19.0 eth0: ordinary kernel line %d of the benchmark\n"
              % (i // 1000000, i % 1000000, i)).encode() for i in range(n)]
    t0 = time.monotonic()
    for i, p in enumerate(lines):
        tx[i % SENDERS].send(p)
        if i % 50 == 49:
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    sent = time.monotonic() - t0

    def written():
        return sum(len(sng.log_lines(h)) for h in hosts)
    try:
        H.wait_for(lambda: written() >= n, 60)
    except AssertionError:
        pass
    drained = time.monotonic() - t0
    time.sleep(1.0)
    counters = sng.stats().get("counters", {})
    sng.stop()
    stats_file = sng.statedir / "incidents-stats.json"
    dest = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return {"rate": rate, "with_incidents": with_dest, "sent_s": round(sent, 2),
            "written": written(), "dest_records": dest.get("records"),
            "kernel_drops": counters.get("source.kernel_drops", 0),
            "drained_s": round(drained, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="5000,10000,20000")
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-incidents-"))
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            for with_dest in (False, True):
                r = one_run(tmp, rate, args.n, with_dest)
                print("%6d/s %-17s sent in %5.2fs  written %6d/%d  incidents dest saw %6s  "
                      "kernel drops %5d  last line on disk after %5.2fs"
                      % (rate, "with incidents" if with_dest else "without incidents",
                         r["sent_s"], r["written"], args.n, r["dest_records"],
                         r["kernel_drops"], r["drained_s"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
