"""A minimal syslog-ng python() source for bench/storm.py (scenario S3, drain capacity).

It measures what a Python source costs by itself, without the project's reassembly:
one UDP socket, a ``recvfrom`` loop in ``run()`` (the syslog-ng source thread), and per
datagram either nothing (``post("no")``: the floor of reading a socket from Python in
syslog-ng) or one ``LogMessage`` carrying the datagram (trailing newline stripped) as MESSAGE, posted to whatever
the log path says (``post("yes")``; storm.py routes it to per-host ``file()``s).

    source s_noop { python(class("noop_source.NoopSource")
        options("ip" "127.0.0.1" "port" "6000" "rcvbuf" "268435456" "post" "no")); };

Load it with ``PYTHONPATH=<repo>/bench`` (storm.py passes it through the harness's
``env``). Counters: the number of datagrams read is written to ``<counts>`` (option
``counts``, a path; "" = none) once a second and at exit, as ``<read> <posted>\n``.
"""

import os
import select
import socket
import threading
import time

try:
    from syslogng import LogMessage, LogSource as _Base
except ImportError:  # outside syslog-ng: importable, not runnable
    _Base = object
    LogMessage = None

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _opt(options, name, default):
    v = dict(options or {}).get(name, default)
    if isinstance(v, bytes):
        v = v.decode()
    return str(v)


class NoopSource(_Base):
    def init(self, options):
        self.ip = _opt(options, "ip", "127.0.0.1")
        self.port = int(_opt(options, "port", "6000"))
        rcvbuf = int(_opt(options, "rcvbuf", "4194304"))
        self.post = _opt(options, "post", "no").lower() in ("yes", "1", "true")
        self.counts = _opt(options, "counts", "")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.ip, self.port))
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 < rcvbuf:
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
                except OSError:
                    pass
        self.sock.setblocking(False)
        self.exit = threading.Event()
        self.wake_r, self.wake_w = os.pipe()
        self.read = self.posted = 0
        return True

    def _write_counts(self):
        if self.counts:
            tmp = self.counts + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d\n" % (self.read, self.posted))
            os.replace(tmp, self.counts)

    def run(self):
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        recv = self.sock.recvfrom
        last = time.monotonic()
        while not self.exit.is_set():
            poller.poll(1000)
            while True:  # drain the socket
                try:
                    data, addr = recv(65536)
                except BlockingIOError:
                    break
                self.read += 1
                if self.post:
                    msg = LogMessage(data.rstrip(b"\n"))  # one line per datagram in file()
                    msg["HOST"] = addr[0]
                    self.post_message(msg)
                    self.posted += 1
            now = time.monotonic()
            if now - last >= 1.0:
                last = now
                self._write_counts()
        self._write_counts()

    def request_exit(self):
        self.exit.set()
        os.write(self.wake_w, b"x")

    def deinit(self):
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
