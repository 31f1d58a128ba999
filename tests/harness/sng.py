"""Start a real syslog-ng with the project's SCL and drop-in, send it netconsole UDP.

Used by every tier that needs the collector (integration, kernel, incidents, alerts).
The daemon runs in the foreground (``-F -e``) with private ``-R/-p/-c`` paths under a
temporary directory, listens on 127.0.0.1 and a free port, and imports the package from
this checkout (``PYTHONPATH``). Its stderr (internal log, Python ``Logger`` lines) goes
to ``<tmp>/stderr.log``.

The generated main config is exactly what a Debian install does, with overrides::

    @version: 3.38
    @include "<repo>/syslogng_netconsole/scl/netconsole.conf"   # the SCL (with defaults)
    @define netconsole_ip "127.0.0.1"                           # overrides, then
    @define netconsole_port "<free port>"                       # `defines` (yours)
    @define netconsole_logdir "<tmp>/logs"
    @define netconsole_statedir "<tmp>/state"
    <prelude>                                                   # your text, optional
    @include "<repo>/conf.d/netconsole.conf"                    # the drop-in, unmodified
    <extra_config>                                              # your text, optional

API
---
``Syslogng(tmpdir=None, *, port=None, defines=None, prelude="", extra_config="",
version="3.38", binary="/usr/sbin/syslog-ng", env=None, debug=False,
capture_pairs=False, chroot=None)``
    Nothing runs until ``start()``. ``tmpdir`` defaults to a fresh ``mkdtemp``.
    Attributes: ``port``, ``tmp``, ``logdir``, ``statedir``, ``config_path``,
    ``stderr_path``, ``proc`` (Popen), ``pid``.
    ``prelude`` is the place for extra log paths that must see ``s_netconsole``: the
    drop-in's path is ``flags(final)``, so paths after it get nothing.
    ``capture_pairs=True`` adds such a path writing every message as JSON (HOST, SOURCEIP,
    PRIORITY, FACILITY, UNIXTIME (ms), MESSAGE and ``.netconsole.*``) to
    ``<tmp>/pairs.jsonl``; read
    them with ``pairs()``.
    ``chroot=ROOT`` runs ROOT's syslog-ng (e.g. 4.8 from ``harness.chroot``) instead:
    ``tmpdir`` must then lie under ``ROOT/tmp`` (default: a fresh one there), the
    checkout is bind-mounted at ``<tmp>/repo`` and the config uses in-chroot paths;
    pass ``version="4.4"`` for strict 4.x mode.
``start(timeout=20) -> self``
    Writes the config, starts syslog-ng, waits until it logged "starting up" and the UDP
    port is bound. Raises ``SyslogngError`` with the stderr tail if it exits or times out.
    Also a context manager: ``with Syslogng(tmp) as sng: ...`` starts and stops.
``stop(timeout=10) -> int``
    ``SIGTERM``, waits, ``SIGKILL`` after ``timeout``; returns the exit code. Idempotent.
``reload(timeout=10)``
    ``syslog-ng-ctl reload`` and waits for "Configuration reload finished"; raises if
    syslog-ng died (3.38 aborts on a failed reload). ``write_config()`` first if you
    changed ``defines``/``extra_config``.
``alive() -> bool``, ``rss_kib() -> int`` (VmRSS), ``stderr_text() -> str``
``ctl(*args) -> CompletedProcess``: ``syslog-ng-ctl ARGS -c <ctl>``.
``cleanup()``: ``stop()`` and delete the temporary directory.
``log_path(host) -> Path``: ``<logdir>/<host>.log`` (the per-host file).
``read_log(host) -> str``: its text ('' while absent).
``log_lines(host) -> list``: its lines.
``pairs() -> list``: with ``capture_pairs``, one flat dict per message, e.g.
    ``{"HOST": "127.0.0.2", "MESSAGE": "...", ".netconsole.seq": "5", ...}``.
``stats() -> dict``: the source's counters file ``<statedir>/source-<port>.json``
    (``{}`` while absent); counters are under ``["counters"]``, e.g.
    ``stats()["counters"]["source.datagrams"]``.
``counter(name, default=0)``: one counter from ``stats()``.
``sender(src="127.0.0.2", src_port=0) -> Sender``: a UDP socket bound to ``src``
    (127.0.0.x only) that sends to this syslog-ng. Kept open, so its source port (part
    of the stream key) stays the same: reuse it for one "host".
``send(payload, src="127.0.0.2")``: one datagram from a cached sender for ``src``.

``Sender(src, dst_port, dst="127.0.0.1", src_port=0)``: ``.send(bytes)``,
``.send_all(iterable, pace=0.0)`` (seconds between datagrams), ``.port``, ``.close()``.
``free_udp_port(host="127.0.0.1") -> int``: a port nobody has bound right now.
``udp_socket_drops(port) -> Optional[int]``: the host kernel's drops at that UDP socket.
``wait_drained(sng, sent, limit=60, quiet=2) -> (received, drops, seconds)``: waits until
    ``sent`` datagrams were read or dropped and the 127.0.0.1 log went still (kernel tier).
``wait_for(predicate, timeout=10, interval=0.05, message=None)``: polls ``predicate()``
    until truthy and returns its value; raises ``AssertionError`` on timeout.
``SYSLOGNG``: path of the host binary; ``available() -> Optional[str]``: None when
    syslog-ng with the python module is installed, else a reason (for ``pytest.skip``).
"""

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Callable, Dict, Iterable, List, Optional

REPO = pathlib.Path(__file__).resolve().parents[2]
SCL = REPO / "syslogng_netconsole" / "scl" / "netconsole.conf"
DROPIN = REPO / "conf.d" / "netconsole.conf"
SYSLOGNG = "/usr/sbin/syslog-ng"
SYSLOGNG_CTL = "/usr/sbin/syslog-ng-ctl"


# the capture_pairs log path (before the drop-in's final path)
PAIRS_PATH = (
    'destination d_test_pairs { file("%s" frac-digits(3) template("$(format-json HOST=$HOST '
    'SOURCEIP=$SOURCEIP PRIORITY=$PRIORITY FACILITY=$FACILITY UNIXTIME=$UNIXTIME MESSAGE=$MESSAGE '
    '--key .netconsole.*)\\n")); };\n'
    'log { source(s_netconsole); destination(d_test_pairs); };')


class SyslogngError(RuntimeError):
    pass


def _flatten(d: dict, prefix: str, out: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _flatten(v, prefix + k + ".", out)
        else:
            out[prefix + k] = v


def available() -> Optional[str]:
    """None if the host's syslog-ng and its python module are installed, else why not."""
    if not os.path.exists(SYSLOGNG):
        return "syslog-ng is not installed (apt-get install syslog-ng-core)"
    if not any(p.name.startswith("libmod-python") for p in pathlib.Path("/usr/lib/syslog-ng").glob("*/*")):
        return "syslog-ng's python module is not installed (apt-get install syslog-ng-mod-python)"
    return None


def wait_for(predicate: Callable, timeout: float = 10.0, interval: float = 0.05, message=None):
    """Poll predicate() until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or "timed out after %.1fs waiting for %r" % (timeout, predicate))
        time.sleep(interval)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free on host now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _udp_sockets(port: int, tables=("/proc/net/udp", "/proc/net/udp6")):
    """The /proc/net/udp* rows (split into fields) of the sockets bound to port."""
    hexport = ":%04X" % port
    for table in tables:
        try:
            with open(table) as f:
                next(f)
                rows = [line.split() for line in f]
        except OSError:
            continue
        for fields in rows:
            if fields[1].endswith(hexport):
                yield fields


def _udp_port_bound(port: int) -> bool:
    return any(True for _ in _udp_sockets(port))


def udp_socket_drops(port: int) -> Optional[int]:
    """Datagrams the host kernel dropped at the IPv4 UDP socket bound to port
    (receive buffer full), from /proc/net/udp; None if no such socket."""
    for fields in _udp_sockets(port, ("/proc/net/udp",)):
        return int(fields[-1])
    return None


def child_pids(pid: int) -> List[int]:
    """The child processes of `pid` (of any of its threads), e.g. syslog-ng's detection
    worker; [] when the process is gone."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            out += [int(c) for c in open("/proc/%d/task/%s/children" % (pid, tid)).read().split()]
        except OSError:
            pass
    return out


def wait_drained(sng: "Syslogng", sent: int, limit: float = 60.0, quiet: float = 2.0):
    """Wait until sng has read `sent` datagrams (or the kernel dropped the rest)
    and the per-host log of 127.0.0.1 has not grown for `quiet` seconds (the
    core's timers have fired). Returns (received, socket drops, seconds until
    all datagrams were read)."""
    log = sng.log_path("127.0.0.1")
    t0 = time.monotonic()
    deadline = t0 + limit

    def read_all():
        got = sng.counter("source.datagrams")
        drops = udp_socket_drops(sng.port) or 0
        return got + drops >= sent and (got, drops)
    try:
        wait_for(read_all, timeout=limit, interval=0.2)
    except AssertionError:
        pass
    drained = time.monotonic() - t0
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = log.stat().st_size if log.exists() else -1
        if size != last:
            last, since = size, time.monotonic()
        elif size >= 0 and time.monotonic() - since >= quiet:
            break
        time.sleep(0.1)
    return sng.counter("source.datagrams"), udp_socket_drops(sng.port), round(drained, 1)


def _check_loopback(addr: str) -> None:
    if not (addr.startswith("127.") or addr == "::1"):
        raise ValueError("tests send only from/to loopback addresses, not %r" % addr)


class Sender:
    """A UDP socket bound to a loopback source address, sending to the collector."""

    def __init__(self, src: str, dst_port: int, dst: str = "127.0.0.1", src_port: int = 0):
        _check_loopback(src)
        _check_loopback(dst)
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((src, src_port))
        self.src = src
        self.port = self.sock.getsockname()[1]
        self.dst = (dst, dst_port)

    def send(self, payload: bytes) -> None:
        self.sock.sendto(payload, self.dst)

    def send_all(self, payloads: Iterable[bytes], pace: float = 0.0) -> int:
        n = 0
        for p in payloads:
            self.sock.sendto(p, self.dst)
            n += 1
            if pace:
                time.sleep(pace)
        return n

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Syslogng:
    """A private syslog-ng running the project's SCL + drop-in (see module docstring)."""

    def __init__(self, tmpdir=None, *, port: Optional[int] = None, defines: Optional[Dict[str, str]] = None,
                 prelude: str = "", extra_config: str = "", version: str = "3.38",
                 binary: str = SYSLOGNG, env: Optional[Dict[str, str]] = None, debug: bool = False,
                 capture_pairs: bool = False, chroot=None, nofile=None, mounts=None):
        self.chroot = pathlib.Path(chroot) if chroot else None
        if tmpdir:
            self.tmp = pathlib.Path(tmpdir)
        elif self.chroot:
            self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="sng-", dir=str(self.chroot / "tmp")))
        else:
            self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="sng-"))
        self.tmp.mkdir(parents=True, exist_ok=True)
        if self.chroot:
            self.tmp = self.tmp.resolve()
            self.tmp.relative_to(self.chroot.resolve() / "tmp")  # ValueError if outside
            (self.tmp / "repo").mkdir(exist_ok=True)
            if binary == SYSLOGNG:
                binary = "/usr/sbin/syslog-ng"  # the chroot's own
        self.port = port or free_udp_port()
        self.logdir = self.tmp / "logs"
        self.statedir = self.tmp / "state"
        self.config_path = self.tmp / "syslog-ng.conf"
        self.stderr_path = self.tmp / "stderr.log"
        self.persist = self.tmp / "syslog-ng.persist"
        self.pidfile = self.tmp / "syslog-ng.pid"
        self.ctlfile = self.tmp / "syslog-ng.ctl"
        self.defines = dict(defines or {})
        self.prelude = prelude
        self.extra_config = extra_config
        self.version = version
        self.binary = binary
        self.env = dict(env or {})
        self.debug = debug
        self.capture_pairs = capture_pairs
        self.nofile = nofile            # (soft, hard) RLIMIT_NOFILE for the daemon
        # {path in the daemon's view: file bound over it}, in a mount namespace of its own
        # (e.g. /etc/hosts, /etc/resolv.conf for reverse DNS); the machine's stay as they are
        self.mounts = dict(mounts or {})
        self.pairs_path = self.tmp / "pairs.jsonl"
        self.proc = None
        self._stderr = None
        self._senders = {}

    def inside(self, path) -> str:
        """A host path as the daemon sees it (differs only with ``chroot``)."""
        path = pathlib.Path(path)
        if not self.chroot:
            return str(path)
        try:
            return "/" + str(path.relative_to(self.chroot.resolve()))
        except ValueError:
            if path == REPO or REPO in path.parents:
                return self.inside(self.tmp / "repo" / path.relative_to(REPO))
            raise

    # ------------------------------------------------------------ config, process

    def config_text(self) -> str:
        defines = {
            "netconsole_ip": "127.0.0.1",
            "netconsole_port": str(self.port),
            "netconsole_logdir": self.inside(self.logdir),
            "netconsole_statedir": self.inside(self.statedir),
        }
        defines.update(self.defines)
        lines = ["@version: %s" % self.version, '@include "%s"' % self.inside(SCL)]
        lines += ['@define %s "%s"' % (k, v) for k, v in defines.items()]
        if self.capture_pairs:
            lines.append(PAIRS_PATH % self.inside(self.pairs_path))
        lines += [self.prelude, '@include "%s"' % self.inside(DROPIN), self.extra_config, ""]
        return "\n".join(lines)

    def write_config(self) -> pathlib.Path:
        self.config_path.write_text(self.config_text())
        return self.config_path

    def argv(self):
        argv = [self.binary, "-F", "-e", "-f", self.inside(self.config_path), "-R", self.inside(self.persist),
                "-p", self.inside(self.pidfile), "-c", self.inside(self.ctlfile)]
        return argv + (["-d"] if self.debug else [])

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(self.env)
        return env

    def start(self, timeout: float = 20.0) -> "Syslogng":
        self.write_config()
        self._stderr = open(self.stderr_path, "ab")
        if self.chroot:
            from harness import chroot as _chroot
            env = {"PYTHONPATH": self.inside(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
            env.update(self.env)
            self.proc = _chroot.popen_in_chroot(
                self.chroot, self.argv(), env=env, binds={self.inside(REPO): str(REPO)},
                stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
        else:
            nofile = self.nofile

            def limits():
                if nofile:
                    import resource
                    resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
            argv = self.argv()
            if self.mounts:
                binds = " && ".join('mount --bind "%s" "%s"' % (src, dst)
                                    for dst, src in self.mounts.items())
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        binds + ' && exec "$@"', "sh"] + argv
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                         stderr=self._stderr, env=self.environment(), cwd=str(self.tmp),
                                         preexec_fn=limits if nofile else None)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SyslogngError("syslog-ng exited with %s at start:\n%s"
                                    % (self.proc.returncode, self.stderr_tail()))
            if "syslog-ng starting up" in self.stderr_text() and _udp_port_bound(self.port):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise SyslogngError("syslog-ng did not start listening on port %d within %.0fs:\n%s"
                                    % (self.port, timeout, self.stderr_tail()))
            time.sleep(0.05)

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        for s in self._senders.values():
            s.close()
        self._senders.clear()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def ctl(self, *args, timeout: float = 15.0) -> subprocess.CompletedProcess:
        return subprocess.run([SYSLOGNG_CTL] + list(args) + ["-c", str(self.ctlfile)],
                              capture_output=True, text=True, timeout=timeout)

    def reload(self, timeout: float = 10.0) -> None:
        before = self.stderr_text().count("Configuration reload finished")
        r = self.ctl("reload", timeout=timeout)
        if r.returncode != 0:
            raise SyslogngError("syslog-ng-ctl reload failed (%d): %s%s\n%s"
                                % (r.returncode, r.stdout, r.stderr, self.stderr_tail()))
        wait_for(lambda: self.stderr_text().count("Configuration reload finished") > before
                 or not self.alive(), timeout, message="reload did not finish")
        if not self.alive():
            raise SyslogngError("syslog-ng died during reload (%s):\n%s"
                                % (self.proc.returncode, self.stderr_tail()))

    # ------------------------------------------------------------ observation

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def rss_kib(self) -> int:
        with open("/proc/%d/status" % self.pid) as f:
            m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
        return int(m.group(1))

    def log_path(self, host: str) -> pathlib.Path:
        return self.logdir / ("%s.log" % host)

    def read_log(self, host: str) -> str:
        try:
            return self.log_path(host).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, host: str):
        return self.read_log(host).splitlines()

    def pairs(self):
        """Messages captured with ``capture_pairs``: flat dicts (see module docstring)."""
        import json
        out = []
        try:
            text = self.pairs_path.read_text(errors="replace")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            flat = {}
            for k, v in obj.items():
                if k == "_netconsole" and isinstance(v, dict):
                    _flatten(v, ".netconsole.", flat)
                else:
                    flat[k] = v
            out.append(flat)
        return out

    def stats_path(self) -> pathlib.Path:
        return self.statedir / ("source-%d.json" % self.port)

    def stats(self) -> dict:
        import json
        try:
            return json.loads(self.stats_path().read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def counter(self, name: str, default=0):
        return self.stats().get("counters", {}).get(name, default)

    # ------------------------------------------------------------ sending

    def sender(self, src: str = "127.0.0.2", src_port: int = 0) -> Sender:
        return Sender(src, self.port, src_port=src_port)

    def send(self, payload: bytes, src: str = "127.0.0.2") -> None:
        s = self._senders.get(src)
        if s is None:
            s = self._senders[src] = self.sender(src)
        s.send(payload)

    def cleanup(self) -> None:
        """stop() and delete the temporary directory (with ``chroot``: only if the
        checkout's bind mount point is an empty, unmounted directory, as it should be)."""
        self.stop()
        repo = self.tmp / "repo"
        if self.chroot and (os.path.ismount(str(repo)) or (repo.is_dir() and any(repo.iterdir()))):
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
