#!/usr/bin/python3
"""Does a slow alert receiver slow ingestion? datagrams/s through a real syslog-ng.

Run: /usr/bin/python3 bench/bench_slow_webhook.py [--datagrams N] [--rate R]
     [--crashes C] [--delay S] [--repeats K]

Two configurations of the same real syslog-ng 3.38 (tests/harness/sng.py: the
project's SCL and drop-in, 127.0.0.1, a free port) get the same traffic:
  without: a netconsole_incidents() destination with alerts("no");
  with:    the same destination with webhook_url() pointing at a local HTTP
           server that takes --delay seconds (default 10) per request, and
           rate_limit("0") so every crash is an alert waiting for it.
Traffic: --datagrams extended-format records from 20 hosts, paced at --rate
datagrams/s, with --crashes kernel Oops reports of distinct signatures spread
through it (each one an alert), and a sentinel at the end: an Oops from one more
host followed by the start of a second report, which closes the first at once.

datagrams/s = datagrams sent / (time the sentinel incident was stored - time the
first datagram was sent), i.e. how fast the incidents destination got through
everything; and syslog-ng's CPU time (all threads, /proc/PID/stat) per datagram
over the same span, which depends less on other load on the machine. Also
printed: records the destination processed (its counters at shutdown), kernel
drops, alerts queued. A run where records were lost is not counted. Runs
alternate (without, with, ...) and the medians are compared; goal: ratio >= 0.95.
"""

import argparse
import json
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from harness.sng import Syslogng, available  # noqa: E402

OOPS = """\
BUG: kernel NULL pointer dereference, address: 0000000000000000
#PF: supervisor write access in kernel mode
#PF: error_code(0x0002) - not-present page
PGD 0 P4D 0
Oops: 0002 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 95 Comm: insmod Tainted: G           OE      6.1.0-27-amd64 #1  Debian 6.1.115-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:FUNC+0x15/0x1000 [nctest]
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
CR2: 0000000000000000 CR3: 0000000001a2e000 CR4: 00000000000006e0
Call Trace:
 <TASK>
 FUNC+0x15/0x1000 [nctest]
 do_one_initcall+0x56/0x220
 do_init_module+0x4a/0x1f0
 __do_sys_finit_module+0xac/0x120
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
Modules linked in: nctest(OE+) netconsole
CR2: 0000000000000000
---[ end trace 0000000000000000 ]---
""".splitlines()
NORMAL = "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx"


class Stream:
    """One sender host: extended records with its own sequence numbers."""

    def __init__(self, port, src):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((src, 0))
        self.dst = ("127.0.0.1", port)
        self.seq = 0

    def datagram(self, text):
        self.seq += 1
        return ("6.1.0-27-amd64,4,%d,%d,-;%s\n" % (self.seq, self.seq * 1000, text)).encode()

    def send(self, text):
        self.sock.sendto(self.datagram(text), self.dst)


def traffic(n, crashes):
    """[(stream index, text)]: normal lines from 20 hosts, crash reports spread in."""
    out = []
    # crashes in the first 60 %: each ends by a timer (1 s hold of a stream's last
    # record in the source + 2 s grace in the detector), all before the sentinel
    crash_every = max(1, int(n * 0.6) // (crashes + 1))
    c = 0
    i = 0
    while len(out) < n:
        if i and i % crash_every == 0 and c < crashes:
            host = 20 + c % 40          # crash hosts 127.0.1.x
            out.extend((host, l.replace("FUNC", "bench_func_%d" % c)) for l in OOPS)
            c += 1
        out.append((i % 20, "%s seq %d" % (NORMAL, i)))
        i += 1
    return out[:n], c


class SlowHook:
    def __init__(self, delay):
        self.count = 0
        self.delay = delay
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(outer.delay)
                outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass            # syslog-ng stopped while a request was waiting

        self.httpd = Server(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def prelude(state, opts):
    args = " ".join('%s("%s")' % kv for kv in opts.items())
    return ('destination d_bench {\n    netconsole_incidents(state_dir("%s") persist-name("bench")\n'
            '        %s);\n};\nlog { source(s_netconsole); destination(d_bench); };\n'
            % (state, args))


def sentinel_time(state, title_part, timeout):
    p = pathlib.Path(state) / "incidents.jsonl"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.exists():
            for line in p.read_text().splitlines():
                d = json.loads(line)
                if title_part in d.get("title", ""):
                    return d["stored_at"]
        time.sleep(0.05)
    return None


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_incidents(state, n, timeout):
    p = pathlib.Path(state) / "incidents.jsonl"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.exists() and len(p.read_text().splitlines()) >= n:
            return True
        time.sleep(0.1)
    return False


def one_run(tmp, label, opts, n, rate, crashes):
    state = tmp / ("state-" + label)
    sng = Syslogng(tmp / ("sng-" + label), prelude=prelude(state, opts))
    sng.start()
    try:
        plan, ncrash = traffic(n, crashes)
        streams = {}

        def stream(h):
            if h not in streams:
                src = "127.0.0.%d" % (10 + h) if h < 20 else "127.0.1.%d" % (h - 19)
                streams[h] = Stream(sng.port, src)
            return streams[h]
        payloads = [(stream(h), stream(h).datagram(t)) for h, t in plan]
        sent = 0
        cpu0 = cpu_seconds(sng.pid)
        t0 = time.time()
        start = time.monotonic()
        for i in range(0, len(payloads), 50):
            for s, d in payloads[i:i + 50]:
                s.sock.sendto(d, s.dst)
                sent += 1
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        # the sentinel: an Oops, then the start of another report closes it at once
        last = Stream(sng.port, "127.0.2.1")
        for line in OOPS:
            last.send(line.replace("FUNC", "bench_sentinel"))
        last.send("BUG: kernel NULL pointer dereference, address: 0000000000000008")
        send_time = time.time() - t0
        stored = sentinel_time(state, "bench_sentinel", 60)
        elapsed = (stored - t0) if stored is not None else float("nan")
        cpu = cpu_seconds(sng.pid) - cpu0
        wait_incidents(state, ncrash + 1, 10)       # not timed: for the alert counts
    finally:
        sng.stop()
    stats = json.loads((state / "incidents-stats.json").read_text())
    alerts = 0
    ob = state / "outbox.db"
    if ob.exists():
        import sqlite3
        db = sqlite3.connect(str(ob))
        alerts = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        db.close()
    total = sent + len(OOPS) + 1
    src = sng.stats().get("counters", {})
    return {"kernel_drops": src.get("source.kernel_drops", 0), "config": label, "datagrams": total, "send_s": round(send_time, 3),
            "elapsed_s": round(elapsed, 3),
            "dgram_per_s": round(total / elapsed) if elapsed == elapsed else None,
            "cpu_us_per_dgram": round(cpu / total * 1e6, 1),
            "records": stats.get("records"), "incidents": stats.get("incidents"),
            "crash_reports": ncrash + 1, "alerts_queued": alerts}


def submit_cost(hook_url, tmp, n=300):
    """What the incidents destination's thread pays per incident: Dispatcher.submit()
    (policy + one SQLite transaction) with the slow webhook channel active."""
    from syslogng_netconsole.alerts import config
    from syslogng_netconsole.alerts.dispatcher import Dispatcher
    from syslogng_netconsole.incidents.incident import Incident
    d = Dispatcher(config.from_options({"webhook-url": hook_url, "rate-limit": "0"}),
                   str(tmp / "submit-cost"))
    d.start()
    text = "\n".join(OOPS)
    times = []
    try:
        for i in range(n):
            inc = Incident(host="10.0.%d.%d" % (i // 250, i % 250), type="NULL-POINTER-DEREFERENCE",
                           title="BUG: unable to handle kernel NULL pointer dereference in f%d" % i,
                           signature="sig-%d" % i, text=text, first_seq=i, first_ts_us=i)
            t = time.perf_counter()
            d.submit(inc)
            times.append(time.perf_counter() - t)
    finally:
        d.stop(timeout=0.2)
    times.sort()
    return times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=18000)
    ap.add_argument("--rate", type=float, default=3000.0)
    ap.add_argument("--crashes", type=int, default=40)
    ap.add_argument("--delay", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    why = available()
    if why:
        print("skipped: %s" % why)
        return 0
    hook = SlowHook(args.delay)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-slow-webhook-"))
    results = {"without": [], "with": []}
    try:
        for r in range(args.repeats):
            for label, opts in (("without", {"alerts": "no"}),
                                ("with", {"webhook_url": hook.url, "rate_limit": "0",
                                          "alert_timeout": str(args.delay * 3)})):
                res = one_run(tmp, "%s-%d" % (label, r), opts, args.datagrams, args.rate,
                              args.crashes)
                res["webhook_requests_done"] = hook.count
                print(json.dumps(res), flush=True)
                if res["dgram_per_s"] is None or res["records"] != res["datagrams"]:
                    print("  (run not counted: %d of %d records reached the destination; "
                          "the machine is overloaded at this --rate)"
                          % (res["records"] or 0, res["datagrams"]), flush=True)
                    continue
                results[label].append(res)
        med_s, p99 = submit_cost(hook.url, tmp)
    finally:
        hook.stop()
        shutil.rmtree(str(tmp), ignore_errors=True)
    if not results["without"] or not results["with"]:
        print("no valid run in one configuration: lower --rate")
        return 1
    med = {k: (statistics.median(r["dgram_per_s"] for r in v),
               statistics.median(r["cpu_us_per_dgram"] for r in v)) for k, v in results.items()}
    print("valid runs: %d without, %d with" % (len(results["without"]), len(results["with"])))
    print("median datagrams/s: without alerts %d, with a %g s webhook %d: ratio %.3f "
          "(goal >= 0.95)" % (med["without"][0], args.delay, med["with"][0],
                              med["with"][0] / med["without"][0]))
    print("median syslog-ng CPU per datagram: without %.1f us, with %.1f us: capacity ratio "
          "%.3f" % (med["without"][1], med["with"][1], med["without"][1] / med["with"][1]))
    print("Dispatcher.submit() per incident with the slow webhook active: median %.2f ms, "
          "99th percentile %.2f ms (paid once per incident, not per datagram)" % (med_s, p99))
    return 0


if __name__ == "__main__":
    sys.exit(main())
