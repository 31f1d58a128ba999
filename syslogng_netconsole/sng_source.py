"""The `netconsole()` source: a syslog-ng Python `LogSource` that owns its UDP sockets.

Why its own sockets rather than syslog-ng's `udp()`: `udp()` strips the datagram's
trailing newline (which tells a cut plain line from a whole one), cuts values at NUL
in 3.38 and hides the sender's port; and a parser only runs when a message arrives, so
a silent host's held pieces would never come out. Here a timer (the poll timeout =
the core's `next_deadline()`) expires them.

Life cycle (checked on 3.38 and 4.8): `init()` (main thread) -> `run()` (a syslog-ng
thread; the only one allowed to `post_message`) ... `request_exit()` (main thread) ->
`run()` returns -> `deinit()`. A reload builds a NEW instance but keeps the module (it
is not re-imported), so the sockets, the reassembly state and not-yet-posted records
live in the module-level `_ENDPOINTS` registry; the next instance takes them over and
the kernel buffers datagrams in between: no gap, no thread left behind.

Counters: `source.*` (this module) and `core.*` (the reassembler) are logged to
syslog-ng's internal log every `stats_interval` seconds and at deinit, and written as
JSON to `<state_dir>/source-<port>.json` (at most once a second, when they changed).

Runs on 3.38 (bytes values, str options, no set_source_ipaddress: SOURCEIP stays
127.0.0.1 there; HOST is the sender) and 4.x strict (typed options, base classes).
"""

import collections
import copy
import dataclasses
import datetime
import ipaddress
import json
import operator
import os
import re
import select
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

try:  # inside syslog-ng (3.38 and 4.x both require the LogSource base class)
    from syslogng import LogSource as _Base
    from syslogng import LogMessage
    from syslogng import Logger as _SngLogger
    _log = _SngLogger()
except ImportError:  # plain Python: imports work, tests can drive the class
    import logging
    _Base = object
    LogMessage = None
    _log = logging.getLogger("syslogng_netconsole.source")

from . import options as opt
from .ratelog import RateLimitedLog
from .reassembly import Limits, Reassembler
from .records import Record

def _log_line(level, text):
    getattr(_log, level)(text)


# syslog-ng 4.x (LogMessage.get_as_str exists) reverts a reload whose init() fails;
# 3.x aborts. Outside syslog-ng: behave like 4.x (plain failure).
_FAILED_RELOAD_REVERTS = LogMessage is None or hasattr(LogMessage, "get_as_str")

RECV_SIZE = 65536          # largest UDP payload is 65527 bytes: nothing is ever cut
READ_BATCH = 256           # datagrams read per socket before timers and posting run
MAX_HELD = 20000           # records waiting while syslog-ng has suspended us...
MAX_HELD_BYTES = 32 << 20  # ...and their text; beyond either, the oldest are dropped (counted)
ORPHAN_GRACE = 30.0        # seconds an untaken endpoint (port left the config) stays open
BIND_RETRY = 5.0           # seconds between attempts to bind a busy port
STATS_FILE_PERIOD = 1.0    # the counters file is rewritten at most this often
LOG_EVERY = 10.0           # one line per error kind per this many seconds

def _to_addrs(v):
    addrs = tuple(a for a in re.split(r"[\s,]+", str(v).strip()) if a)
    if not addrs:
        raise ValueError("expected an IPv4 or IPv6 address")
    for a in addrs:
        ipaddress.ip_address(a)  # ValueError names the bad one
    return addrs


# option name -> (converter, default); "" in the SCL means "the default"
OPTIONS = {
    "ip": (_to_addrs, ("0.0.0.0",)),
    "port": (opt.port, 6666),
    "rcvbuf": (opt.at_least(int, 0), 4194304),
    "reuseport": (opt.boolean, False),
    "state_dir": (str, ""),
    "stats_interval": (opt.at_least(float, 0), 300.0),
}
# reassembly limits: option name -> Limits attribute, converter
LIMIT_OPTIONS = {
    "fragment_timeout": ("frag_timeout", opt.at_least(float, 0)),
    "line_timeout": ("line_timeout", opt.at_least(float, 0)),
    "reorder_window": ("reorder_window", opt.at_least(float, 0)),
    "max_hosts": ("max_streams", opt.at_least(int, 1)),
    "max_pending": ("max_pending_bytes", opt.at_least(int, 1)),
    "idle_timeout": ("idle_timeout", opt.at_least(float, 0)),
}

# Record attribute -> name-value pair under .netconsole. (None values are not set).
# Numbers: decimal strings; text: NUL made visible (3.38 would cut the value there).
NUMBER_PAIRS = ("seq", "ts_us", "level", "boot", "lost_before", "fragments", "continued", "src_port")
TEXT_PAIRS = ("format", "flags", "caller", "release")
_NUMBERS_OF = operator.attrgetter(*NUMBER_PAIRS)  # one C call per record (hot path)
_TEXTS_OF = operator.attrgetter(*TEXT_PAIRS)
# Record.fields keys are already pair names (subsystem, device, cpu, taskname, msgid,
# release, userdata.KEY, ...); the dictionary's upper-case spelling is mapped too
FIELD_PAIRS = {"SUBSYSTEM": "subsystem", "DEVICE": "device"}
PREFIX = ".netconsole."
MAX_FIELDS = 64                   # per record; the core already caps what it keeps
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
DEFAULT_SEVERITY = 5              # plain records carry no level: kern.notice


class ConfigError(ValueError):
    pass


def parse_options(options) -> Tuple[dict, dict]:
    """SCL options (str on 3.38, typed on 4.x) -> (settings, limit overrides).
    Raises ConfigError naming the option."""
    settings = {k: default for k, (_, default) in OPTIONS.items()}
    limits = {}
    for key, value in dict(options or {}).items():
        name = str(key).replace("-", "_")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        try:
            if name in OPTIONS:
                conv, default = OPTIONS[name]
                settings[name] = default if str(value).strip() == "" and name != "state_dir" else conv(value)
            elif name in LIMIT_OPTIONS:
                if str(value).strip() != "":
                    attr, conv = LIMIT_OPTIONS[name]
                    limits[attr] = conv(value)
            else:
                raise ConfigError("netconsole(): unknown option %r" % name)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError("netconsole(): invalid value %r for option %r: %s" % (value, name, e))
    return settings, limits


def make_limits(overrides: dict):
    """Limits() with the configured overrides; an attribute the core does not have is
    a config error naming the option."""
    lim = Limits()
    for attr, value in overrides.items():
        if not hasattr(lim, attr):
            opt = [k for k, (a, _) in LIMIT_OPTIONS.items() if a == attr][0]
            raise ConfigError("netconsole(): option %r is not supported by this core" % opt)
        setattr(lim, attr, type(getattr(lim, attr))(value) if getattr(lim, attr) is not None else value)
    return lim


def _clean(s: str) -> str:
    # 3.38 cuts values at NUL; the core keeps undecodable bytes visible, keep NUL visible too
    return s.replace("\x00", "\\x00") if "\x00" in s else s


def message_pairs(rec) -> List[Tuple[str, str]]:
    """(name, value) pairs posted under .netconsole. for a Record, all str."""
    out = [(n, str(v)) for n, v in zip(NUMBER_PAIRS, _NUMBERS_OF(rec)) if v is not None]
    out += [(n, _clean(v)) for n, v in zip(TEXT_PAIRS, _TEXTS_OF(rec)) if v]
    out.append(("incomplete", "1" if rec.incomplete else "0"))
    fields = rec.fields
    if fields:
        for i, (key, value) in enumerate(fields.items()):
            if i >= MAX_FIELDS:
                break
            name = FIELD_PAIRS.get(key) or _KEY_UNSAFE.sub("_", key)[:80]
            if name in TEXT_PAIRS and getattr(rec, name):
                continue  # e.g. the release prefix already set .netconsole.release
            out.append((name, _clean(value)))
    out.append(("dmesg", _clean(rec.dmesg())))
    return out


def record_pri(rec) -> int:
    fac = rec.facility if rec.facility is not None else 0
    sev = rec.severity if rec.severity is not None else DEFAULT_SEVERITY
    return (int(fac) & 0x7F) * 8 + (int(sev) & 7)


def _bind(addr: str, port: int, rcvbuf: int, reuseport: bool, warn) -> socket.socket:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if fam == socket.AF_INET6:
            # "::" means IPv6 only; list "0.0.0.0,::" for both families
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_rcvbuf(s, rcvbuf, warn)
        s.bind((addr, port))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; Python has no name for it


def set_rcvbuf(s: socket.socket, rcvbuf: int, warn) -> None:
    """SO_RCVBUF; above net.core.rmem_max, SO_RCVBUFFORCE (needs CAP_NET_ADMIN, as
    journald does); else warn: a burst (sysrq-t, an oops storm) then loses datagrams."""
    if not rcvbuf:
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports double
    if got < rcvbuf:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        except OSError:
            pass
    if got < rcvbuf:
        warn("the kernel capped the receive buffer (SO_RCVBUF) at %d bytes instead of %d: "
             "raise net.core.rmem_max (sysctl) to absorb bursts" % (got, rcvbuf))


def kernel_drops(socks) -> Optional[int]:
    """Datagrams the kernel dropped on these sockets (buffer full), from /proc/net/udp*
    (the last column, matched by socket inode); None when unreadable."""
    inodes = set()
    for sock in socks:
        try:
            inodes.add(str(os.fstat(sock.fileno()).st_ino))
        except OSError:
            pass
    total, seen = 0, False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) > 12 and cols[9] in inodes:
                        total += int(cols[-1])
                        seen = True
        except (OSError, ValueError):
            pass
    return total if seen else None


class _Held:
    """Records drained from the core but not yet posted, with their text size."""

    def __init__(self):
        self.q = collections.deque()
        self.nbytes = 0

    def __len__(self):
        return len(self.q)

    def __iter__(self):
        return iter(self.q)

    def append(self, rec):
        self.q.append(rec)
        self.nbytes += len(rec.text)

    def extend(self, recs):
        for rec in recs:
            self.append(rec)

    def popleft(self):
        rec = self.q.popleft()
        self.nbytes -= len(rec.text)
        return rec

    def full(self, fraction=1.0) -> bool:
        return len(self.q) >= MAX_HELD * fraction or self.nbytes >= MAX_HELD_BYTES * fraction


class _Endpoint:
    """Sockets + reassembly state of one configured source; survives reloads."""

    def __init__(self, key, settings, limits):
        self.key = key
        self.settings = settings
        self.core = Reassembler(limits)
        self.socks = {}                      # addr -> socket
        self.held = _Held()                  # records drained from the core, not yet posted
        self.counters = collections.Counter()
        self.owner = None                    # the NetconsoleSource using it, or None
        self.orphaned_at = None              # monotonic time it lost its owner
        self.next_bind = 0.0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks.clear()
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


_ENDPOINTS: Dict[tuple, _Endpoint] = {}
_LOCK = threading.Lock()


def _adopt_orphan(key, settings) -> Optional[_Endpoint]:
    """A reload that changed the source's addresses or name: take over the orphaned
    endpoint of the same port (its state and the sockets still wanted), so the port is
    never closed and reopened. Called with _LOCK held."""
    for old_key, ep in list(_ENDPOINTS.items()):
        if ep.owner is None and old_key[1] == key[1] and old_key[3] == key[3]:
            del _ENDPOINTS[old_key]
            for addr in list(ep.socks):
                if addr not in settings["ip"]:
                    ep.socks.pop(addr).close()
            ep.key = key
            _ENDPOINTS[key] = ep
            return ep
    return None


def _sweep_orphans(now: float) -> None:
    """Close endpoints no configuration has taken for ORPHAN_GRACE (port removed)."""
    with _LOCK:
        for key, ep in list(_ENDPOINTS.items()):
            if ep.owner is None and ep.orphaned_at is not None and now - ep.orphaned_at > ORPHAN_GRACE:
                del _ENDPOINTS[key]
                _log.info("netconsole: closing port %s of a source no longer configured" % (key[1],))
                ep.close()


class NetconsoleSource(_Base):
    """syslog-ng python() source class; see the module docstring."""

    @staticmethod
    def generate_persist_name(options):
        # one name per listen address/port: several netconsole() sources need no persist-name()
        o = dict(options or {})
        return "netconsole(%s,%s)" % (str(o.get("ip", "")).replace(" ", ""), o.get("port", ""))

    def init(self, options):
        self._exit = threading.Event()
        self._suspended = False
        self._ep = None
        self._say = RateLimitedLog(_log_line, "netconsole: ", LOG_EVERY)
        try:
            settings, limit_overrides = parse_options(options)
            limits = make_limits(limit_overrides)
        except ConfigError as e:
            _log.error(str(e))
            return self._bad_reload()  # at start-up: False, the one real config error
        self._settings = settings
        try:
            return self._take_endpoint(settings, limits)
        except Exception as e:  # never fail a (re)load for a recoverable problem
            _log.error("netconsole: cannot set up the source on port %d: %r; it receives nothing"
                       % (settings["port"], e))
            self._ep = None
            return True

    def _bad_reload(self) -> bool:
        """A config error. syslog-ng 3.x aborts (SIGABRT) when a reload fails, 4.4+
        reverts to the old config: so on 3.x, during a reload, keep this source running
        with its previous settings instead (the error above says what to fix)."""
        if _FAILED_RELOAD_REVERTS:
            return False
        name = getattr(self, "persist_name", None)
        with _LOCK:
            orphans = [ep for ep in _ENDPOINTS.values() if ep.owner is None]
            mine = [ep for ep in orphans if ep.key[0] == name] or (orphans if len(orphans) == 1 else [])
            if not mine:
                return False  # start-up (or nothing to keep): fail as usual
            ep = mine[0]
            ep.owner, ep.orphaned_at = self, None
            ep.counters["reloads"] += 1
        _log.error("netconsole: keeping the previous settings of the source on port %d until the "
                   "configuration is fixed (syslog-ng 3.x would abort on a failed reload)"
                   % ep.settings["port"])
        self._settings, self._ep = ep.settings, ep
        now = time.monotonic()
        self._last_stats_log = now
        self._last_stats_file = 0.0
        self._last_expire = now
        self._dirty = True
        return True

    def _take_endpoint(self, settings, limits) -> bool:
        name = getattr(self, "persist_name", None) or "netconsole"
        key = (name, settings["port"], settings["ip"], settings["reuseport"])
        now = time.monotonic()
        with _LOCK:
            ep = _ENDPOINTS.get(key)
            if ep is not None and ep.owner is not None:
                _log.error("netconsole(): two sources listen on %s port %d; give one a "
                           "persist-name() or another port" % (",".join(settings["ip"]), settings["port"]))
                return False
            if ep is None:
                ep = _adopt_orphan(key, settings)
            fresh = ep is None
            if fresh:
                ep = _ENDPOINTS[key] = _Endpoint(key, settings, limits)
            else:
                ep.counters["reloads"] += 1
                if getattr(ep.core, "limits", limits) != limits:
                    _log.warning("netconsole: changed reassembly limits on port %d apply after a "
                                 "restart (a reload keeps the running state)" % settings["port"])
            ep.owner = self
            ep.orphaned_at = None
            ep.settings = settings
        self._ep = ep
        self._last_stats_log = now
        self._last_stats_file = 0.0
        self._last_expire = now
        self._dirty = True
        for s in ep.socks.values():  # taken over: apply a changed rcvbuf
            try:
                set_rcvbuf(s, settings["rcvbuf"], lambda t: self._say("rcvbuf", t, now, "warning"))
            except OSError:
                pass
        self._restore_pending(fresh)
        self._bind_missing(now)
        return True

    # ---------------------------------------------------------------- sockets

    def _bind_missing(self, now: float) -> None:
        ep, st = self._ep, self._settings
        if now < ep.next_bind:
            return
        for addr in st["ip"]:
            if addr in ep.socks:
                continue
            try:
                ep.socks[addr] = _bind(addr, st["port"], st["rcvbuf"], st["reuseport"],
                                       lambda t: self._say("rcvbuf", t, now, "warning"))
                _log.info("netconsole: listening on %s port %d" % (addr, st["port"]))
            except OSError as e:
                ep.counters["bind_errors"] += 1
                ep.next_bind = now + BIND_RETRY
                self._say("bind", "cannot listen on %s port %d: %s; retrying every %ds"
                          % (addr, st["port"], e.strerror or e, BIND_RETRY), now)

    def _read(self, sock: socket.socket, now: float) -> None:
        ep = self._ep
        core, c = ep.core, ep.counters
        dst_port = self._settings["port"]
        for _ in range(READ_BATCH):
            try:
                payload, addr = sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ICMP errors surfacing; never fatal
                c["recv_errors"] += 1
                self._say("recv", "receive error: %s" % e, now)
                return
            c["datagrams"] += 1
            c["bytes"] += len(payload)
            try:
                core.process(payload, addr[0], addr[1], dst_port, now)
            except Exception as e:  # bad input must never stop the loop
                c["core_errors"] += 1
                self._say("core", "reassembly failed on a %d-byte datagram from %s: %r"
                          % (len(payload), addr[0], e), now)

    # ---------------------------------------------------------------- posting

    def _drain_core(self, now: float) -> None:
        ep = self._ep
        try:
            deadline = ep.core.next_deadline()
            # also once a second: expire() forgets idle hosts
            if (deadline is not None and deadline <= now) or now - self._last_expire >= 1.0:
                self._last_expire = now
                ep.core.expire(now)
            ep.held.extend(ep.core.records())
        except Exception as e:
            ep.counters["core_errors"] += 1
            self._say("core", "reassembly timer failed: %r" % (e,), now)
        excess = 0
        while ep.held.full():  # syslog-ng stopped taking messages for long: drop oldest, counted
            ep.held.popleft()
            excess += 1
        if excess:
            ep.counters["dropped_held"] += excess
            self._say("held", "syslog-ng is not accepting messages; dropped %d records" % excess, now)

    def _make_message(self, rec, wall_offset: float, now: float = 0.0):
        msg = LogMessage(_clean(rec.text))
        msg["HOST"] = rec.host
        set_ip = getattr(msg, "set_source_ipaddress", None)  # 4.x only
        if set_ip is not None:
            set_ip(rec.host, int(rec.src_port or 0))
        msg.set_pri(record_pri(rec))
        # a record that waited (fragments, reorder, continuations) keeps its arrival
        # time; a fresh one keeps the message's own (= now), which costs nothing
        if rec.recv_time and now - rec.recv_time > 0.05:
            msg.set_timestamp(datetime.datetime.fromtimestamp(rec.recv_time + wall_offset,
                                                              datetime.timezone.utc))
        for name, value in message_pairs(rec):
            msg[PREFIX + name] = value
        return msg

    def _post_held(self, now: float) -> None:
        ep = self._ep
        mono = time.monotonic()
        wall_offset = time.time() - mono
        while ep.held and not self._suspended:
            rec = ep.held.popleft()
            try:
                msg = self._make_message(rec, wall_offset, mono)
            except Exception as e:
                ep.counters["message_errors"] += 1
                self._say("message", "cannot build a message for a record of %s: %r"
                          % (getattr(rec, "host", "?"), e), now)
                continue
            try:
                self.post_message(msg)
                ep.counters["posted"] += 1
                self._dirty = True
            except Exception as e:
                ep.counters["post_errors"] += 1
                self._say("post", "post_message failed: %r" % (e,), now)

    # suspend()/wakeup() make post_message non-blocking: when syslog-ng's window is
    # full we hold records (and stop reading; the kernel buffers) instead of blocking
    # the loop, so timers and request_exit() keep working.
    def suspend(self):
        self._suspended = True
        if self._ep is not None:
            self._ep.counters["suspends"] += 1

    def wakeup(self):
        self._suspended = False
        self._wake()

    def _wake(self):
        ep = self._ep
        if ep is not None:
            try:
                os.write(ep.wake_w, b"x")
            except OSError:
                pass  # pipe full: a wakeup is pending anyway

    # ---------------------------------------------------------------- loop

    def _timeout(self, now: float) -> float:
        t = 1.0  # upper bound: stats, bind retries, orphan sweep
        try:
            deadline = self._ep.core.next_deadline()
        except Exception:
            deadline = None
        if deadline is not None:
            t = min(t, max(0.0, deadline - now))
        if self._ep.held and not self._suspended:
            t = 0.0
        return t

    def run(self):
        ep = self._ep
        if ep is None:  # set-up failed (logged in init): idle until stopped
            self._exit.wait()
            return
        while not self._exit.is_set():
            now = time.monotonic()
            try:
                self._bind_missing(now)
                # poll, not select: syslog-ng may hold far more than 1024 fds (a file per host)
                poller = select.poll()
                poller.register(ep.wake_r, select.POLLIN)
                by_fd = {}
                if not ep.held.full(0.5):  # else leave datagrams in the kernel buffer
                    for sock in ep.socks.values():
                        by_fd[sock.fileno()] = sock
                        poller.register(sock, select.POLLIN)
                try:
                    ready = poller.poll(self._timeout(now) * 1000.0)
                except InterruptedError:
                    ready = []
                now = time.monotonic()
                for fd, _ in ready:
                    if fd == ep.wake_r:
                        try:
                            os.read(ep.wake_r, 4096)
                        except OSError:
                            pass
                    elif fd in by_fd:
                        self._read(by_fd[fd], now)
                self._drain_core(now)
                self._post_held(now)
                self._periodic(now)
            except Exception as e:  # the loop itself must survive anything
                ep.counters["loop_errors"] += 1
                self._say("loop", "receive loop error: %r" % (e,), now)
                self._exit.wait(0.1)
        self._post_held(time.monotonic())  # complete records already drained
        self._write_stats_file(time.time())

    def request_exit(self):
        self._exit.set()
        self._wake()

    def deinit(self):
        ep = self._ep
        if ep is None:
            return
        self._log_counters("reload or stop")
        self._write_stats_file(time.time())
        held_bytes, held_records = self._held()
        if held_bytes or held_records:
            saved = self._save_pending()
            _log.info("netconsole: port %d: %d bytes of unfinished records and %d records are kept "
                      "for the next configuration%s"
                      % (self._settings["port"], held_bytes, held_records,
                         " and saved to %s for a restart" % saved if saved
                         else " (lost if syslog-ng is stopping: no state_dir)"))
        with _LOCK:
            if ep.owner is self:
                ep.owner = None
                ep.orphaned_at = time.monotonic()
        self._ep = None

    # ---------------------------------------------------------------- restarts

    # deinit() cannot tell a reload from a stop. So it saves what a stop would lose
    # (unfinished pieces, as the incomplete records they would become, and records not
    # yet posted) to <state_dir>; the next instance deletes the file when it takes the
    # live state over (reload), or posts the saved records (restart).

    def _pending_path(self) -> Optional[str]:
        d = self._settings.get("state_dir")
        return os.path.join(d, "source-%d.pending.jsonl" % self._settings["port"]) if d else None

    def _save_pending(self) -> Optional[str]:
        path = self._pending_path()
        if not path:
            return None
        ep = self._ep
        try:
            core = copy.deepcopy(ep.core)   # the live state stays untouched for a reload
            now = time.monotonic()
            core.flush(now)
            recs = list(ep.held) + core.records()
            wall_offset = time.time() - now
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                for rec in recs:
                    d = dataclasses.asdict(rec)
                    d["recv_time"] = rec.recv_time + wall_offset if rec.recv_time else 0.0
                    f.write(json.dumps(d) + "\n")
            os.replace(tmp, path)
            return path
        except Exception as e:
            ep.counters["save_errors"] += 1
            _log.warning("netconsole: cannot save unfinished records to %s: %r" % (path, e))
            return None

    def _restore_pending(self, fresh: bool) -> None:
        """fresh: a new process (restart): post the saved records; else drop the file."""
        path = self._pending_path()
        if not path or not os.path.exists(path):
            return
        ep = self._ep
        try:
            if fresh:
                wall_offset = time.time() - time.monotonic()
                n = 0
                with open(path) as f:
                    for line in f:
                        d = json.loads(line)
                        if d.get("recv_time"):
                            d["recv_time"] -= wall_offset
                        ep.held.append(Record(**d))
                        n += 1
                ep.counters["restored"] += n
                _log.info("netconsole: port %d: %d records saved at the last stop are posted now"
                          % (self._settings["port"], n))
            os.unlink(path)
        except Exception as e:
            ep.counters["restore_errors"] += 1
            _log.warning("netconsole: cannot restore saved records from %s: %r" % (path, e))
            try:
                os.replace(path, path + ".bad")  # keep it for a person, never retry it
            except OSError:
                pass

    # ---------------------------------------------------------------- counters

    def _held(self) -> Tuple[int, int]:
        return int(getattr(self._ep.core, "pending_bytes", 0) or 0), len(self._ep.held)

    def counters(self) -> dict:
        ep = self._ep
        out = {"source." + k: v for k, v in sorted(ep.counters.items())}
        out["source.held_records"] = len(ep.held)
        out["source.held_bytes"] = ep.held.nbytes
        out["core.pending_bytes"] = int(getattr(ep.core, "pending_bytes", 0) or 0)
        out["source.log_suppressed"] = self._say.suppressed
        try:
            core = dict(ep.core.counters)
        except Exception:
            core = {}
        for k, v in sorted(core.items()):
            out["core." + str(k)] = v
        return out

    def _log_counters(self, why: str) -> None:
        parts = ["%s=%s" % (k, v) for k, v in self.counters().items() if v]
        _log.info("netconsole: counters (%s) port=%d %s" % (why, self._settings["port"], " ".join(parts)))

    def _write_stats_file(self, wall: float) -> None:
        d = self._settings.get("state_dir") if self._ep is not None else None
        if not d:
            return
        path = os.path.join(d, "source-%d.json" % self._settings["port"])
        try:
            os.makedirs(d, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"time": wall, "port": self._settings["port"],
                           "ip": list(self._settings["ip"]), "counters": self.counters()},
                          f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except OSError as e:
            self._ep.counters["stats_file_errors"] += 1
            self._say("statsfile", "cannot write %s: %s" % (path, e), time.monotonic(), "warning")

    def _periodic(self, now: float) -> None:
        interval = self._settings["stats_interval"]
        if interval and now - self._last_stats_log >= interval:
            self._last_stats_log = now
            self._log_counters("periodic")
        if now - self._last_stats_file >= STATS_FILE_PERIOD:
            self._last_stats_file = now
            # the counters move with every datagram; write only when something happened
            drops = kernel_drops(self._ep.socks.values())
            if drops is not None and drops != self._ep.counters["kernel_drops"]:
                self._ep.counters["kernel_drops"] = drops
                self._dirty = True
            if self._dirty or self._ep.counters["datagrams"] != getattr(self, "_written_dg", -1):
                self._dirty = False
                self._written_dg = self._ep.counters["datagrams"]
                self._write_stats_file(time.time())
            _sweep_orphans(now)
