"""One failing stage never stops the others, and nothing is lost once it clears: a
real syslog-ng (3.38, and Debian 13's 4.8 in strict `@version: 4.4` mode in the
chroot) with the unmodified drop-in, real datagrams of a NULL-pointer Oops + panic,
and per fault: the per-host log keeps every line, the incident is stored (or, where
the store itself is the fault, stored once it clears), and the alert arrives.

Faults: an alert channel that cannot be imported (a module shadowing smtplib on the
interpreter's path), the SMTP server down, Alertmanager answering 500, a full disk
under the state directory (a 256 KiB tmpfs), a state directory that cannot be made.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

from alert_servers import HttpServer, SmtpServer, free_port, wait_for
from harness import chroot, samples
from harness.sng import Syslogng, available
from test_alerts_syslogng import extended, incidents

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]
LINES = samples.OOPS_LINES + samples.PANIC_LINES
RETRY = "retry_base('0.5') retry_cap('1')"
VERSIONS = ["3.38", pytest.param("4.x", marks=pytest.mark.chroot)]


@pytest.fixture(params=VERSIONS)
def collector(request, tmp_path):
    """make(alert_options, statedir=None, env=None) -> a Syslogng not started yet."""
    made = []
    if request.param == "4.x":
        why = chroot.why_unavailable()
        if why:
            pytest.skip(why)
        root = chroot.ensure_chroot("trixie", chroot.SYSLOGNG_4X)
    else:
        why = available()
        if why:
            pytest.skip(why)
        root = None

    def make(options, statedir=None, env=None):
        kw = dict(chroot=root, version="4.4", tmpdir=None) if root else dict(
            tmpdir=tmp_path / "sng")
        sng = Syslogng(defines={"netconsole_alert_options": options}, env=env, **kw)
        if statedir is not None:
            sng.statedir = pathlib.Path(statedir(sng))
        made.append(sng)
        return sng
    make.timeout = 40 if root else 20
    yield make
    for sng in made:
        sng.stop()


def crash(sng, host):
    sng.sender(host).send_all(extended(LINES), pace=0.001)
    assert wait_for(lambda: len(sng.log_lines(host)) == len(LINES), 15), sng.stderr_tail()


def stored(sng, host):
    return [r for r in incidents(sng.statedir) if r["host"] == host]


def test_a_channel_that_cannot_be_imported(collector, tmp_path):
    web = HttpServer().start()
    try:
        sng = collector("smtp_host('127.0.0.1') smtp_port('9') mail_to('ops@example.org') "
                        "webhook_url('%s')" % web.url)
        shim = sng.tmp / "shim"
        shim.mkdir()
        (shim / "smtplib.py").write_text("raise ImportError('smtplib shadowed by the test')\n")
        repo = sng.inside(pathlib.Path(__file__).resolve().parents[2])
        sng.env["PYTHONPATH"] = "%s:%s" % (sng.inside(shim), repo)
        sng.start(timeout=collector.timeout)
        crash(sng, "127.0.7.1")
        assert wait_for(lambda: stored(sng, "127.0.7.1"), 15), sng.stderr_tail()
        assert wait_for(lambda: web.requests, 15), sng.stderr_tail()
        err = sng.stderr_text()
        assert "channel mail cannot start" in err and "smtplib shadowed" in err, err[-3000:]
    finally:
        web.stop()


def test_smtp_down_then_up(collector):
    port = free_port()
    sng = collector("smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') "
                    "mail_to('ops@example.org') %s" % (port, RETRY))
    sng.start(timeout=collector.timeout)
    crash(sng, "127.0.7.2")
    assert wait_for(lambda: stored(sng, "127.0.7.2"), 15), sng.stderr_tail()
    mail = SmtpServer(port=port).start()          # the fault clears
    try:
        assert wait_for(lambda: mail.messages, 20), sng.stderr_tail()
        [msg] = mail.parsed()
        assert "127.0.7.2" in str(msg["Subject"])
    finally:
        mail.stop()


def test_alertmanager_answering_500_then_ok(collector):
    am = HttpServer().start()
    am.responses = [(500, {}, "boom")] * 3
    try:
        sng = collector("alertmanager_url('http://127.0.0.1:%d') %s" % (am.port, RETRY))
        sng.start(timeout=collector.timeout)
        crash(sng, "127.0.7.3")
        assert wait_for(lambda: stored(sng, "127.0.7.3"), 15), sng.stderr_tail()
        assert wait_for(lambda: am.requests, 20), sng.stderr_tail()
        assert am.responses == [] and am.requests[0]["path"] == "/api/v2/alerts"
        [doc] = am.requests[0]["json"]
        assert doc["labels"]["host"] == "127.0.7.3"
    finally:
        am.stop()


def test_full_disk_under_the_state_directory(collector):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    web = HttpServer().start()
    sng = collector("webhook_url('%s') %s" % (web.url, RETRY),
                    statedir=lambda s: s.tmp / "full")
    sng.statedir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(sng.statedir)],
                   check=True)
    try:
        filler = sng.statedir / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:                                    # ENOSPC ends it: the disk is full
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        sng.start(timeout=collector.timeout)
        crash(sng, "127.0.7.4")                 # the per-host log does not care
        assert wait_for(lambda: web.requests, 20), sng.stderr_tail()     # alerts go on
        assert wait_for(lambda: "cannot store incident" in sng.stderr_text()
                        or "incident store unavailable" in sng.stderr_text(), 10)
        filler.unlink()                         # the fault clears
        assert wait_for(lambda: stored(sng, "127.0.7.4"), 30), sng.stderr_tail()
        assert len(stored(sng, "127.0.7.4")) == 1
        # the source's crash report journal is written again too
        assert wait_for(lambda: list(sng.statedir.glob("source-*.journal")), 15)
        assert len({r["json"]["netconsole"]["id"] for r in web.requests}) == 1
    finally:
        sng.stop()
        subprocess.run(["umount", "-l", str(sng.statedir)])
        web.stop()


def test_a_state_directory_that_cannot_be_made_yet(collector):
    sng = collector("", statedir=lambda s: s.tmp / "blocked" / "state")
    blocker = sng.statedir.parent
    blocker.write_text("a file where the directory should be")
    sng.start(timeout=collector.timeout)
    crash(sng, "127.0.7.5")
    assert wait_for(lambda: "incident store unavailable" in sng.stderr_text(), 10)
    assert wait_for(lambda: "netconsole-incidents: host=127.0.7.5" in sng.stderr_text(), 10)
    blocker.unlink()                            # the fault clears
    assert wait_for(lambda: stored(sng, "127.0.7.5"), 30), sng.stderr_tail()
    assert len(stored(sng, "127.0.7.5")) == 1
    shutil.rmtree(sng.statedir, ignore_errors=True)
