"""Alerts on syslog-ng 4.x in strict mode (`@version: 4.4`): Debian 13's syslog-ng
4.8 and Python 3.13 in the cached chroot (tests/harness/chroot.py), the checkout's
SCL block with alert options, real UDP datagrams from the host and a webhook on the
host (the chroot shares the network namespace)."""


import pytest

from harness import samples
from harness import chroot
from harness.sng import Syslogng
from alert_servers import wait_for

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng, pytest.mark.chroot]
PACKAGES = chroot.SYSLOGNG_4X


def test_strict_4x_delivers_webhook_alert_once_and_survives_reload(http):
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    root = chroot.ensure_chroot("trixie", PACKAGES)
    web = http()
    sng = Syslogng(chroot=root, version="4.4")
    state = sng.inside(sng.tmp / "alertstate")
    sng.prelude = (
        'destination d_alerts {\n    netconsole_incidents(state_dir("%s") persist-name("alerts")\n'
        '        webhook_url("%s") digest_interval("1") alert_timeout("5"));\n};\n'
        'log { source(s_netconsole); destination(d_alerts); };\n' % (state, web.url))
    try:
        sng.start(timeout=40)
        lines = [("4,%d,%d,-;%s\n" % (500 + i, 9_000_000 + i, l)).encode()
                 for i, l in enumerate(samples.OOPS_LINES)]
        sng.sender("127.0.0.2").send_all(lines, pace=0.001)
        assert wait_for(lambda: web.requests, 25), sng.stderr_tail()
        doc = web.requests[0]["json"]
        assert doc["netconsole"]["host"] == "127.0.0.2"
        assert "nctest_init" in doc["netconsole"]["title"]
        assert doc["alerts"][0]["labels"]["severity"] in ("error", "critical")
        sng.reload()
        sng.sender("127.0.0.3").send_all(lines, pace=0.001)       # same signature: folded
        assert wait_for(lambda: len(web.requests) >= 2, 25), sng.stderr_tail()
        dig = web.requests[1]["json"]["netconsole"]
        assert dig["kind"] == "digest" and dig["hosts"] == ["127.0.0.3"]
        assert len(web.requests) == 2
        err = sng.stderr_text()
        assert "Traceback" not in err and "not a subclass" not in err, err[-3000:]
    finally:
        sng.stop()
