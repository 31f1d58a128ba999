"""The .deb in clean Debian 12 and 13 chroots: apt installs it (resolving its Depends
offline from the image's apt cache), the distribution's syslog-ng starts with its stock
syslog-ng.conf (which includes conf.d), a real QEMU kernel crash capture is replayed
over UDP with the installed CLI, and the per-host log and the incident appear; `man`
prints the installed manual pages, and lintian finds nothing to say about the .deb. After
`apt-get purge`, the stock syslog-ng still starts.

Each syslog-ng runs in its own network namespace (harness.chroot newnet): the stock
drop-in listens on 0.0.0.0:6666, which must not clash with anything on the host.
"""

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from harness import chroot
from pkgtest import (CRASH_MARKERS, IMAGE_PACKAGES, PACKAGE, PREDOWNLOAD, REPO, SUITES, analyze,
                     decode_records)

pytestmark = pytest.mark.packaging

PORT = 6666  # the stock drop-in's port (SCL default netconsole_port)
STATE = "var/lib/syslog-ng/netconsole"
LOGDIR = "var/log/netconsole"
SCL = "usr/share/syslog-ng/include/scl/netconsole/netconsole.conf"
DROPIN = "etc/syslog-ng/conf.d/netconsole.conf"
DROPIN_TARGET = "/usr/share/syslog-ng-netconsole/netconsole.conf"  # absolute, in-chroot
SYSLOGNG_VERSION = {"bookworm": "3.38", "trixie": "4.8"}
APT = ["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", "--no-install-recommends"]
# the manual pages (docs/man/) as installed, and the `man` arguments that find them
MAN_PAGES = {"usr/share/man/man1/syslogng-netconsole.1.gz": ["syslogng-netconsole"],
             "usr/share/man/man5/syslogng-netconsole.conf.5.gz": ["5", "syslogng-netconsole.conf"]}


def run(root, argv, timeout=300, **kw):
    """A command in the chroot, offline (own network namespace); returns the result."""
    return chroot.run_in_chroot(root, argv, newnet=True, capture_output=True, text=True,
                                timeout=timeout, **kw)


def ok(p):
    assert p.returncode == 0, "rc %d\n%s\n%s" % (p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p


@pytest.fixture(scope="module", params=SUITES)
def installed(request, chroot_ok, deb_file):
    """(suite, root, apt output): a clean chroot with the .deb installed by apt from a
    local repository (apt cannot take ./x.deb here: its python3-minimal pre-configure
    step fails with 'Pathname to install is not absolute')."""
    suite = request.param
    root = chroot.clean_chroot(suite, IMAGE_PACKAGES, PREDOWNLOAD)
    try:
        repo = root / "srv/netconsole-repo"
        repo.mkdir(parents=True)
        shutil.copy(deb_file, repo)
        scan = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo,
                              capture_output=True, check=True, timeout=60)
        (repo / "Packages").write_bytes(scan.stdout)
        local = "sources.list.d/netconsole-local.list"
        # copy: (not file:) so apt copies the .deb into its cache: absolute paths again
        (root / "etc/apt" / local).write_text("deb [trusted=yes] copy:/srv/netconsole-repo ./\n")
        ok(run(root, ["apt-get", "update", "-o", "Dir::Etc::sourcelist=" + local,
                      "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"]))
        p = ok(run(root, APT + ["install", PACKAGE]))
        yield suite, root, p.stdout + p.stderr
    finally:
        chroot.remove_chroot(root.parent)


def test_install_layout(installed):
    suite, root, apt_out = installed
    # the glue modules import at install time (postinst checks before restarting)
    assert "do not import" not in apt_out and "--syntax-only' failed" not in apt_out, apt_out
    assert (root / SCL).is_file()
    link = root / DROPIN
    # a package-owned symlink, not a conffile: gone with the package
    assert link.is_symlink() and os.readlink(link) == DROPIN_TARGET
    assert (root / DROPIN_TARGET.lstrip("/")).is_file()
    conffiles = ok(run(root, ["dpkg-query", "-W", "-f", "${Conffiles}", PACKAGE])).stdout
    assert "conf.d" not in conffiles
    assert "/etc/logrotate.d/syslog-ng-netconsole" in conffiles
    for d, mode in ((STATE, 0o750), (LOGDIR, 0o2750)):
        st = (root / d).stat()
        assert st.st_mode & 0o7777 == mode, (d, oct(st.st_mode))
    # the Python package for the distribution's python3 (the one syslog-ng embeds)
    probe = ok(run(root, ["python3", "-c",
                          "import sys, syslogng_netconsole as p, syslogng_netconsole.sng.source,"
                          " syslogng_netconsole.sng.dest, regex;"
                          " print(p.__file__, p.__version__, sys.version_info[:2])"])).stdout
    assert probe.startswith("/usr/lib/python3/dist-packages/syslogng_netconsole/__init__.py"), probe
    version = ok(run(root, ["syslogng-netconsole", "--version"])).stdout.strip()
    assert version and version in probe
    ver = ok(run(root, ["syslog-ng", "--version"])).stdout
    assert "Installer-Version: %s." % SYSLOGNG_VERSION[suite] in ver, ver
    # the stock configuration (with conf.d and the SCL) parses
    ok(run(root, ["syslog-ng", "--syntax-only"]))


def test_man_shows_the_installed_pages(installed):
    """`man syslogng-netconsole` (man-db in the chroot) prints the installed page, not
    one from the checkout; the same for the SCL options' page."""
    suite, root, _ = installed
    for path, args in MAN_PAGES.items():
        # a dpkg path-exclude of /usr/share/man (as in Docker images) would drop them
        assert (root / path).is_file(), "%s not installed (dpkg path-exclude?)" % path
        where = ok(run(root, ["man", "-w"] + args)).stdout.strip()
        assert where == "/" + path, (args, where)
        p = ok(run(root, ["man", "--warnings", "-P", "cat"] + args, env={"MANWIDTH": "80"}))
        assert p.stderr == "", (args, p.stderr)
        name = path.rsplit("/", 1)[1][:-len(".N.gz")]
        assert re.search(r"^NAME\n +%s +- " % re.escape(name), p.stdout, re.M), p.stdout[:800]
        src = (REPO / "docs/man" / path.rsplit("/", 1)[1][:-3]).read_text()
        for title in re.findall(r"^\.SH (.+)$", src, re.M):    # every section is there
            assert "\n%s\n" % title.strip('"') in p.stdout, (args, title)
    # the command's page covers each sub-command
    page = ok(run(root, ["man", "-P", "cat", "syslogng-netconsole"])).stdout
    for command in ("decode", "replay", "analyze", "incidents", "test-alert"):
        assert re.search(r"^ +%s$" % command, page, re.M), command


def test_lintian_is_clean(deb_file):
    """lintian --pedantic: no tag at all, in particular no more no-manual-page."""
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed (tests/install-deps.sh installs it)")
    p = subprocess.run(["lintian", "--pedantic", "-I", "--tag-display-limit", "0", str(deb_file)],
                       capture_output=True, text=True, timeout=600)
    tags = [ln for ln in p.stdout.splitlines() if re.match(r"[EWIPXO]: ", ln)]
    assert not [t for t in tags if "manual-page" in t or "manpage" in t], tags
    assert tags == [], tags
    assert p.returncode == 0, p.stdout + p.stderr


def test_postinst_restarts_only_a_valid_configuration(installed):
    """postinst configure asks the service manager for a restart (try-restart: a stopped
    syslog-ng stays stopped) only when the configuration parses and the glue imports.
    The service manager is the boundary here: a recording invoke-rc.d stands in."""
    suite, root, _ = installed
    fakebin, calls = root / "tmp/fakebin", root / "tmp/invoke-rc.d.calls"
    fakebin.mkdir(exist_ok=True)
    (fakebin / "invoke-rc.d").write_text('#!/bin/sh\necho "$@" >> /tmp/invoke-rc.d.calls\n')
    (fakebin / "invoke-rc.d").chmod(0o755)
    env = {"PATH": "/tmp/fakebin:" + chroot.PATH}
    postinst = ["sh", "/var/lib/dpkg/info/%s.postinst" % PACKAGE, "configure", "0.0.1"]

    def configure():
        if calls.exists():
            calls.unlink()
        p = ok(run(root, postinst, env=env))
        return (calls.read_text() if calls.exists() else ""), p.stderr

    called, _ = configure()
    assert called == "syslog-ng try-restart\n"

    broken = root / "etc/syslog-ng/conf.d/zz-broken.conf"
    broken.write_text("this is not a syslog-ng configuration;\n")
    try:
        called, err = configure()
    finally:
        broken.unlink()
    assert called == "" and "--syntax-only' failed" in err, err

    # a glue module that cannot import would stop syslog-ng at start, and --syntax-only
    # does not import Python code; here the store's sqlite3 extension is hidden
    ext = next(root.glob("usr/lib/python3.*/lib-dynload/_sqlite3.*.so"))
    ext.rename(ext.with_name(ext.name + ".off"))
    try:
        called, err = configure()
    finally:
        ext.with_name(ext.name + ".off").rename(ext)
    assert called == "" and "do not import" in err and "sqlite3" in err, err


class Daemon:
    """The chroot's syslog-ng with its stock syslog-ng.conf, in the foreground."""

    def __init__(self, root, name):
        self.root = root
        self.err = root / ("tmp/%s.stderr" % name)
        with open(self.err, "wb") as fh:
            self.proc = chroot.popen_in_chroot(root, ["syslog-ng", "-F", "-e"], newnet=True,
                                               stdout=fh, stderr=subprocess.STDOUT)

    def stderr(self):
        return self.err.read_text(errors="replace")

    def in_ns(self, argv, timeout=120):
        """argv inside the chroot, in this syslog-ng's mount and network namespaces."""
        cmd = ["nsenter", "-t", str(self.proc.pid), "-m", "-n", "--", "chroot", str(self.root),
               "env", "-i"] + ["%s=%s" % kv for kv in chroot.chroot_env().items()] + list(argv)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def wait_started(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "syslog-ng exited rc %s:\n%s" % (
                self.proc.returncode, self.stderr()[-4000:])
            if "starting up" in self.stderr():
                return
            time.sleep(0.2)
        raise AssertionError("syslog-ng did not start in %ds:\n%s" % (timeout, self.stderr()[-4000:]))

    def udp_bound(self, port):
        p = subprocess.run(chroot.netns_argv(self.proc.pid) + ["ss", "-Hlun", "sport = :%d" % port],
                           capture_output=True, text=True, timeout=30)
        return ":%d" % port in p.stdout

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(message())


def dropin_routes_incidents(root):
    text = (root / DROPIN_TARGET.lstrip("/")).read_text()
    return any("netconsole_incidents(" in line and not line.lstrip().startswith("#")
               for line in text.splitlines())


def incident_rows(db):
    """(host, type, title, signature) of every stored incident, sorted."""
    if not db.exists():
        return []
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return sorted(con.execute("SELECT host, type, title, signature FROM incidents"))
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def test_collects_crash_captures(installed, crash_captures):
    """Each capture into a freshly started stock syslog-ng (outputs cleared between)."""
    suite, root, _ = installed
    assert dropin_routes_incidents(root), "the drop-in must route to netconsole_incidents()"
    for capture in crash_captures:
        for old in list((root / LOGDIR).iterdir()) + list((root / STATE).iterdir()):
            old.unlink()
        collect(root, "collect-%s-%s" % (suite, capture.stem), capture)
        print("collected %s in %s" % (capture.name, suite))


def collect(root, name, capture):
    records = decode_records(capture)
    hosts = sorted({r["host"] for r in records})
    assert len(hosts) == 1, hosts  # one QEMU guest: replay sends it from 127.0.0.2
    streams = {r["src_port"] for r in records}
    # what the drop-in's per-host file template writes for each record
    want = [line for r in records for line in r["dmesg"].split("\n")]
    assert any(m in "\n".join(want) for m in CRASH_MARKERS)
    # the same incidents as the checkout's detector finds in the capture
    want_rows = sorted(("127.0.0.2", i["type"], i["title"], i["signature"])
                       for i in analyze(capture))
    assert want_rows
    shutil.copy(capture, root / "tmp/capture.pcap")
    log = root / LOGDIR / "127.0.0.2.log"
    db = root / STATE / "incidents.sqlite"

    def lines():
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    sng = Daemon(root, name)
    try:
        sng.wait_started()
        wait_for(lambda: sng.udp_bound(PORT), 20,
                 lambda: "port %d never bound:\n%s" % (PORT, sng.stderr()[-3000:]))
        # the installed CLI replays the capture, from inside the daemon's namespaces
        ok(sng.in_ns(["syslogng-netconsole", "replay", "/tmp/capture.pcap",
                      "--to", "127.0.0.1:%d" % PORT, "--speed", "0"]))
        wait_for(lambda: len(lines()) >= len(want), 60,
                 lambda: "%s: per-host log has %d of %d lines:\n%s" % (
                     capture.name, len(lines()), len(want), sng.stderr()[-3000:]))
        got = lines()
        if len(streams) == 1:
            assert got == want, capture.name
        else:  # several streams of one host interleave in its file
            assert sorted(got) == sorted(want), capture.name
        rows = wait_for(lambda: len(incident_rows(db)) >= len(want_rows) and incident_rows(db),
                        60, lambda: "%s: incidents %r, want %r\n%s" % (
                            capture.name, incident_rows(db), want_rows, sng.stderr()[-3000:]))
        assert rows == want_rows, capture.name
        assert sng.proc.poll() is None, sng.stderr()[-3000:]
    finally:
        rc = sng.stop()
    assert rc == 0, sng.stderr()[-3000:]
    assert "Traceback" not in sng.stderr(), sng.stderr()[-3000:]


def stock_syslog_ng_starts(root, name):
    """The stock configuration parses, and syslog-ng starts and keeps running with it,
    without the netconsole port."""
    ok(run(root, ["syslog-ng", "--syntax-only"]))
    sng = Daemon(root, name)
    try:
        sng.wait_started()
        time.sleep(1)
        assert sng.proc.poll() is None, sng.stderr()[-3000:]
        assert not sng.udp_bound(PORT)
    finally:
        rc = sng.stop()
    assert rc == 0, sng.stderr()[-3000:]


def test_remove_then_purge_leave_a_working_syslog_ng(installed):
    suite, root, _ = installed
    apt = ["apt-get", "-y", "-o", "Dpkg::Use-Pty=0"]
    # remove keeps conffiles: none of them may name the module that is gone
    ok(run(root, apt + ["remove", PACKAGE]))
    for path in (DROPIN, SCL, "usr/lib/python3/dist-packages/syslogng_netconsole",
                 "usr/bin/syslogng-netconsole") + tuple(MAN_PAGES):
        assert not os.path.lexists(root / path), path
    stock_syslog_ng_starts(root, "after-remove-%s" % suite)

    ok(run(root, apt + ["purge", PACKAGE]))
    for path in (STATE, "etc/logrotate.d/syslog-ng-netconsole"):
        assert not os.path.lexists(root / path), path
    assert "syslog-ng-netconsole" not in ok(run(root, ["dpkg", "-l"])).stdout
    stock_syslog_ng_starts(root, "after-purge-%s" % suite)
