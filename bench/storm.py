"""Crash storm, fleet boot and drain capacity of the whole collector, against baselines.

A benchmark, not a test: it prints markdown tables with ratios against baselines measured
in the same run, on the same machine, with the same traffic. Every receiver is a fresh
process per measurement; every wait is bounded; sysctls are restored at the end.

    /usr/bin/python3 bench/storm.py [--quick] [--scenarios S1,S2,S3] [--rates 10000,20000,40000]
                                    [--netconsd PATH] [--json OUT] [--define NAME=VALUE] [--names]
                                    [--s3-repeat N]

Traffic (loopback only; each sender socket is bound to its own 127.x.y.z address):
  crash part  the datagrams of tests/fixtures/kernel-6.1-extended-oops-panic.pcap from the
              first line of the report ("BUG: kernel NULL pointer dereference") to the end
              of the panic ("Rebooting in 2 seconds..") -- 58 extended datagrams per host.
  boot part   the first 40 datagrams of the same capture (the boot log).

Receivers (each a fresh daemon):
  drop-in       the project: tests/harness/sng.py's Syslogng (SCL + unmodified conf.d drop-in:
                netconsole() source, per-host files, the Python incidents destination).
  udp()->file() syslog-ng's own `udp(flags(no-parse) so-rcvbuf(N))` with `use-dns(no)`, to
                per-host files `${SOURCEIP}.log` (the same split as the drop-in's files:
                "udp"), and to ONE file (template "${SOURCEIP} ${MSG}": "udp1", S1 and S3),
                each in a daemon of its own (the harness always loads the drop-in too: idle).
  netconsd      optional (--netconsd PATH): facebook/netconsd with modules/printer.so (one
                stdout line per record, "<addr>: S<seq> ..."), counted per host at the end.
  noop          (S3 only) bench/noop_source.py: a python() source reading the socket with
                recvfrom, posting nothing ("recv only"), or one LogMessage per datagram to
                per-host file()s ("post -> file").

Expected output per host (drop-in): the per-host log of ONE host that sent the same
datagrams at 500/s to a fresh collector in this run (the "reference", column "complete"
compares each host's file byte for byte with it); its line count is checked against the
decoded fixture log restricted to the same records (tests/fixtures/*.decoded.log from the
report's first line to the end), which is printed beside it. udp()/netconsd: one line per
datagram.

Socket buffers: every receiver of a scenario gets the same size. The drop-in takes it
through its `netconsole_rcvbuf` define (default 256 MiB, the drop-in's own default;
--s1-rcvbuf changes S1's), the udp() baselines through so-rcvbuf(). Where a receiver
sets none itself (netconsd), the receiving socket's buffer is set from outside after
start: pidfd_getfd() duplicates the receiver's socket into this process and
SO_RCVBUFFORCE is applied to the shared socket. The "rcvbuf" column shows what the kernel
reports for every receiver's socket (getsockopt / 2).

Kernel drops and queue: /proc/net/udp and /proc/net/udp6 (drops column, rx_queue) of the
receiving socket. RSS: VmRSS of the syslog-ng process plus its children (the detection
worker).
"""

import argparse
import ctypes
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path[:0] = [str(REPO / "tests")]

import harness.sng  # noqa: E402
from harness.sng import Syslogng, child_pids, free_udp_port  # noqa: E402

CODE = REPO  # the package the daemons import (a snapshot of it by default, see snapshot())

FIXTURE = REPO / "tests" / "fixtures" / "kernel-6.1-extended-oops-panic.pcap"
DECODED = FIXTURE.with_suffix(".decoded.log")
CRASH_START = b"BUG: kernel NULL pointer dereference"
BOOT_DATAGRAMS = 40
MiB = 1 << 20
S1_RCVBUF = 256 * MiB        # the drop-in's default (netconsole_rcvbuf); --s1-rcvbuf
S3_RCVBUF = 256 * MiB
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SYS_pidfd_getfd = 438
WALL_LIMIT = 1500            # the whole run stops after this many seconds (between runs)

_libc = ctypes.CDLL(None, use_errno=True)
_ACTIVE = []                 # receivers to stop on any exit
T_START = time.monotonic()


def log(*a):
    print("[%6.1fs]" % (time.monotonic() - T_START), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- traffic

def capture_reader():
    if str(CODE) not in sys.path:
        sys.path.insert(0, str(CODE))
    try:
        from syslogng_netconsole.ingest.capture import CaptureReader
    except ImportError:  # before the restructuring
        from syslogng_netconsole.pcap import CaptureReader
    return CaptureReader


def snapshot(dest, wait=120.0):
    """Copy syslogng_netconsole/ and conf.d/netconsole.conf to dest once the copy imports
    (the sng source and destination modules named in the SCL) under /usr/bin/python3,
    then point the harness at the copy: the code under test cannot change during the run
    (the work tree is being edited in parallel). Returns a description."""
    global CODE
    deadline = time.monotonic() + wait
    attempt = 0
    while True:
        attempt += 1
        shutil.rmtree(str(dest), ignore_errors=True)
        shutil.copytree(str(REPO / "syslogng_netconsole"), str(dest / "syslogng_netconsole"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        (dest / "conf.d").mkdir(parents=True)
        shutil.copy2(str(REPO / "conf.d" / "netconsole.conf"), str(dest / "conf.d" / "netconsole.conf"))
        scl = (dest / "syslogng_netconsole" / "scl" / "netconsole.conf").read_text()
        mods = sorted({m.rsplit(".", 1)[0] for m in re.findall(r'class\("([\w.]+)"\)', scl)})
        r = subprocess.run(["/usr/bin/python3", "-c", "import importlib,sys\nfor m in sys.argv[1:]: "
                            "importlib.import_module(m)"] + mods, cwd=str(dest), capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1"))
        if r.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the package does not import (%s): %s" % (mods, r.stderr[-800:]))
        log("snapshot %d does not import yet (%s); retrying in 5 s"
            % (attempt, (r.stderr.strip().splitlines() or ["?"])[-1]))
        time.sleep(5)
    CODE = dest
    harness.sng.SCL = dest / "syslogng_netconsole" / "scl" / "netconsole.conf"
    harness.sng.DROPIN = dest / "conf.d" / "netconsole.conf"
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "syslogng_netconsole",
                            "conf.d"], capture_output=True, text=True).stdout.count("\n")
    return "snapshot of the work tree at %s (HEAD %s + %d changed paths), modules %s" % (
        time.strftime("%H:%M:%S"), head, dirty, ", ".join(mods))


def load_traffic(pcap=FIXTURE):
    CaptureReader = capture_reader()
    packets = [p.payload for p in CaptureReader(str(pcap))]
    start = next(i for i, p in enumerate(packets) if CRASH_START in p)
    crash = packets[start:]
    boot = packets[:BOOT_DATAGRAMS]
    dec = DECODED.read_text(errors="replace").splitlines()
    first = next(i for i, line in enumerate(dec) if CRASH_START.decode() in line)
    return {"crash": crash, "boot": boot, "crash_index": start,
            "crash_expected_decoded": len(dec) - first}


def lines_of(payloads):
    """Lines syslog-ng's udp() / netconsd write for these datagrams (one per line)."""
    return sum(p.rstrip(b"\n").count(b"\n") + 1 for p in payloads)


def host_addr(octet2, i):
    return "127.%d.%d.%d" % (octet2, i // 250, i % 250 + 1)


class Fleet:
    """n UDP sockets, each bound to its own loopback address 127.<octet2>.x.y."""

    def __init__(self, octet2, n):
        self.addrs = [host_addr(octet2, i) for i in range(n)]
        self.socks = []
        try:
            for a in self.addrs:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((a, 0))
                self.socks.append(s)
        except Exception:
            self.close()
            raise

    def send(self, port, payloads, rate):
        """Every payload from every host, interleaved (datagram k of every host, then k+1),
        paced at `rate` datagrams/s aggregate (0 = as fast as possible).
        Returns (sent, errors, monotonic start, monotonic end, wall end)."""
        dst = ("127.0.0.1", port)
        sendtos = [s.sendto for s in self.socks]
        chunk = max(1, int(rate * 0.002)) if rate else 1 << 30  # pace in 2 ms slices
        sent = errors = 0
        t0 = time.monotonic()
        for p in payloads:
            for st in sendtos:
                try:
                    st(p, dst)
                except OSError:
                    errors += 1
                sent += 1
                if sent % chunk == 0:
                    delay = t0 + sent / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        t1 = time.monotonic()
        return sent, errors, t0, t1, time.time()

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


# ---------------------------------------------------------------- kernel views

def udp_rows(port):
    """The sockets bound to local `port` (udp and udp6): rx_queue bytes, drops, inode."""
    hexport = ":%04X" % port
    rows = []
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fl = line.split()
                    if fl[1].endswith(hexport):
                        rows.append({"rx_queue": int(fl[4].split(":")[1], 16),
                                     "drops": int(fl[-1]), "inode": int(fl[9])})
        except OSError:
            pass
    return rows


def drops(port):
    return sum(r["drops"] for r in udp_rows(port))


def rx_queue(port):
    return sum(r["rx_queue"] for r in udp_rows(port))


def _socket_fds(pid, port):
    inodes = {r["inode"] for r in udp_rows(port)}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", link)
        if m and int(m.group(1)) in inodes:
            yield int(name)


def receiver_rcvbuf(pid, port, force=None):
    """SO_RCVBUF (as the kernel reports it, /2) of pid's socket(s) on port; with force,
    set it first (SO_RCVBUFFORCE on a pidfd_getfd() duplicate: the same socket)."""
    sizes = []
    pidfd = os.pidfd_open(pid)
    try:
        for fd in _socket_fds(pid, port):
            nfd = _libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
            if nfd < 0:
                raise OSError(ctypes.get_errno(), "pidfd_getfd(%d, %d)" % (pid, fd))
            s = socket.socket(fileno=nfd)
            try:
                if force:
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, force)
                sizes.append(s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2)
            finally:
                s.close()  # our duplicate only
    finally:
        os.close(pidfd)
    return sizes


def sysctl_get(name):
    return open("/proc/sys/" + name.replace(".", "/")).read().strip()


def sysctl_set(name, value):
    subprocess.run(["sysctl", "-q", "-w", "%s=%s" % (name, value)], check=True)


def nofile_of(pid):
    try:
        for line in open("/proc/%d/limits" % pid):
            if line.startswith("Max open files"):
                return "%s/%s" % tuple(line.split()[3:5])
    except OSError:
        pass
    return "?"


def rss_kib(pid):
    """VmRSS of the receiver and of its child processes (the detection worker)."""
    total = None
    for p in [pid] + child_pids(pid):
        try:
            m = re.search(r"^VmRSS:\s+(\d+)", open("/proc/%d/status" % p).read(), re.M)
            total = (total or 0) + int(m.group(1))
        except (OSError, AttributeError):
            if p == pid:
                return None
    return total


def dir_size(d):
    total = 0
    try:
        with os.scandir(str(d)) as it:
            for e in it:
                try:
                    total += e.stat().st_size
                except OSError:
                    pass
    except FileNotFoundError:
        pass
    return total


def dir_texts(d, suffix=".log"):
    out = {}
    try:
        for e in os.scandir(str(d)):
            if e.name.endswith(suffix):
                with open(e.path, "rb") as f:
                    out[e.name[:-len(suffix)]] = f.read()
    except FileNotFoundError:
        pass
    return out


def incidents(statedir):
    """What <statedir>/incidents.sqlite holds (read only)."""
    path = pathlib.Path(statedir) / "incidents.sqlite"
    empty = {"n": 0, "truncated": 0, "panicked": 0, "hosts": 0, "last_stored": None, "titles": {},
             "named": 0, "named_by_rdns": 0}
    if not path.exists():
        return empty
    try:
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            n, trunc, pan, hosts, last = con.execute(
                "SELECT count(*), coalesce(sum(truncated),0), coalesce(sum(panicked),0), "
                "count(DISTINCT host), max(stored_at) FROM incidents").fetchone()
            titles = dict(con.execute("SELECT title, count(*) FROM incidents GROUP BY title "
                                      "ORDER BY 2 DESC LIMIT 5").fetchall())
            named, by_rdns = con.execute(
                "SELECT count(json_extract(data, '$.hostname')), coalesce(sum("
                "json_extract(data, '$.hostname') LIKE 'rdns-%'), 0) FROM incidents").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None  # being created: ask again
    return {"n": n, "truncated": trunc, "panicked": pan, "hosts": hosts, "last_stored": last,
            "titles": titles, "named": named, "named_by_rdns": by_rdns}


def incident_count(statedir):
    i = incidents(statedir)
    return i["n"] if i else -1


# ---------------------------------------------------------------- receivers

class Receiver:
    kind = "?"
    name = "?"
    outdir = None
    statedir = None
    port = None
    pid = None

    def out_size(self):
        return dir_size(self.outdir)

    def per_host_lines(self):
        return {h: t.count(b"\n") for h, t in dir_texts(self.outdir).items()}

    def texts(self):
        return dir_texts(self.outdir)

    def tids(self):
        return os.listdir("/proc/%d/task" % self.pid)

    def stopped(self):
        try:
            return open("/proc/%d/stat" % self.pid).read().rsplit(")", 1)[1].split()[0] == "T"
        except OSError:
            return False

    def cleanup(self, keep=False):
        pass


class SngReceiver(Receiver):
    """A fresh syslog-ng through the project's harness."""

    def __init__(self, kind, name=None, rcvbuf=S1_RCVBUF, binary=None, post=False, defines=(),
                 names_for=()):
        self.kind = kind
        self.name = name or kind
        env = {"PYTHONPATH": "%s:%s" % (CODE, BENCH)}
        kw = {"env": env, "defines": dict(defines, netconsole_rcvbuf=str(rcvbuf))}
        if binary:
            kw["binary"] = binary
        self.sng = Syslogng(**kw)
        tmp = self.sng.tmp
        if names_for:
            self._names(names_for)
        if kind == "drop-in":
            self.port = self.sng.port
            self.outdir = self.sng.logdir
            self.statedir = self.sng.statedir
        elif kind == "udp":
            self.port = free_udp_port()
            self.outdir = tmp / "base"
            self.sng.prelude = (
                'options { use-dns(no); };\n'
                'source s_bench_base { udp(ip("127.0.0.1") port(%d) flags(no-parse) so-rcvbuf(%d)); };\n'
                'destination d_bench_base { file("%s/${SOURCEIP}.log" create-dirs(yes)); };\n'
                'log { source(s_bench_base); destination(d_bench_base); };\n'
                % (self.port, rcvbuf, self.outdir))
        elif kind == "udp1":  # the same, one file for all senders
            self.port = free_udp_port()
            self.outdir = tmp / "base1"
            self.sng.prelude = (
                'options { use-dns(no); };\n'
                'source s_bench_base { udp(ip("127.0.0.1") port(%d) flags(no-parse) so-rcvbuf(%d)); };\n'
                'destination d_bench_base { file("%s/all.txt" template("${SOURCEIP} ${MSG}\\n") create-dirs(yes)); };\n'
                'log { source(s_bench_base); destination(d_bench_base); };\n'
                % (self.port, rcvbuf, self.outdir))
        elif kind == "noop":
            self.port = free_udp_port()
            self.outdir = tmp / "noop"
            self.counts = tmp / "noop.counts"
            self.sng.prelude = (
                'options { use-dns(no); };\n'
                'source s_bench_noop { python(class("noop_source.NoopSource") options("ip" "127.0.0.1" '
                '"port" "%d" "rcvbuf" "%d" "post" "%s" "counts" "%s") log-iw-size(100000)); };\n'
                'destination d_bench_noop { file("%s/${HOST}.log" template("${MESSAGE}\\n") create-dirs(yes)); };\n'
                'log { source(s_bench_noop); destination(d_bench_noop); };\n'
                % (self.port, rcvbuf, "yes" if post else "no", self.counts, self.outdir))
        else:
            raise ValueError(kind)

    def _names(self, addrs):
        """--names: an inventory names (and labels) the even hosts, reverse DNS the odd
        ones, from an /etc/hosts of its own (syslog-ng in a mount namespace)."""
        inv, hosts = self.sng.tmp / "inventory.csv", self.sng.tmp / "etc-hosts"
        inv.write_text("address,name,rack,team\n" + "".join(
            "%s,inv-%d,r%d,storm\n" % (a, i, i % 40) for i, a in enumerate(addrs) if i % 2 == 0))
        hosts.write_text("127.0.0.1 localhost\n" + "".join(
            "%s rdns-%d.example.org\n" % (a, i) for i, a in enumerate(addrs)))
        self.sng.defines.update(netconsole_inventory=str(inv), netconsole_reverse_dns="yes")
        self.sng.mounts["/etc/hosts"] = hosts

    def per_host_lines(self):
        if self.kind != "udp1":
            return Receiver.per_host_lines(self)
        counts = {}
        try:
            with open(str(self.outdir / "all.txt"), "rb") as f:
                for line in f:
                    h = line.split(b" ", 1)[0].decode(errors="replace")
                    counts[h] = counts.get(h, 0) + 1
        except FileNotFoundError:
            pass
        return counts

    def start(self):
        try:
            self.sng.start(timeout=30)
        except Exception:
            self.sng.cleanup()  # the harness's temporary directory too
            raise
        self.pid = self.sng.pid
        _ACTIVE.append(self)
        return self

    def stop(self):
        if self.pid and self.stopped():
            os.kill(self.pid, signal.SIGCONT)
        self.sng.stop(timeout=15)
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def rss(self):
        return rss_kib(self.pid)

    def stats(self):
        return self.sng.stats().get("counters", {}) if self.kind == "drop-in" else {}

    def stderr_issues(self):
        text = self.sng.stderr_text()
        issues = [line for line in text.splitlines()
                  if re.search(r"error|warning|capped|Traceback", line, re.I)
                  and "use-dns(no), dns-cache()" not in line]
        return {"n": len(issues), "first": issues[:5],
                "open_errors": text.count("Error opening file")}

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(str(self.sng.tmp), ignore_errors=True)


class NetconsdReceiver(Receiver):
    kind = name = "netconsd"

    def __init__(self, binary):
        self.binary = pathlib.Path(binary)
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="storm-netconsd-"))
        self.port = free_udp_port()
        self.out = self.tmp / "stdout.log"
        self.proc = None

    def start(self):
        printer = self.binary.parent / "modules" / "printer.so"
        self._f = open(str(self.out), "wb")
        self.proc = subprocess.Popen([str(self.binary), "-a", "127.0.0.1", "-u", str(self.port),
                                      str(printer)], stdout=self._f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        _ACTIVE.append(self)
        deadline = time.monotonic() + 10
        while not udp_rows(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("netconsd did not start: %s" % self.out.read_text(errors="replace"))
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            if self.stopped():
                os.kill(self.pid, signal.SIGCONT)
            self.proc.terminate()  # it flushes stdout at exit
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self._f.close()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def out_size(self):
        try:
            return self.out.stat().st_size
        except FileNotFoundError:
            return 0

    def per_host_lines(self):
        """Call after stop(): stdout is block-buffered until netconsd exits."""
        counts = {}
        rx = re.compile(rb"^\s*(?:::ffff:)?(127\.\d+\.\d+\.\d+): ")
        with open(str(self.out), "rb") as f:
            for line in f:
                m = rx.match(line)
                if m:
                    h = m.group(1).decode()
                    counts[h] = counts.get(h, 0) + 1
        return counts

    def texts(self):
        return {}

    def rss(self):
        return rss_kib(self.pid)

    def stats(self):
        return {}

    def stderr_issues(self):
        return {}

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(str(self.tmp), ignore_errors=True)


def make_receiver(kind, args, rcvbuf, binary=None, post=False, name=None, names_for=()):
    if kind == "netconsd":
        return NetconsdReceiver(args.netconsd)
    defines = dict(d.split("=", 1) for d in (getattr(args, "define", None) or ())) \
        if kind == "drop-in" else {}
    return SngReceiver(kind, name=name, rcvbuf=rcvbuf, binary=binary, post=post, defines=defines,
                       names_for=names_for)


def settle(recv, port, t_end, quiet=3.0, limit=120.0, interval=0.25):
    """Wait until the socket is empty and neither the output nor the incident count has
    changed for `quiet` seconds (or `limit` seconds after the last datagram).
    Returns (seconds from t_end to the last observed change, timed out?)."""
    last = None
    since = changed = time.monotonic()
    while True:
        now = time.monotonic()
        q = rx_queue(port)
        sig = (recv.out_size(), incident_count(recv.statedir) if recv.statedir else 0, q)
        if sig != last:
            last, since, changed = sig, now, now
        if q == 0 and now - since >= quiet:
            return max(0.0, changed - t_end), False
        if now - t_end > limit:
            return now - t_end, True
        time.sleep(interval)


def _src(res):
    c = res.get("source_counters") or {}
    if not c:
        return "-"
    return "%s / %s / %s / %s" % (c.get("source.datagrams", 0), c.get("source.posted", 0),
                                  c.get("source.post_waits", 0), c.get("core.lost", 0))


def pct(a, b):
    return "%.1f %%" % (100.0 * a / b) if b else "-"


def ratio(a, b):
    return "%.3f" % (a / b) if b else "-"


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def check_time():
    if time.monotonic() - T_START > WALL_LIMIT:
        raise TimeoutError("storm.py: wall-clock limit of %ds reached" % WALL_LIMIT)


# ---------------------------------------------------------------- calibration

def calibrate(traffic, keep=False):
    """One host per traffic part, slowly, into a fresh drop-in: the per-host reference."""
    r = SngReceiver("drop-in").start()
    try:
        ref = {}

        def send(part, octet):
            f = Fleet(octet, 1)
            try:
                _, _, _, t1, wall_end = f.send(r.port, traffic[part], 500)
            finally:
                f.close()
            ref[part] = {"host": f.addrs[0], "t1": t1, "wall_end": wall_end}
        send("crash", 3)
        # output latency of one host: last datagram -> its last line
        crash_host, n_crash = ref["crash"]["host"], None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = dir_texts(r.outdir).get(crash_host, b"")
            if text.count(b"\n") >= len(traffic["crash"]):
                n_crash = time.monotonic()
                break
            time.sleep(0.005)
        ref["output_latency_s"] = round(n_crash - ref["crash"]["t1"], 3) if n_crash else None
        send("boot", 4)
        wait, timed_out = settle(r, r.port, ref["boot"]["t1"], quiet=4.0, limit=60)
        texts = r.texts()
        inc = incidents(r.statedir) or {}
        for part in ("crash", "boot"):
            t = texts.get(ref[part]["host"], b"")
            ref[part].update(text=t, lines=t.count(b"\n"))
        ref["incidents"] = inc
        if inc.get("last_stored"):
            ref["incident_latency_s"] = round(inc["last_stored"] - ref["crash"]["wall_end"], 2)
        ref["settle_timed_out"] = timed_out
        return ref
    finally:
        r.cleanup(keep)


# ---------------------------------------------------------------- S1 crash storm

def run_s1(args, traffic, ref, results):
    crash = traffic["crash"]
    n_hosts = args.s1_hosts
    kinds = ["drop-in"] + (["drop-in+names"] if args.names else []) + ["udp", "udp1"] + (
        ["netconsd"] if args.netconsd else [])
    per_host_udp = lines_of(crash)
    exp_drop = ref["crash"]["lines"]
    exp_inc = ref["incidents"].get("n", 0)  # one host's incidents
    # a report cut short (no end marker) is stored after the detector's quiet_seconds (5 s)
    quiet = max(3.0, (ref.get("incident_latency_s") or 0) + 2.0)
    quiet_dropin = max(quiet, args.incident_wait)
    rows = []
    for rate in args.rates:
        check_time()
        per_rate = {}
        for kind in kinds:
            log("S1 rate %d: %s, %d hosts x %d datagrams" % (rate, kind, n_hosts, len(crash)))
            label, kind = kind, kind.split("+")[0]
            r = make_receiver(kind, args, S1_RCVBUF, name=label, names_for=(
                [host_addr(1, i) for i in range(n_hosts)] if label == "drop-in+names" else ())).start()
            try:
                buf = receiver_rcvbuf(r.pid, r.port, force=S1_RCVBUF if kind == "netconsd" else None)
                fleet = Fleet(1, n_hosts)
                try:
                    sent, errs, t0, t1, wall_end = fleet.send(r.port, crash, rate)
                finally:
                    fleet.close()
                wait, timed_out = settle(r, r.port, t1, quiet=quiet_dropin if r.statedir else quiet,
                                         limit=args.settle_limit)
                d = drops(r.port)
                inc = incidents(r.statedir) if r.statedir else None
                stats = r.stats()
                issues = r.stderr_issues()
                if kind == "netconsd":
                    r.stop()
                lines = r.per_host_lines()
                texts = r.texts() if kind == "drop-in" else {}
                expected = exp_drop if kind == "drop-in" else per_host_udp
                if kind == "drop-in":
                    complete = sum(1 for h in fleet.addrs if texts.get(h) == ref["crash"]["text"])
                else:
                    complete = sum(1 for h in fleet.addrs if lines.get(h, 0) == expected)
                res = {
                    "rate": rate, "receiver": label, "hosts": n_hosts, "sent": sent, "send_errors": errs,
                    "achieved_rate": round(sent / max(1e-9, t1 - t0)), "rcvbuf": buf,
                    "kernel_drops": d, "lines": sum(lines.get(h, 0) for h in fleet.addrs),
                    "lines_expected": expected * n_hosts, "expected_per_host": expected,
                    "hosts_with_file": sum(1 for h in fleet.addrs if h in lines),
                    "hosts_complete": complete, "settle_s": round(wait, 2), "settle_timed_out": timed_out,
                    "source_counters": stats, "stderr": issues,
                }
                if inc is not None:
                    res["incidents"] = inc
                    res["incidents_expected"] = exp_inc * n_hosts
                    res["last_incident_s"] = (round(inc["last_stored"] - wall_end, 2)
                                              if inc.get("last_stored") else None)
                per_rate[label] = res
            finally:
                r.cleanup(args.keep)
        base, base1 = per_rate["udp"], per_rate["udp1"]
        for kind in kinds:
            res = per_rate[kind]
            res["ratio_lines_vs_udp"] = round(res["lines"] / max(1, base["lines"]), 3)
            res["ratio_lines_vs_udp1"] = round(res["lines"] / max(1, base1["lines"]), 3)
            inc = res.get("incidents")
            rows.append([
                rate, kind, res["achieved_rate"], "/".join(str(b) for b in res["rcvbuf"]),
                "%d (%s)" % (res["kernel_drops"], pct(res["kernel_drops"], res["sent"])),
                "%d / %d (%s)" % (res["lines"], res["lines_expected"], pct(res["lines"], res["lines_expected"])),
                "%d / %d" % (res["hosts_complete"], n_hosts),
                ("%d / %d (trunc %d, %d hosts, %d named, %d by rDNS)" % (
                    inc["n"], res["incidents_expected"], inc["truncated"], inc["hosts"],
                    inc["named"], inc["named_by_rdns"])
                 if inc else "-"),
                (res.get("last_incident_s") if inc else "-"),
                "%.1f%s" % (res["settle_s"], " TIMEOUT" if res["settle_timed_out"] else ""),
                _src(res), "%s / %s" % (ratio(res["lines"], base["lines"]), ratio(res["lines"], base1["lines"])),
            ])
        results.setdefault("S1", []).extend(per_rate.values())
    titles = {}
    for res in results.get("S1", []):
        for t, c in (res.get("incidents") or {}).get("titles", {}).items():
            titles[t] = titles.get(t, 0) + c
    print("\n### S1 crash storm: %d hosts x %d datagrams (crash part: datagram %d of the capture to "
          "the end), interleaved, paced; rcvbuf %d\n" % (n_hosts, len(crash), traffic["crash_index"], S1_RCVBUF))
    print("Expected per host: drop-in %d lines (1-host reference at 500/s; decoded fixture log "
          "from the report's first line: %d), %d incident(s) per host (reference: %s); "
          "udp()/netconsd %d lines (one per datagram).\n"
          % (exp_drop, traffic["crash_expected_decoded"], exp_inc,
             "; ".join("%s x%d" % kv for kv in ref["incidents"].get("titles", {}).items()), per_host_udp))
    print(table(["rate/s", "receiver", "sent/s", "rcvbuf", "kernel drops", "lines written / expected",
                 "hosts complete", "incidents stored", "last incident s after last datagram",
                 "settle s", "source read / posted / post waits / core lost",
                 "lines ratio vs udp() per-host / 1 file"], rows))
    print("\nIncident titles stored over all S1 runs: %s" % (titles or "-"))
    sys.stdout.flush()


# ---------------------------------------------------------------- S2 fleet boot

def _can_raise_hard():
    """CAP_SYS_RESOURCE (bit 24) in our effective set: prlimit may raise the hard limit."""
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def run_s2(args, traffic, ref, results, tmpdir):
    boot = traffic["boot"]
    n_hosts = args.s2_hosts
    wrapper = pathlib.Path(tmpdir) / "syslog-ng-nofile1024"
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # 524288 as hard limit needs CAP_SYS_RESOURCE when above ours; else keep our hard limit
    hard = 524288 if hard == resource.RLIM_INFINITY or hard >= 524288 or _can_raise_hard() else hard
    args.s2_nofile = "1024:%d" % hard
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/prlimit --nofile=%s /usr/sbin/syslog-ng "$@"\n' % args.s2_nofile)
    wrapper.chmod(0o755)
    rows = []
    per = {}
    for kind in ("drop-in", "udp"):
        check_time()
        log("S2: %s, %d hosts x %d datagrams at %d/s" % (kind, n_hosts, len(boot), args.s2_rate))
        r = SngReceiver(kind, rcvbuf=S1_RCVBUF, binary=str(wrapper)).start()
        try:
            nofile = nofile_of(r.pid)
            time.sleep(1.0)
            rss0 = r.rss()
            fleet = Fleet(2, n_hosts)
            try:
                sent, errs, t0, t1, _ = fleet.send(r.port, boot, args.s2_rate)
            finally:
                fleet.close()
            wait, timed_out = settle(r, r.port, t1, quiet=3.0, limit=args.settle_limit)
            rss1 = r.rss()
            d = drops(r.port)
            log("S2: %s idle %ds" % (kind, args.idle))
            time.sleep(args.idle)
            rss2 = r.rss()
            lines = r.per_host_lines()
            texts = r.texts() if kind == "drop-in" else {}
            exp = ref["boot"]["lines"] if kind == "drop-in" else lines_of(boot)
            if kind == "drop-in":
                complete = sum(1 for h in fleet.addrs if texts.get(h) == ref["boot"]["text"])
            else:
                complete = sum(1 for h in fleet.addrs if lines.get(h, 0) == exp)
            res = {"receiver": kind, "hosts": n_hosts, "sent": sent, "send_errors": errs,
                   "achieved_rate": round(sent / max(1e-9, t1 - t0)), "nofile": nofile,
                   "files": sum(1 for h in fleet.addrs if h in lines), "hosts_complete": complete,
                   "expected_per_host": exp, "lines": sum(lines.values()), "kernel_drops": d,
                   "rss_before_kib": rss0, "rss_after_kib": rss1, "rss_idle_kib": rss2,
                   "kib_per_host_after": round((rss1 - rss0) / n_hosts, 2),
                   "kib_per_host_idle": round((rss2 - rss0) / n_hosts, 2),
                   "settle_s": round(wait, 2), "settle_timed_out": timed_out,
                   "source_counters": r.stats(), "stderr": r.stderr_issues()}
            per[kind] = res
        finally:
            r.cleanup(args.keep)
    base = per["udp"]
    for kind in ("drop-in", "udp"):
        res = per[kind]
        rows.append([kind, res["nofile"], res["achieved_rate"], _src(res), "%d / %d" % (res["files"], n_hosts),
                     "%d / %d" % (res["hosts_complete"], n_hosts),
                     "%d (%s)" % (res["kernel_drops"], pct(res["kernel_drops"], res["sent"])),
                     res["stderr"].get("open_errors", 0),
                     "%d / %d / %d" % (res["rss_before_kib"], res["rss_after_kib"], res["rss_idle_kib"]),
                     "%.2f / %.2f" % (res["kib_per_host_after"], res["kib_per_host_idle"]),
                     ratio(res["files"], base["files"]), ratio(res["rss_idle_kib"], base["rss_idle_kib"])])
    results["S2"] = list(per.values())
    print("\n### S2 fleet boot: %d hosts x %d datagrams (the capture's first %d), %d/s aggregate, "
          "syslog-ng started under prlimit --nofile=%s\n" % (n_hosts, len(boot), len(boot), args.s2_rate, args.s2_nofile))
    print("Complete: drop-in file identical to the 1-host reference (%d lines); udp(): %d lines. "
          "RSS after = output settled; idle = %d s later.\n" % (ref["boot"]["lines"], lines_of(boot), args.idle))
    print(table(["receiver", "nofile at run (soft/hard)", "sent/s", "source read / posted / post waits / core lost",
                 "per-host files", "hosts complete",
                 "kernel drops", "'Error opening file'", "RSS KiB before / after / idle",
                 "KiB per host after / idle", "files ratio vs udp()", "idle RSS ratio vs udp()"], rows))
    sys.stdout.flush()


# ---------------------------------------------------------------- S3 drain

def _rate(res):
    return res["output_rate"] or res["empty_rate"] or 0


def _median_run(rs):
    """The run with the median rate (the lower one of an even count), with every
    run's rate in "rates"."""
    ordered = sorted(rs, key=_rate)
    res = dict(ordered[(len(ordered) - 1) // 2])
    res["rates"] = [_rate(r) for r in rs]
    return res


def run_s3(args, traffic, ref, results):
    crash = traffic["crash"]
    n_hosts = max(1, args.s3_datagrams // len(crash))
    n = n_hosts * len(crash)
    variants = [("drop-in", "drop-in (2 cores)", {}),
                ("drop-in", "drop-in (taskset 1 core)", {"one_core": True}),
                ("noop", "noop python source, recv only", {"post": False}),
                ("noop", "noop python source, post -> file()", {"post": True}),
                ("udp", "udp(no-parse) -> file() per host", {}),
                ("udp1", "udp(no-parse) -> one file()", {})]
    if args.netconsd:
        variants.append(("netconsd", "netconsd + printer.so", {}))
    # every variant once per round, rounds interleaved: this machine's speed drifts
    # (the same receiver drained 24k-45k/s in successive runs), so each receiver's
    # median round is shown, and every round's rate beside it
    runs, repeat = {}, max(1, args.s3_repeat)
    for rep in range(repeat):
        for kind, name, opts in variants:
            check_time()
            log("S3: %s, %d datagrams (%d hosts x %d), run %d of %d"
                % (name, n, n_hosts, len(crash), rep + 1, repeat))
            r = make_receiver(kind, args, S3_RCVBUF, post=opts.get("post", False), name=name).start()
            try:
                buf = receiver_rcvbuf(r.pid, r.port, force=S3_RCVBUF if kind in ("drop-in", "netconsd") else None)
                if opts.get("one_core"):
                    # syslog-ng's threads and its children (the detection worker)
                    for pid in [r.pid] + child_pids(r.pid):
                        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True,
                                       stdout=subprocess.DEVNULL)
                time.sleep(0.5)
                os.kill(r.pid, signal.SIGSTOP)
                deadline = time.monotonic() + 5
                while not r.stopped() and time.monotonic() < deadline:
                    time.sleep(0.01)
                fleet = Fleet(1, n_hosts)
                try:
                    fleet.send(r.port, crash, 0)
                finally:
                    fleet.close()
                queued, d0 = rx_queue(r.port), drops(r.port)
                size0 = r.out_size()
                t0 = time.monotonic()
                os.kill(r.pid, signal.SIGCONT)
                t_empty = t_out = None
                last_size, last_change, i = size0, t0, 0
                inc_n, inc_change = 0, t0
                while True:
                    now = time.monotonic()
                    if t_empty is None and rx_queue(r.port) == 0:
                        t_empty = now - t0
                    if i % 10 == 0:
                        s = r.out_size()
                        if s != last_size:
                            last_size, last_change = s, now
                        if r.statedir:
                            c = incident_count(r.statedir)
                            if c != inc_n:
                                inc_n, inc_change = c, now
                    i += 1
                    if t_empty is not None and now - last_change > 2.0 and now - inc_change > 3.0:
                        break
                    if now - t0 > args.settle_limit:
                        break
                    time.sleep(0.005)
                timed_out = t_empty is None
                t_out = last_change - t0 if last_size != size0 else None
                d = drops(r.port)
                res = {"receiver": name, "kind": kind, "datagrams": n, "rcvbuf": buf, "queued_bytes": queued,
                       "drops_while_stopped": d0, "kernel_drops": d, "empty_s": t_empty,
                       "output_done_s": t_out, "timed_out": timed_out,
                       "empty_rate": round(n / t_empty) if t_empty else None,
                       "output_rate": round(n / t_out) if t_out else None}
                lat = ref.get("output_latency_s") or 0.0
                if kind == "drop-in" and t_out and t_out > lat:
                    res["output_rate_excl_hold"] = round(n / (t_out - lat))
                if kind == "drop-in":
                    res["source_counters"] = r.stats()
                if r.statedir:
                    inc = incidents(r.statedir) or {}
                    res["incidents"] = inc.get("n", 0)
                    res["incidents_done_s"] = round(inc_change - t0, 2) if inc_n else None
                    res["incident_rate"] = round(n / (inc_change - t0)) if inc_n else None
                if kind == "netconsd":
                    r.stop()
                lines = r.per_host_lines()
                res["lines"] = sum(lines.values())
                if kind == "noop":
                    try:
                        res["noop_counts"] = r.counts.read_text().split()
                    except OSError:
                        pass
                res["stderr"] = r.stderr_issues()
                runs.setdefault(name, []).append(res)
            finally:
                r.cleanup(args.keep)
    per = {name: _median_run(rs) for name, rs in runs.items()}
    results["S3"] = list(per.values())
    base = next(v for v in per.values() if v["kind"] == "udp")
    base1 = next(v for v in per.values() if v["kind"] == "udp1")
    rows = []
    for name, res in per.items():
        done = res["output_rate"] or res["empty_rate"]
        base_done = base["output_rate"] or base["empty_rate"]
        base1_done = base1["output_rate"] or base1["empty_rate"]
        rows.append([name, "/".join(str(b) for b in res["rcvbuf"]), "%d KiB" % (res["queued_bytes"] // 1024),
                     res["drops_while_stopped"],
                     "%.2f" % res["empty_s"] if res["empty_s"] else "TIMEOUT",
                     res["empty_rate"] or "-",
                     "%.2f" % res["output_done_s"] if res["output_done_s"] else "-",
                     res["output_rate"] or "-", res.get("output_rate_excl_hold", "-"), res["lines"],
                     ("%d in %.2f s (%s/s)" % (res["incidents"], res["incidents_done_s"], res["incident_rate"])
                      if res.get("incidents_done_s") else "-"),
                     "%s / %s" % (ratio(done or 0, base_done or 0), ratio(done or 0, base1_done or 0)),
                     " ".join(str(x) for x in res["rates"])])
    print("\n### S3 drain: %d datagrams (S1 traffic: %d hosts x %d) queued while the receiver is "
          "SIGSTOPped, rcvbuf %d, then SIGCONT\n" % (n, n_hosts, len(crash), S3_RCVBUF))
    print("Median of %d rounds (every round in the last column). 'empty' = the socket's "
          "rx_queue reached 0; 'output done' = last growth of the written "
          "files (polled every ~50 ms). Rate = datagrams / seconds. Ratio = output rate (or empty "
          "rate when there is no output) / udp()'s. The column 'minus 1-host latency' subtracts "
          "the 1-host reference's delay from last datagram to last line (%.3f s). 'taskset 1 "
          "core' pins syslog-ng and its detection worker to CPU 0.\n"
          % (repeat, ref.get("output_latency_s") or 0))
    print(table(["receiver", "rcvbuf", "queued", "drops", "empty s", "empty dgram/s", "output done s",
                 "output dgram/s", "output dgram/s minus 1-host latency", "lines written", "incidents stored",
                 "ratio vs udp() per-host / 1 file", "every round's dgram/s"], rows))
    both = per.get("drop-in (2 cores)")
    one = per.get("drop-in (taskset 1 core)")
    if both and one:
        def best(x):
            return x.get("incident_rate") or x["output_rate"] or x["empty_rate"] or 0
        print("\nDrop-in 2 cores / 1 core: socket emptied %s, output %s, incidents %s"
              % (ratio(both["empty_rate"] or 0, one["empty_rate"] or 0),
                 ratio(both["output_rate"] or 0, one["output_rate"] or 0),
                 ratio(both.get("incident_rate") or 0, one.get("incident_rate") or 0)))
        results["S3_both_over_one"] = round(best(both) / max(1, best(one)), 3)
    sys.stdout.flush()


# ---------------------------------------------------------------- main

def main(argv=None):
    global WALL_LIMIT, S1_RCVBUF
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer hosts, smaller runs (smoke check)")
    ap.add_argument("--define", action="append", metavar="NAME=VALUE",
                    help="an @define for the drop-in receivers, e.g. netconsole_detect_worker=no")
    ap.add_argument("--scenarios", default="S1,S2,S3")
    ap.add_argument("--rates", default=None, help="S1 aggregate rates, e.g. 10000,20000,40000")
    ap.add_argument("--netconsd", default=None, help="path of a netconsd binary (modules/printer.so beside it)")
    ap.add_argument("--json", default=None, help="write all results as JSON here")
    ap.add_argument("--s1-hosts", type=int, default=None)
    ap.add_argument("--names", action="store_true",
                    help="S1 also runs the drop-in with an inventory (even hosts) and reverse DNS "
                         "(odd hosts, from an /etc/hosts in syslog-ng's own mount namespace)")
    ap.add_argument("--s2-hosts", type=int, default=None)
    ap.add_argument("--s2-rate", type=int, default=20000)
    ap.add_argument("--s1-rcvbuf", type=int, default=None, help="S1 and S2 socket buffer bytes (default 256 MiB)")
    ap.add_argument("--s3-datagrams", type=int, default=None)
    ap.add_argument("--s3-repeat", type=int, default=None,
                    help="S3 rounds (every receiver once per round; the median is shown; 3, --quick 1)")
    ap.add_argument("--idle", type=float, default=None, help="S2 idle wait (s)")
    ap.add_argument("--incident-wait", type=float, default=8.0,
                    help="S1: quiet seconds before the drop-in's incidents count as final (the "
                         "detector closes a report without end marker after 5 s)")
    ap.add_argument("--settle-limit", type=float, default=120.0,
                    help="longest wait for output after the last datagram (s)")
    ap.add_argument("--wall-limit", type=float, default=WALL_LIMIT)
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run the work tree's package live instead of a snapshot taken at start")
    ap.add_argument("--keep", action="store_true", help="keep the receivers' temporary directories")
    args = ap.parse_args(argv)
    WALL_LIMIT = args.wall_limit
    if args.s1_rcvbuf:
        S1_RCVBUF = args.s1_rcvbuf
    q = args.quick
    args.rates = [int(x) for x in (args.rates or ("10000" if q else "10000,20000,40000")).split(",")]
    args.s1_hosts = args.s1_hosts or (100 if q else 1000)
    args.s2_hosts = args.s2_hosts or (1500 if q else 10000)
    args.idle = args.idle if args.idle is not None else (3.0 if q else 15.0)
    args.s3_repeat = args.s3_repeat or (1 if q else 3)
    if args.netconsd and not os.access(args.netconsd, os.X_OK):
        ap.error("--netconsd %s is not executable" % args.netconsd)
    scenarios = {s.strip().upper() for s in args.scenarios.split(",") if s.strip()}
    tmpdir = tempfile.mkdtemp(prefix="storm-")
    code = "the work tree, live" if args.no_snapshot else snapshot(pathlib.Path(tmpdir) / "code")
    traffic = load_traffic()
    args.s3_datagrams = args.s3_datagrams or (len(traffic["crash"]) * (100 if q else 1000))

    # enough fds for the senders (S2: one socket per host)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(args.s1_hosts, args.s2_hosts, args.s3_datagrams // len(traffic["crash"])) + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    rmem_old = sysctl_get("net.core.rmem_max")
    rmem_new = max(int(rmem_old), S3_RCVBUF if "S3" in scenarios else S1_RCVBUF)
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "cpus": os.cpu_count(),
               "load1_start": os.getloadavg()[0], "rmem_max_before": int(rmem_old), "rmem_max_used": rmem_new,
               "crash_datagrams_per_host": len(traffic["crash"]), "boot_datagrams_per_host": len(traffic["boot"])}
    results["code"] = code
    try:
        sysctl_set("net.core.rmem_max", rmem_new)
        print("## storm.py (%s, %d CPUs, syslog-ng %s)\n" % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(),
              subprocess.run(["/usr/sbin/syslog-ng", "--version"], capture_output=True, text=True)
              .stdout.split("\n")[0]))
        print("Code under test: %s." % code)
        print("net.core.rmem_max: %s -> %d for the run (restored afterwards)." % (rmem_old, rmem_new))
        log("calibration: one host at 500/s")
        ref = calibrate(traffic, args.keep)
        results["reference"] = {k: ({kk: vv for kk, vv in v.items() if kk != "text"} if isinstance(v, dict) else v)
                                for k, v in ref.items()}
        print("Reference (1 host, 500/s, fresh drop-in): crash part %d datagrams -> %d lines (decoded "
              "fixture: %d), last line written %.3f s and %d incident(s) %s stored %.2f s after its last "
              "datagram; boot part %d datagrams -> %d lines.\n"
              % (len(traffic["crash"]), ref["crash"]["lines"], traffic["crash_expected_decoded"],
                 ref.get("output_latency_s") or -1,
                 ref["incidents"].get("n", 0), ref["incidents"].get("titles", {}),
                 ref.get("incident_latency_s") or -1, len(traffic["boot"]), ref["boot"]["lines"]))
        sys.stdout.flush()
        if "S1" in scenarios:
            run_s1(args, traffic, ref, results)
        if "S2" in scenarios:
            run_s2(args, traffic, ref, results, tmpdir)
        if "S3" in scenarios:
            run_s3(args, traffic, ref, results)
    finally:
        for r in list(_ACTIVE):
            try:
                r.cleanup(args.keep)
            except Exception as e:  # keep restoring
                log("cleanup of %s failed: %r" % (r.name, e))
        sysctl_set("net.core.rmem_max", rmem_old)
        log("net.core.rmem_max restored to %s" % sysctl_get("net.core.rmem_max"))
        shutil.rmtree(tmpdir, ignore_errors=True)
        results["elapsed_s"] = round(time.monotonic() - T_START, 1)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=str)
    print("\nTotal %.0f s." % (time.monotonic() - T_START))
    return 0


if __name__ == "__main__":
    sys.exit(main())
