"""The source glue driven in plain Python (no syslog-ng): option conversion for 3.38
(str) and 4.x (typed) values, flow control (syslog-ng's blocking post) in order,
reload take-over, and that a failing message build is counted, not fatal. The real
daemon is exercised by the other files of this tier; these pin the corner cases."""

import socket
import threading
import time

import pytest

from harness.sng import free_udp_port, wait_for
from harness.ncdata import ext, ext_fragments
from syslogng_netconsole.ingest.reassembly import ReassemblyLimits
from syslogng_netconsole.sng import endpoint, source as sng_source


class FakeMessage(dict):
    """Stands in for syslogng.LogMessage: records what the glue sets."""

    def __init__(self, text):
        super().__init__(MESSAGE=text)

    def set_pri(self, pri):
        self["PRI"] = pri

    def set_timestamp(self, ts):
        self["TIMESTAMP"] = ts


class Source(sng_source.NetconsoleSource):
    """post_message as syslog-ng's blocking mode (python-source.c without suspend()):
    the message is taken, then the call waits while the window is full, until the
    window opens (`open_window()`) or `request_exit()` ends the wait."""

    window = 10 ** 9

    def __init__(self):
        self.posted = []
        self.cond = threading.Condition()
        self.exiting = False

    def post_message(self, msg):
        with self.cond:
            self.posted.append(msg)
            while len(self.posted) >= self.window and not self.exiting:
                self.cond.wait()

    def open_window(self):
        with self.cond:
            self.window = 10 ** 9
            self.cond.notify_all()

    def request_exit(self):
        super().request_exit()
        with self.cond:             # syslog-ng signals the waiting post after request_exit()
            self.exiting = True
            self.cond.notify_all()


def test_the_source_posts_in_syslog_ngs_blocking_mode():
    """No suspend()/wakeup(): python-source.c's non-blocking mode races (sng/source.py)."""
    assert not hasattr(sng_source.NetconsoleSource, "suspend")
    assert not hasattr(sng_source.NetconsoleSource, "wakeup")


@pytest.fixture
def fake_logmessage(monkeypatch):
    monkeypatch.setattr(sng_source, "LogMessage", FakeMessage)


@pytest.fixture(autouse=True)
def close_endpoints():
    """Each test's sources leave their sockets in the module registry (as they would
    for a reload): close them afterwards."""
    yield
    with endpoint._LOCK:
        for key, ep in list(endpoint._ENDPOINTS.items()):
            if ep.owner is None:
                del endpoint._ENDPOINTS[key]
                ep.close()


def start(src, **options):
    opts = {"ip": "127.0.0.1", "port": str(free_udp_port()), "stats_interval": "0"}
    opts.update(options)
    assert src.init(opts) is True
    t = threading.Thread(target=src.run, daemon=True)
    t.start()
    return t, int(opts["port"]) if not isinstance(opts["port"], int) else opts["port"]


def stop(src, t):
    src.request_exit()
    t.join(5)
    assert not t.is_alive()
    src.deinit()


def test_options_as_3_38_and_4x_pass_them():
    s38, _ = sng_source.parse_options({"ip": "0.0.0.0, ::", "port": "6666", "reuseport": "yes",
                                       "rcvbuf": "0", "fragment_timeout": "2.5", "max_hosts": ""})
    s4x, lim = sng_source.parse_options({"ip": "0.0.0.0,::", "port": 6666, "reuseport": True,
                                         "rcvbuf": 0, "fragment-timeout": 2.5})
    assert s38 == s4x
    assert s38["ip"] == ("0.0.0.0", "::") and s38["port"] == 6666 and s38["reuseport"] is True
    assert lim == ReassemblyLimits(frag_timeout=2.5)


@pytest.mark.parametrize("options, named", [
    ({"port": "0"}, "'port'"), ({"port": "70000"}, "'port'"), ({"ip": "10.0.0"}, "'ip'"),
    ({"reuseport": "maybe"}, "'reuseport'"), ({"rcvbuf": "-1"}, "'rcvbuf'"),
    ({"line_timeout": "soon"}, "'line_timeout'"), ({"colour": "red"}, "'colour'"),
    ({"max_hosts": "0"}, "'max_hosts'"),
])
def test_bad_options_are_config_errors_naming_the_option(options, named):
    with pytest.raises(ValueError) as e:
        sng_source.parse_options(options)
    assert named in str(e.value)
    assert Source().init(options) is False


def test_flow_control_waits_for_the_window_and_keeps_the_order(fake_logmessage):
    src = Source()
    src.window = 5
    t, port = start(src)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.bind(("127.0.0.60", 0))
            for seq in range(1, 21):
                tx.sendto(ext(seq, "r%d" % seq), ("127.0.0.1", port))
            wait_for(lambda: len(src.posted) == 5, 5)
            time.sleep(0.3)
            assert len(src.posted) == 5                       # the 5th post waits
            src.open_window()                                 # from "another thread"
            wait_for(lambda: len(src.posted) == 20, 5)
    finally:
        stop(src, t)
    assert [m["MESSAGE"] for m in src.posted] == ["r%d" % i for i in range(1, 21)]
    m = src.posted[0]
    assert m["HOST"] == "127.0.0.60"
    assert m[".netconsole.seq"] == "1"
    assert m["PRI"] == 6


def test_records_held_back_by_flow_control_are_journaled_for_detection(fake_logmessage,
                                                                       tmp_path):
    """syslog-ng's window is full while an Oops arrives, then syslog-ng is killed: the
    records drained but never taken are in the journal (journaled before the post that
    waits; a restart replays it: test_incidents.py, test_sigkill_with_a_report_open_...).
    Records still in the kernel's buffer are not read while a post waits (sng/source.py)."""
    from harness.samples import OOPS_LINES
    from syslogng_netconsole.sng import journal
    src = Source()
    src.window = 3
    port = free_udp_port()
    assert src.init({"ip": "127.0.0.1", "port": str(port), "stats_interval": "0", "detect": "yes",
                     "detect_worker": "no", "state_dir": str(tmp_path)}) is True
    t = threading.Thread(target=src.run, daemon=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.bind(("127.0.0.61", 0))
            # all wait in the socket before the loop runs: one read batch drains them
            for seq, line in enumerate(OOPS_LINES[:30], 1):
                tx.sendto(ext(seq, line), ("127.0.0.1", port))
            t.start()
            wait_for(lambda: src._ep.counters["datagrams"] == 30, 5)
            wait_for(lambda: src._det.kept.count() >= 30, 5)
            wait_for(lambda: len(src.posted) == 3, 5)       # the third post waits
            time.sleep(0.2)
            assert len(src.posted) == 3 and len(src._ep.held) == 27
            path = journal.journal_path(str(tmp_path), port)
            wait_for(lambda: len(journal.load(path, 0.0)[0]) >= 30, 5)
            texts = [rec[1] for rec, _ in journal.load(path, 0.0)[0]]
            assert texts[:30] == OOPS_LINES[:30]      # posted or not, all of them
    finally:
        src.open_window()
        stop(src, t)


def test_reload_hands_socket_and_state_to_the_next_instance(fake_logmessage):
    first = Source()
    t, port = start(first)
    frag = [f for f in ext_fragments(9, "B" * 1500)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.bind(("127.0.0.61", 0))
        tx.sendto(frag[0], ("127.0.0.1", port))
        wait_for(lambda: first._ep.counters["datagrams"] == 1, 5)
        sock = list(first._ep.socks.values())[0]
        stop(first, t)
        tx.sendto(frag[1], ("127.0.0.1", port))              # arrives between the two
        second = Source()
        t2, _ = start(second, port=str(port))
        try:
            assert list(second._ep.socks.values())[0] is sock
            wait_for(lambda: second.posted, 5)
        finally:
            stop(second, t2)
    assert [m["MESSAGE"] for m in second.posted] == ["B" * 1500]
    assert first.posted == []


def test_a_failing_message_build_is_counted_and_the_loop_goes_on(monkeypatch):
    built = []

    def picky(text):
        if "poison" in text:
            raise ValueError("cannot build")
        built.append(text)
        return FakeMessage(text)

    monkeypatch.setattr(sng_source, "LogMessage", picky)
    src = Source()
    t, port = start(src)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.bind(("127.0.0.62", 0))
            tx.sendto(ext(1, "poison"), ("127.0.0.1", port))
            tx.sendto(ext(2, "fine"), ("127.0.0.1", port))
            wait_for(lambda: src.posted, 5)
            assert src._ep.counters["message_errors"] == 1
    finally:
        stop(src, t)
    assert [m["MESSAGE"] for m in src.posted] == ["fine"]


def test_glue_throughput_outside_syslog_ng(fake_logmessage):
    """Records/s through socket + core + message building (no syslog-ng): a figure for
    the notes, with a floor far below what this machine does even when busy."""
    src = Source()
    t, port = start(src)
    n = 5000
    data = [ext(seq, "nf_conntrack: table full, dropping packet %d" % seq) for seq in range(1, n + 1)]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.bind(("127.0.0.63", 0))
            t0 = time.monotonic()
            for i in range(0, n, 200):
                for d in data[i:i + 200]:
                    tx.sendto(d, ("127.0.0.1", port))
                wait_for(lambda: src._ep.counters["datagrams"] >= i + 200 - 400, 10, interval=0.001)
            wait_for(lambda: len(src.posted) >= n - 1, 10, interval=0.001)
            elapsed = time.monotonic() - t0
    finally:
        stop(src, t)
    rate = (n - 1) / elapsed
    print("glue+core: %d records in %.2fs = %.0f records/s" % (n - 1, elapsed, rate))
    assert rate > 1000


def test_sockets_above_fd_1024_work(fake_logmessage):
    """syslog-ng keeps a file open per host: the source's sockets may get fds above
    select()'s FD_SETSIZE (1024). The loop uses poll(), so they still work."""
    import os
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1200
    if hard != resource.RLIM_INFINITY and hard < want + 100:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want + 100), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(want)]
    try:
        src = Source()
        t, port = start(src)
        try:
            assert min(s.fileno() for s in src._ep.socks.values()) > 1024
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.bind(("127.0.0.64", 0))
                tx.sendto(ext(1, "high fd"), ("127.0.0.1", port))
                wait_for(lambda: src.posted, 5)
        finally:
            stop(src, t)
        assert src.posted[0]["MESSAGE"] == "high fd"
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_held_records_are_capped_in_bytes_and_counted(fake_logmessage, monkeypatch):
    """Held records are bounded (count and text bytes): what one read batch brings
    beyond the cap is dropped, oldest first, and counted; while a post waits for
    syslog-ng's window nothing more is read (the kernel buffers it)."""
    monkeypatch.setattr(endpoint, "MAX_HELD_BYTES", 2000)
    src = Source()
    src.window = 1
    port = free_udp_port()
    assert src.init({"ip": "127.0.0.1", "port": str(port), "stats_interval": "0"}) is True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.bind(("127.0.0.65", 0))
        # all ten wait in the socket before the loop runs: one read batch takes them
        for seq in range(1, 11):
            tx.sendto(ext(seq, "%03d" % seq + "h" * 497), ("127.0.0.1", port))
        t = threading.Thread(target=src.run, daemon=True)
        t.start()
        try:
            wait_for(lambda: src._ep.counters["dropped_held"] > 0, 5)
            time.sleep(0.5)
            held = src._ep.held
            assert held.nbytes < 2000 and len(held) == 2
            # more datagrams now stay in the kernel: the loop waits in its post
            for seq in range(11, 14):
                tx.sendto(ext(seq, "%03d" % seq + "h" * 497), ("127.0.0.1", port))
            time.sleep(0.5)
            assert src._ep.counters["datagrams"] == 10
            src.open_window()
            wait_for(lambda: src._ep.counters["datagrams"] == 13 and not src._ep.held
                     and len(src.posted) >= 6, 5)
            time.sleep(0.2)
            dropped = src._ep.counters["dropped_held"]
        finally:
            stop(src, t)
    # the batch's ten records came out at once (none waits for continuations): the
    # seven oldest went over the cap; 008 was posted (and its post waited);
    # 009-010 were held; 011-013 were read once the window opened
    assert dropped == 7
    assert [m["MESSAGE"][:3] for m in src.posted] == ["008", "009", "010", "011", "012", "013"]
