"""A package upgrade in place loses nothing (issue 17): the .deb of the previous
release, then the .deb of this checkout, in clean Debian 12 and 13 chroots.

The previous release is 0.1.0 = commit fdb4507 (pkgtest.PREVIOUS_RELEASE: the last
landed release before this work; there is no git tag), packaged by its own
packaging/build-deb.sh from `git archive fdb4507` in a scratch directory; this
checkout is 0.2.1 (its __version__), so apt sees a real version upgrade. Both .debs sit in one local
apt repository; apt installs `=0.1.0`, then upgrades to the newest.

The scenario, with the distribution's syslog-ng and its stock syslog-ng.conf, started
by syslog-ng-core's own /etc/init.d/syslog-ng (no systemd in a chroot):
 1. local settings before the old release runs: /etc/syslog-ng/conf.d/
    00-netconsole-local.conf (webhook alerts to 127.0.0.1:18080 where nothing listens
    yet, fast retries, an inventory file for the new release), the inventory file, an edited
    /etc/logrotate.d/syslog-ng-netconsole (a conffile);
 2. 0.1.0 takes a real kernel crash capture (replayed by its own CLI, sender
    127.0.0.2): the incident is stored, its alert fails and waits in the outbox;
 3. `apt-get install` of the checkout's release. When its postinst asks for the restart, the test's
    policy-rc.d (Debian's hook for the service manager's policy) holds it: the old
    syslog-ng must still be the one running, with the new files already on disk. Then
    the first half of another crash report (sender 127.0.0.3, the plain BUG capture cut
    inside its call trace, the last datagram half a line without its newline) is sent
    and the restart released: the stop saves the open report in the journal and the
    cut line in source-6666.pending.jsonl;
 4. invoke-rc.d runs the init script's try-restart (one stop, one start); the new
    syslog-ng runs the new release: its source-6666.json says so (Debian's syslog-ng logs no
    info message of its start, so the 'listening on ... (syslogng-netconsole 0.2.1)'
    line is not looked for), and counts the saved records it restored.

Carried over and checked after the upgrade:
 - every incident 0.1.0 stored, unchanged, and listed by the new CLI;
 - the waiting alert: delivered exactly once when a real HTTP server comes up on
   18080 (as 0.1.0 rendered it), its outbox row `sent`;
 - the half report: stored once (by the new release, from the journal: flagged truncated, as
   the design says for a restored report that never ends), with the type, title and
   signature the checkout's detector gives the same bytes, named by the inventory
   (the new release reads the local settings); the cut line (pending.jsonl) is the last line of
   127.0.0.3's per-host file;
 - the per-host log of 127.0.0.2, the state directory's mode, the local conf, the
   inventory and the edited conffile, byte for byte;
 - exactly one restart request during the upgrade, none before the new files.
Then `apt-get remove` keeps the state directory and logs (and says so) and restarts
syslog-ng without the netconsole port; `purge` deletes the state directory, keeps the
non-empty log directory and says both.

Not exercised: on a systemd host invoke-rc.d calls `systemctl try-restart
syslog-ng.service` instead of the init script (same request, another executor);
apt's conffile prompt (logrotate.conf did not change between the releases).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from harness import chroot
from pkgtest import PACKAGE, PREDOWNLOAD, PREVIOUS_RELEASE, REPO, SUITES, analyze, decode_records
from syslogng_netconsole import __version__
from syslogng_netconsole.ingest.capture import PcapWriter, read_packets

pytestmark = pytest.mark.packaging

PORT = 6666
HOOK_PORT = 18080
STATE = "var/lib/syslog-ng/netconsole"
LOGDIR = "var/log/netconsole"
LOCAL_CONF = "etc/syslog-ng/conf.d/00-netconsole-local.conf"
INVENTORY = "etc/syslog-ng/netconsole-hosts.csv"
LOGROTATE = "etc/logrotate.d/syslog-ng-netconsole"
CRASH = REPO / "tests/fixtures/kernel-6.12-release-warn.pcap"     # sender 127.0.0.2
HALF = REPO / "tests/fixtures/kernel-6.1-plain-bug.pcap"          # sender 127.0.0.3
HALF_CUT = 390          # datagrams of HALF before the cut: inside its call trace
OLD = PREVIOUS_RELEASE[0]

LOCAL_CONF_TEXT = """\
# the site's settings (issue 17's upgrade test): must survive every upgrade
@define netconsole_alert_options "webhook_url('http://127.0.0.1:%d/hook') retry_base('1') retry_cap('2')"
@define netconsole_inventory "/%s"
""" % (HOOK_PORT, INVENTORY)
INVENTORY_TEXT = "address,name,role\n127.0.0.3,db-half,database\n"

# Debian's hook between maintainer scripts and the service manager: allows syslog-ng's
# actions, records every request, and while /tmp/restart-gate exists holds the request
# (after touching /tmp/restart-waiting) so the test can act just before the restart.
POLICY_RC_D = """#!/bin/sh
echo "$*" >> /tmp/policy-rc.d.calls
[ "$1" = syslog-ng ] || [ "$2" = syslog-ng ] || exit 101
if [ -e /tmp/restart-gate ]; then
    touch /tmp/restart-waiting
    while [ -e /tmp/restart-gate ]; do sleep 0.02; done
fi
exit 0
"""

# a webhook receiver: one JSON line per POST (path, alert id header, body)
HOOK_SERVER = r"""
import http.server, json, sys
out = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(json.dumps({"path": self.path, "id": self.headers.get("X-Netconsole-Alert-Id"),
                              "body": json.loads(body)}) + "\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


class Box:
    """A clean chroot and one network namespace (only lo) for everything in it: the
    syslog-ng the init script starts, apt, the CLI, the webhook server. Each command
    gets a private mount namespace with proc, sys and dev (harness.chroot), which a
    daemon started from it keeps."""

    def __init__(self, suite, tmp):
        self.suite, self.tmp = suite, tmp
        self.root = chroot.clean_chroot(suite, (), PREDOWNLOAD)
        self.holder = subprocess.Popen(["unshare", "-n", "--", "sh", "-c",
                                        "ip link set lo up && exec sleep 3600"])
        self.procs = [self.holder]
        deadline = time.monotonic() + 10
        while self.host(["ip", "-o", "link", "show", "lo"]).stdout.count("UP") == 0:
            assert time.monotonic() < deadline, "the network namespace did not come up"
            time.sleep(0.05)

    def argv(self, argv, env=None):
        return chroot.netns_argv(self.holder.pid) + chroot._argv(self.root, argv, env, False,
                                                                 None, True)

    def run(self, argv, env=None, timeout=300):
        """argv in the chroot; output to a file (a daemon it starts keeps its pipes)."""
        out = self.tmp / "out.txt"
        with open(out, "w+") as fh:
            p = subprocess.run(self.argv(argv, env), stdout=fh, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout,
                               env={"PATH": chroot.PATH})
            fh.seek(0)
            return p.returncode, fh.read()

    def ok(self, argv, env=None, timeout=300):
        rc, out = self.run(argv, env, timeout)
        assert rc == 0, "%s: rc %d\n%s" % (argv, rc, out[-4000:])
        return out

    def host(self, argv, **kw):
        """A host program inside the namespace."""
        return subprocess.run(chroot.netns_argv(self.holder.pid) + argv, capture_output=True,
                              text=True, timeout=60, **kw)

    def spawn(self, argv, log, in_chroot=False):
        """A host program (or with in_chroot, a chroot one) inside the namespace, in the
        background."""
        full = self.argv(argv) if in_chroot else chroot.netns_argv(self.holder.pid) + argv
        p = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env={"PATH": chroot.PATH})
        self.procs.append(p)
        return p

    def path(self, rel):
        return self.root / rel

    def syslog_ng_pid(self):
        try:
            pid = int(self.path("run/syslog-ng.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if os.path.exists("/proc/%d" % pid) else None

    def udp_bound(self, port):
        return bool(self.host(["ss", "-Hlun", "sport = :%d" % port]).stdout.strip())

    def recv_queue(self, port):
        """Bytes waiting in the collector's socket (None: not bound)."""
        for line in self.host(["ss", "-Hlun", "sport = :%d" % port]).stdout.splitlines():
            return int(line.split()[1])
        return None

    def close(self):
        pid = self.syslog_ng_pid()
        if pid:
            self.run(["/etc/init.d/syslog-ng", "stop"], timeout=60)
            if self.syslog_ng_pid() == pid:     # the init script could not: by its id
                os.kill(pid, signal.SIGKILL)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        chroot.remove_chroot(self.root.parent)


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.1)


def sql(db, query, args=()):
    """Rows of a query on a live WAL database (read-only; [] while it does not exist)."""
    if not db.exists():
        return []
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute(query, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def half_report(tmp):
    """HALF cut inside its report: (pcap path, the cut line's text)."""
    pkts = list(read_packets(HALF))
    cut = pkts[HALF_CUT].payload[:len(pkts[HALF_CUT].payload) // 2]
    assert not cut.endswith(b"\n")
    path = tmp / "half.pcap"
    with PcapWriter(str(path)) as w:
        for p in pkts[:HALF_CUT]:
            w.write(p.ts, p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.payload)
        p = pkts[HALF_CUT]
        w.write(p.ts, p.src_ip, p.src_port, p.dst_ip, p.dst_port, cut)
    text = decode_records(path)[-1]["text"]
    assert cut.decode().endswith(text), (cut, text)
    return path, text


def syslog_lines(box, pid):
    text = box.path("var/log/syslog").read_text(errors="replace") if box.path(
        "var/log/syslog").exists() else ""
    return [line for line in text.splitlines() if "syslog-ng[%d]:" % pid in line]


@pytest.mark.parametrize("suite", SUITES)
def test_upgrade_in_place_keeps_everything(suite, chroot_ok, previous_deb_file, deb_file,
                                           tmp_path):
    assert __version__ != OLD
    half_pcap, cut_text = half_report(tmp_path)
    want_half = analyze(half_pcap)
    want_crash = analyze(CRASH)
    assert len(want_half) == 1 and len(want_crash) == 1
    crash_lines = [line for r in decode_records(CRASH) for line in r["dmesg"].split("\n")]
    box = Box(suite, tmp_path)
    try:
        _scenario(box, half_pcap, cut_text, want_half[0], want_crash[0], crash_lines,
                  previous_deb_file, deb_file)
    finally:
        box.close()


def _scenario(box, half_pcap, cut_text, want_half, want_crash, crash_lines, old_deb, new_deb):
    t_start = time.monotonic()
    db, outbox = box.path(STATE) / "incidents.sqlite", box.path(STATE) / "outbox.db"
    # -- both releases in one local repository; the old one installed
    repo = box.path("srv/netconsole-repo")
    repo.mkdir(parents=True)
    for deb in (old_deb, new_deb):
        shutil.copy(deb, repo)
    scan = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo,
                          capture_output=True, check=True, timeout=60)
    (repo / "Packages").write_bytes(scan.stdout)
    local = "sources.list.d/netconsole-local.list"
    box.path("etc/apt/" + local).write_text("deb [trusted=yes] copy:/srv/netconsole-repo ./\n")
    box.ok(["apt-get", "update", "-o", "Dir::Etc::sourcelist=" + local,
            "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"])
    box.path(LOCAL_CONF).parent.mkdir(parents=True, exist_ok=True)
    box.path(LOCAL_CONF).write_text(LOCAL_CONF_TEXT)
    box.path(INVENTORY).write_text(INVENTORY_TEXT)
    apt = ["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", "--no-install-recommends", "install"]
    box.ok(apt + ["%s=%s" % (PACKAGE, OLD)])
    assert box.ok(["dpkg-query", "-W", "-f", "${Version}", PACKAGE]) == OLD
    rotate = box.path(LOGROTATE)
    rotate.write_text(rotate.read_text().replace("rotate 8", "rotate 52  # the site's choice"))
    mine = {rel: box.path(rel).read_bytes() for rel in (LOCAL_CONF, INVENTORY, LOGROTATE)}
    box.path("usr/sbin/policy-rc.d").write_text(POLICY_RC_D)
    calls = box.path("tmp/policy-rc.d.calls")

    # -- the old release runs, takes a crash, its alert cannot be delivered
    box.ok(["/etc/init.d/syslog-ng", "start"], timeout=60)
    old_pid = wait_for(box.syslog_ng_pid, 30, lambda: "no syslog-ng pid")
    wait_for(lambda: box.udp_bound(PORT), 30, lambda: "0.1.0 never bound %d:\n%s" % (
        PORT, "\n".join(syslog_lines(box, old_pid))))
    shutil.copy(CRASH, box.path("tmp/crash.pcap"))
    box.ok(["syslogng-netconsole", "replay", "/tmp/crash.pcap", "--to", "127.0.0.1:%d" % PORT,
            "--speed", "0"])
    crash_row = ("127.0.0.2", want_crash["type"], want_crash["title"], want_crash["signature"])
    wait_for(lambda: sql(db, "SELECT host, type, title, signature FROM incidents") == [crash_row],
             60, lambda: "0.1.0 stored %r" % sql(db, "SELECT host, title FROM incidents"))
    crash_id = sql(db, "SELECT id FROM incidents")[0][0]
    waiting = wait_for(
        lambda: sql(outbox, "SELECT alert_id, channel, state FROM deliveries"
                            " WHERE attempts >= 1 AND last_error IS NOT NULL"), 60,
        lambda: "no failed delivery: %r" % sql(outbox, "SELECT * FROM deliveries"))
    assert [(w[0], w[2]) for w in waiting] == [(crash_id, "pending")], waiting
    channel = waiting[0][1]
    log2 = box.path(LOGDIR) / "127.0.0.2.log"
    wait_for(lambda: log2.exists() and len(log2.read_text().splitlines()) == len(crash_lines),
             30, lambda: "127.0.0.2.log incomplete")
    before = {"incidents": sql(db, "SELECT * FROM incidents ORDER BY id"),
              "log2": log2.read_bytes(), "mode": box.path(STATE).stat().st_mode}
    assert before["incidents"]

    # -- the upgrade; its restart is held until the half report is in
    gate, waiting_flag = box.path("tmp/restart-gate"), box.path("tmp/restart-waiting")
    gate.touch()
    calls.write_text("")
    apt_log = open(box.tmp / "apt-upgrade.txt", "w+")
    upgrade = box.spawn(apt + [PACKAGE], apt_log, in_chroot=True)
    wait_for(lambda: waiting_flag.exists() or upgrade.poll() is not None, 300,
             lambda: "the upgrade never asked for a restart")
    assert upgrade.poll() is None, _read(apt_log)
    # nothing stopped the old syslog-ng before the restart; the new files are in place
    assert box.syslog_ng_pid() == old_pid
    installed = box.path("usr/lib/python3/dist-packages/syslogng_netconsole/__init__.py")
    assert '__version__ = "%s"' % __version__ in installed.read_text()
    shutil.copy(half_pcap, box.path("tmp/half.pcap"))
    box.ok(["syslogng-netconsole", "replay", "/tmp/half.pcap", "--to", "127.0.0.1:%d" % PORT,
            "--speed", "0", "--source-base", "127.0.0.3"])
    wait_for(lambda: box.recv_queue(PORT) == 0, 5, lambda: "0.1.0 did not read the half report")
    gate.unlink()                       # the restart goes on (within the cut line's 1 s)
    assert upgrade.wait(300) == 0, _read(apt_log)
    apt_out = _read(apt_log)
    t_upgrade = time.monotonic()

    # -- exactly one restart, onto the new code
    assert [c.replace("--quiet ", "") for c in calls.read_text().splitlines()] == [
        "syslog-ng (try-restart)"], calls.read_text()
    assert box.ok(["dpkg-query", "-W", "-f", "${Version}", PACKAGE]) == __version__
    assert box.ok(["syslogng-netconsole", "--version"]).strip() == __version__
    new_pid = wait_for(box.syslog_ng_pid, 30, lambda: "no syslog-ng after the upgrade:\n" + apt_out)
    assert new_pid != old_pid and not os.path.exists("/proc/%d" % old_pid)
    counters = box.path(STATE) / ("source-%d.json" % PORT)
    wait_for(lambda: counters.exists() and json.loads(counters.read_text()).get("version")
             == __version__, 30, lambda: "source-%d.json: %s" % (PORT, counters.read_text()))
    # (Debian's syslog-ng shows no info message of a start: the counters file tells)
    got = json.loads(counters.read_text())
    assert got["counters"].get("source.restored", 0) >= 1, got     # pending.jsonl read
    assert not got["counters"].get("source.restore_errors"), got
    assert "Traceback" not in apt_out, apt_out

    # -- the half report: stored once, by the new release
    half_rows = lambda: sql(db, "SELECT host, type, title, signature, truncated, data FROM"  # noqa: E731
                                " incidents WHERE host = '127.0.0.3'")
    rows = wait_for(half_rows, 60, lambda: "the half report was not stored:\n%s" % "\n".join(
        syslog_lines(box, new_pid)))
    assert [r[:4] for r in rows] == [("127.0.0.3", want_half["type"], want_half["title"],
                                      want_half["signature"])], rows
    assert rows[0][4] == 1                      # restored from the journal, never ended
    assert json.loads(rows[0][5])["hostname"] == "db-half"      # the site's inventory
    log3 = box.path(LOGDIR) / "127.0.0.3.log"
    wait_for(lambda: log3.exists() and log3.read_text().rstrip("\n").endswith(cut_text), 30,
             lambda: "the cut line is not in 127.0.0.3.log")

    # -- the waiting alert, once the webhook answers
    hooks = box.tmp / "hooks.jsonl"
    hooks.touch()
    box.spawn(["/usr/bin/python3", "-c", HOOK_SERVER, str(HOOK_PORT), str(hooks)],
              open(box.tmp / "hook-server.txt", "w"))
    half_id = sql(db, "SELECT id FROM incidents WHERE host = '127.0.0.3'")[0][0]

    def received():
        return [json.loads(line) for line in hooks.read_text().splitlines()]
    wait_for(lambda: {crash_id, half_id} <= {h["id"] for h in received()}, 60,
             lambda: "webhook got %r; outbox %r" % ([h["id"] for h in received()],
                                                     sql(outbox, "SELECT * FROM deliveries")))
    wait_for(lambda: sql(outbox, "SELECT state FROM deliveries WHERE alert_id = ? AND channel = ?",
                         (crash_id, channel)) == [("sent",)], 10, lambda: "not marked sent")
    time.sleep(3)                       # longer than retry_cap: a second try would be in
    ids = [h["id"] for h in received()]
    assert ids.count(crash_id) == 1 and ids.count(half_id) == 1, ids
    body = [h for h in received() if h["id"] == crash_id][0]["body"]
    assert body["alerts"][0]["labels"]["host"] == "127.0.0.2"

    # -- everything of before, unchanged; the new CLI reads it
    after = sql(db, "SELECT * FROM incidents ORDER BY id")
    # every old row as it was; the columns later schemas added (3: guilty_file) are
    # NULL for them: an old incident is not symbolized again
    width = len(before["incidents"][0])
    kept = [r for r in after if r[0] in {b[0] for b in before["incidents"]}]
    assert [r[:width] for r in kept] == before["incidents"]
    assert all(v is None for r in kept for v in r[width:]), kept
    listed = [json.loads(line) for line in box.ok(["syslogng-netconsole", "incidents",
                                                    "--json"]).splitlines()]
    assert sorted(i["id"] for i in listed) == sorted([crash_id, half_id])
    assert log2.read_bytes() == before["log2"]
    assert box.path(STATE).stat().st_mode == before["mode"]
    for rel, data in mine.items():
        assert box.path(rel).read_bytes() == data, rel
    print("%s: upgrade %s -> %s checked in %.0fs (upgrade done at %.0fs)" % (
        box.suite, OLD, __version__, time.monotonic() - t_start, t_upgrade - t_start))

    # -- remove keeps the data and says so; purge deletes the state directory
    calls.write_text("")
    out = box.ok(["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", "remove", PACKAGE])
    assert "kept /%s" % STATE in out, out
    assert [c.replace("--quiet ", "") for c in calls.read_text().splitlines()] == [
        "syslog-ng (try-restart)"]
    pid = wait_for(box.syslog_ng_pid, 30, lambda: "syslog-ng did not come back after remove")
    assert pid != new_pid
    time.sleep(1)
    assert box.syslog_ng_pid() == pid and not box.udp_bound(PORT)
    assert db.exists() and outbox.exists() and log2.read_bytes() == before["log2"]
    out = box.ok(["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", "purge", PACKAGE])
    assert "deleted /%s" % STATE in out and "kept /%s" % LOGDIR in out, out
    assert not box.path(STATE).exists() and log2.read_bytes() == before["log2"]
    assert box.path(LOCAL_CONF).read_bytes() == mine[LOCAL_CONF]


def _read(fh):
    fh.flush()
    fh.seek(0)
    return fh.read()
