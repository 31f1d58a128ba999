"""The incidents destination inside a real syslog-ng 3.38, fed by the netconsole()
source with real UDP datagrams (tests/harness/sng.py). Checks the SQLite rows and
the JSON lines in the state directory.

Negative checks ("this is not an incident") are made deterministic by sending a
real report from the same host afterwards: once its incident is stored, anything
the earlier lines could have opened has been closed and stored too.
"""

import json
import pathlib
import time

import pytest

from harness import samples
from harness.shared import shared_path
from harness.sng import Syslogng, available, wait_for
from syslogng_netconsole.incidents.store import read_incidents
from syslogng_netconsole.sng.detect import CONFIRM_EVERY

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.syslogng

OOPS, PANIC, WARN, SYSRQ, BOOT = (samples.OOPS_LINES, samples.PANIC_LINES, samples.WARN_LINES,
                                  samples.SYSRQ_LINES, samples.BOOT_LINES)

# The drop-in routes s_netconsole to the incidents destination; CI must not depend on
# anything but the checkout.
INCIDENT_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def sng(tmp_path_factory):
    why = available()
    if why:
        pytest.skip(why)
    d = Syslogng(tmp_path_factory.mktemp("incidents"))
    d.start()
    yield d
    d.stop()
    assert "Traceback" not in d.stderr_text(), d.stderr_tail()


def plain(lines, start_us=12_345_678, step_us=97):
    return [(l + "\n").encode() for l in samples.dmesg(lines, start_us, step_us)]


def extended(lines, seq=700, start_us=12_345_678, level=4, release=None):
    out = []
    for i, line in enumerate(lines):
        body = "".join(c if 0x20 <= ord(c) < 0x7f and c != "\\" else "\\x%02x" % ord(c)
                       for c in line)
        head = "%d,%d,%d,-" % (level, seq + i, start_us + i * 97)
        if release:
            head = release + "," + head
        out.append(("%s;%s\n" % (head, body)).encode())
    return out


def stored(statedir, host=None):
    return read_incidents(statedir, host)


def db_rows(sng, host=None):
    return stored(sng.statedir, host)


def json_lines(sng, host=None):
    path = sng.statedir / "incidents.jsonl"
    if not path.exists():
        return []
    objs = [json.loads(l) for l in path.read_text().splitlines()]
    return [o for o in objs if host is None or o["host"] == host]


def wait_incidents(sng, host, n, timeout=INCIDENT_TIMEOUT):
    return wait_for(lambda: len(db_rows(sng, host)) >= n and db_rows(sng, host), timeout,
                    message="no %d incident(s) for %s within %ss:\n%s"
                    % (n, host, timeout, sng.stderr_tail()))


def test_plain_oops_host_goes_silent(sng):
    """One Oops in plain format, then silence: a timer, not a next message, ends it."""
    host = "127.0.0.2"
    s = sng.sender(host)
    s.send_all(plain(BOOT + OOPS))
    t_last = time.time()
    [row] = wait_incidents(sng, host, 1)
    delay = row["stored_at"] - t_last
    print("plain oops: stored %.2fs after the last datagram" % delay)
    assert delay < 10
    assert "NULL pointer dereference" in row["title"] and "nctest_init" in row["title"]
    assert row["first_line"].startswith("BUG: kernel NULL pointer dereference")
    assert not row["panicked"]
    assert "Linux version" not in row["text"] and "Call Trace:" in row["text"]
    time.sleep(1.0)                         # nothing more comes of it
    assert len(db_rows(sng, host)) == 1
    [line] = json_lines(sng, host)
    assert line["id"] == row["id"] and line["title"] == row["title"]


def test_extended_oops_with_panic_is_one_incident(sng):
    host = "127.0.0.3"
    s = sng.sender(host)
    s.send_all(extended(OOPS + PANIC, release="6.1.0-27-amd64"))
    [row] = wait_incidents(sng, host, 1)
    assert row["panicked"] is True
    assert "nctest_init" in row["title"]
    assert row["first_seq"] == 700
    assert row["release"] == "6.1.0-27-amd64"
    time.sleep(1.0)
    assert len(db_rows(sng, host)) == 1 and len(json_lines(sng, host)) == 1


def test_plain_and_extended_target_of_one_host_give_one_incident(sng):
    """A host with two netconsole targets (plain and extended, two source ports) sends
    every report twice; the streams stay apart but the incident is stored once."""
    host = "127.0.0.12"
    a, b = sng.sender(host), sng.sender(host)
    for p, e in zip(plain(OOPS + PANIC, start_us=70_000_000),
                    extended(OOPS + PANIC, seq=40, start_us=70_000_000)):
        a.send(p)
        b.send(e)
    [row] = wait_incidents(sng, host, 1)
    time.sleep(1.5)
    assert len(db_rows(sng, host)) == 1 and len(json_lines(sng, host)) == 1
    assert "nctest_init" in row["title"]
    a.close()
    b.close()


def test_sysrq_dump_is_not_an_incident(sng):
    host = "127.0.0.4"
    s = sng.sender(host)
    s.send_all(plain(SYSRQ, start_us=100_000_000))
    wait_for(lambda: len(sng.log_lines(host)) >= len(SYSRQ), 10)
    s.send_all(plain(WARN, start_us=200_000_000))       # a real report closes anything open
    rows = wait_incidents(sng, host, 1)
    time.sleep(1.0)
    rows = db_rows(sng, host)
    assert [r["title"].split(" ")[0] for r in rows] == ["WARNING"], [r["title"] for r in rows]
    assert "sysrq" not in rows[0]["text"] and "task:" not in rows[0]["text"]


def test_bad_input_does_not_break_the_destination(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    sng = Syslogng(tmp_path)
    sng.start()
    try:
        host = "127.0.0.5"
        s = sng.sender(host)
        junk = [b"", b"\x00" * 10, b"\xff\xfe\xc3(" * 300, bytes(range(256)) * 4, b"x" * 65000,
                b"6,abc,xyz,-;BUG: header lies\n", b"[ 1.0] BUG:\x00\n", b"\\x00\\\n" * 100,
                b"4,1,1,-,ncfrag=0/99999;BUG: soft lockup", b"Oops: \x1b[2J\r\nBcc: x@y\n",
                b"4,2,2,-;WARNING: \\x0d\\x0aBcc: evil@example.org\\x00\n"]
        s.send_all(junk)
        s.send_all(plain(OOPS + PANIC, start_us=300_000_000))
        # junk carrying a "BUG:" header may be an incident of its own: wait for the Oops
        wait_for(lambda: any("nctest_init" in r["title"] for r in db_rows(sng, host)),
                 INCIDENT_TIMEOUT, message=sng.stderr_tail())
        assert sng.alive()
    finally:
        assert sng.stop() == 0
    # the drop-in's source analyses the records (detect) and the destination gets one
    # message per incident
    source = sng.stats()["counters"]
    assert source["detect.records"] >= len(OOPS)
    assert source.get("source.detect_errors", 0) == 0 and source.get("detect.park_errors", 0) == 0
    stats = json.loads((sng.statedir / "incidents-stats.json").read_text())
    assert stats["incidents_received"] >= 1
    for k in ("bad_records", "thread_errors", "detector_errors", "store_errors", "jsonl_errors"):
        assert stats.get(k, 0) == 0, (k, stats)
    raw = (sng.statedir / "incidents.jsonl").read_bytes()
    assert all(b >= 0x20 for b in raw.replace(b"\n", b"")), "raw control bytes in the JSON lines"
    for line in raw.decode("ascii").splitlines():
        json.loads(line)                    # every line is well-formed JSON
    assert "Traceback" not in sng.stderr_text()


def host_report(n):
    """Host n's own Oops: its number in the function, comm and PID, to spot mixing."""
    tag = "h%03d" % n
    return [l.replace("nctest_init", "%s_init" % tag).replace("Comm: insmod", "Comm: %s" % tag)
             .replace("PID: 95", "PID: %d" % (1000 + n)) for l in OOPS + PANIC]


def test_hundred_hosts_crashing_at_once(tmp_path):
    """100 senders (127.0.0.2-101) crash together, datagrams interleaved line by line."""
    why = available()
    if why:
        pytest.skip(why)
    n_hosts = 100
    with Syslogng(tmp_path) as sng:
        senders = [sng.sender("127.0.0.%d" % (i + 2)) for i in range(n_hosts)]
        streams = [plain(host_report(i), start_us=50_000_000 + i) for i in range(n_hosts)]
        t0 = time.time()
        for k in range(max(len(x) for x in streams)):
            for s, st in zip(senders, streams):
                if k < len(st):
                    s.send(st[k])
            time.sleep(0.002)
        t_sent = time.time()
        rows = wait_for(lambda: len(db_rows(sng)) >= n_hosts and db_rows(sng), 60,
                        message="only %d of 100 incidents" % len(db_rows(sng)))
        t_done = max(r["stored_at"] for r in rows)
        print("100 hosts: %d datagrams sent in %.2fs, last incident stored %.2fs after the last"
              % (sum(map(len, streams)), t_sent - t0, t_done - t_sent))
        time.sleep(1.0)
        rows = db_rows(sng)
        assert len(rows) == n_hosts
        assert sorted(r["host"] for r in rows) == sorted("127.0.0.%d" % (i + 2) for i in range(n_hosts))
        for r in rows:
            n = int(r["host"].rsplit(".", 1)[1]) - 2
            tag = "h%03d" % n
            assert set(r["text"].splitlines()) <= set(host_report(n)), r["host"]   # only its own lines
            assert tag + "_init" in r["title"]
            assert r["panicked"] is True
            others = {t for t in (w[:4] for w in r["text"].replace(":", " ").split()
                                  if len(w) >= 4 and w[0] == "h" and w[1:4].isdigit())}
            assert others == {tag}, (r["host"], others)
            assert len(r["text"].splitlines()) >= len(OOPS)
        assert len(json_lines(sng)) == n_hosts
        for s in senders:
            s.close()


def test_reload_in_the_middle_of_a_report(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    with Syslogng(tmp_path) as sng:
        host = "127.0.0.6"
        s = sng.sender(host)
        lines = plain(OOPS + PANIC)
        half = len(lines) // 2
        s.send_all(lines[:half])
        wait_for(lambda: len(sng.log_lines(host)) >= half, 10)
        sng.reload()
        s.send_all(lines[half:])
        [row] = wait_incidents(sng, host, 1)
        assert row["first_line"].startswith("BUG: kernel NULL pointer dereference")
        assert "Kernel panic - not syncing" in row["text"] and row["panicked"]
        assert not row["truncated"]
        time.sleep(1.0)
        assert len(db_rows(sng, host)) == 1 and len(json_lines(sng, host)) == 1
        assert sng.stderr_text().count("background thread did not stop") == 0
        threads = [t for t in pathlib.Path("/proc/%d/task" % sng.pid).iterdir()
                   if (t / "comm").read_text().strip() == "nc-incidents"]
        assert len(threads) == 1            # no thread leaked by the reload


def collector_with_an_open_report(tmp_path, host):
    """A started collector that got an Oops up to "Modules linked in": a call trace
    (it would not be truncated if it just timed out), no end marker yet."""
    why = available()
    if why:
        pytest.skip(why)
    sng = Syslogng(tmp_path)
    sng.start()
    sng.sender(host).send_all(plain(OOPS)[:40])
    wait_for(lambda: len(sng.log_lines(host)) >= 40, 10)
    assert db_rows(sng, host) == []
    return sng


def restarted_stores_it_truncated(tmp_path, port, host):
    sng = Syslogng(tmp_path, port=port)
    sng.start()
    try:
        [row] = wait_incidents(sng, host, 1)
        assert row["truncated"] is True
        assert row["first_line"].startswith("BUG: kernel NULL pointer dereference")
        time.sleep(CONFIRM_EVERY + 1.0)     # the store confirms it: no longer journaled
    finally:
        sng.stop()
    return sng


def test_restart_with_a_report_open_stores_it_truncated(tmp_path):
    sng = collector_with_an_open_report(tmp_path, "127.0.0.7")
    assert sng.stop() == 0
    restarted_stores_it_truncated(tmp_path, sng.port, "127.0.0.7")


def test_sigkill_with_a_report_open_loses_it_not(tmp_path):
    """SIGKILL (no deinit): the journal brings the open report back; its end never
    came, so it is stored once, truncated; a second restart stores nothing again."""
    host = "127.0.0.9"
    sng = collector_with_an_open_report(tmp_path, host)
    sng.proc.kill()
    sng.proc.wait(10)
    sng.stop()
    for _ in range(2):
        again = restarted_stores_it_truncated(tmp_path, sng.port, host)
    assert len(db_rows(again, host)) == 1 and len(json_lines(again, host)) == 1
    assert "from the journal replayed" in again.stderr_text()


def test_retention_prunes_the_store_soon_after_start(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    from syslogng_netconsole.incidents.incident import Incident
    from syslogng_netconsole.incidents.store import Store
    sng = Syslogng(tmp_path, defines={"netconsole_retention": "30d"})
    store = Store(str(sng.statedir))
    for n, age_days in enumerate((400, 31, 29)):
        store.add(Incident(host="10.9.0.%d" % n, type="WARNING", title="WARNING in x",
                           signature="s", text="WARNING: x", first_seq=n),
                  time.time() - age_days * 86400)
    store.close()
    with sng:
        wait_for(lambda: len(read_incidents(str(sng.statedir))) == 1, 30,
                 message=sng.stderr_tail())
        assert "2 incident(s) older than 30 days deleted (retention)" in sng.stderr_text()
    assert [r["host"] for r in read_incidents(str(sng.statedir))] == ["10.9.0.2"]


def test_unusable_state_dir_degrades_but_runs(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    sng = Syslogng(tmp_path / "d", defines={"netconsole_statedir": str(blocker / "state")})
    with sng:
        host = "127.0.0.8"
        sng.sender(host).send_all(plain(OOPS + PANIC))
        wait_for(lambda: "netconsole-incidents: host=%s" % host in sng.stderr_text(), INCIDENT_TIMEOUT,
                 message=sng.stderr_tail())
        assert "incident store unavailable" in sng.stderr_text()
        assert sng.alive()


def test_invalid_option_is_a_config_error_naming_it(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    extra = """
destination d_bad { netconsole_incidents(state_dir("%s") max_hosts("lots")); };
log { source(s_netconsole); destination(d_bad); };
""" % (tmp_path / "bad")
    sng = Syslogng(tmp_path / "d", extra_config=extra)
    with pytest.raises(Exception) as exc:
        sng.start(timeout=15)
    sng.stop()
    assert "max_hosts" in str(exc.value)


def test_corpus_sample_live_equals_analyze(tmp_path):
    """~50 syzkaller corpus console logs, each sent by its own host (127.0.0.2...) as
    plain datagrams, all interleaved: the destination finds, per host, the same first
    incident (type and title) as `analyze` of the log file, and nothing where it finds
    nothing."""
    from syslogng_netconsole.cli import analyze as cmd_analyze

    why = available()
    if why:
        pytest.skip(why)
    corpus = shared_path("corpus", "syzkaller-linux-report")
    files = sorted((p for p in corpus.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    logs, expect = [], []
    for p in files[::12]:
        raw = p.read_bytes().replace(b"\r", b"").decode("utf-8", "backslashreplace")
        log = raw.partition("\n\n")[2].split("\n\nREPORT:\n")[0]
        f = tmp_path / ("%s.log" % p.name)
        f.write_text(log + "\n")
        logs.append(log.splitlines())
        expect.append([(i.type, i.title) for i in cmd_analyze.analyze_path(str(f))])
    assert len(logs) >= 40 and sum(1 for e in expect if e) >= 30
    with Syslogng(tmp_path / "sng") as sng:
        senders = [sng.sender("127.0.0.%d" % (i + 2)) for i in range(len(logs))]
        for k in range(max(map(len, logs))):
            for s, lines in zip(senders, logs):
                if k < len(lines):
                    s.send((lines[k] + "\n").encode())
            time.sleep(0.002)
        want = sum(1 for e in expect if e)
        wait_for(lambda: len({r["host"] for r in db_rows(sng)}) >= want, 30,
                 message="hosts with incidents: %d of %d" % (len({r["host"] for r in db_rows(sng)}), want))
        time.sleep(6.5)                     # > the quiet timeout: nothing is left open
        got = {}
        for r in db_rows(sng):
            got.setdefault(r["host"], []).append((r["type"], r["title"]))
        for s in senders:
            s.close()
    for i, e in enumerate(expect):
        live = got.get("127.0.0.%d" % (i + 2), [])
        assert bool(live) == bool(e), (i, e[:1], live[:1])
        assert live[:1] == e[:1], (i, e[:1], live[:1])


def test_the_source_posts_one_incident_message_and_the_files_get_only_records(tmp_path):
    """detect("yes") in the drop-in: the source finds the report and posts one message
    for it, routed to the incidents destination; the per-host file holds the records and
    nothing else (no empty line for the incident message)."""
    why = available()
    if why:
        pytest.skip(why)
    sng = Syslogng(tmp_path, capture_pairs=True)
    sng.start()
    host = "127.0.0.61"
    try:
        sng.sender(host).send_all(extended(OOPS + PANIC, seq=10))
        wait_for(lambda: db_rows(sng, host), INCIDENT_TIMEOUT, message=sng.stderr_tail())
        wait_for(lambda: len(sng.log_lines(host)) >= len(OOPS + PANIC), 5.0)
        time.sleep(1.5)                  # anything else would have arrived by now
        lines = sng.log_lines(host)
        pairs = [p for p in sng.pairs() if p.get("HOST") == host]
    finally:
        assert sng.stop() == 0
    assert len(lines) == len(OOPS + PANIC) and all(l.strip() for l in lines), lines[-3:]
    inc_msgs = [p for p in pairs if p.get(".netconsole.incident")]
    assert len(inc_msgs) == 1 and len(pairs) == len(OOPS + PANIC) + 1
    (row,) = db_rows(sng, host)
    m = inc_msgs[0]
    assert json.loads(m[".netconsole.incident"])["id"] == row["id"]
    assert m[".netconsole.incident_title"] == row["title"] and m[".netconsole.panicked"] == "1"
    assert m["MESSAGE"].startswith("kernel incident: ") and m["PRIORITY"] == "crit"
    counters = sng.stats()["counters"]
    assert counters["source.posted_incidents"] == 1 and counters["detect.incidents"] == 1
