"""Chaos: syslog-ng killed with SIGKILL at 20 seeded random points while several
hosts' real crash reports arrive interleaved, and after, restarted each time.

The traffic is the crash part of the kernel tier's captures (tests/fixtures/): a
6.1 NULL-pointer Oops + panic (extended), a 6.1 kernel BUG (plain format), a 6.12
WARNING (release prefix), and two hosts' sysrq-t task dumps (long, no report). The
unmodified drop-in alerts by mail (aiosmtpd), webhook and Alertmanager. Before each
kill during the traffic the test waits until the socket's receive queue is empty
(what the kernel still held dies with the socket: that is the sender's loss, not
the collector's) and then a random 0-40 ms; datagrams are sent only while syslog-ng
runs. At the end every expected incident is in the store exactly once and complete,
and every channel got each incident's alert at least once, with exactly one
distinct dedup key (alert id) per incident.
"""

import os
import pathlib
import random
import re
import signal
import socket
import time

import pytest

from alert_servers import wait_for
from harness import chroot
from harness.sng import Syslogng, _udp_sockets, available
from syslogng_netconsole.ingest.capture import read_packets
from syslogng_netconsole.ingest.reassembly import Reassembler
from syslogng_netconsole.sng.detect import SourceDetector
from test_alerts_syslogng import incidents, outbox_rows

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]
FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
HOSTS = {"127.0.3.1": "kernel-6.1-extended-oops-panic", "127.0.3.2": "kernel-6.1-plain-bug",
         "127.0.3.3": "kernel-6.12-release-warn", "127.0.3.4": "kernel-6.1-extended-sysrq-t",
         "127.0.3.5": "kernel-6.12-extended-sysrq-t"}
START = re.compile(rb"BUG: |WARNING: |cut here|sysrq: Show State")
KILLS_DURING, KILLS_AFTER = 14, 6
SEED = int(os.environ.get("CHAOS_SEED", "20261203"))     # CHAOS_SEED=N tries other points


def crash_part(name):
    """The capture's datagrams from a few before its report (or dump) to the end."""
    pkts = [p.payload for p in read_packets(str(FIXTURES / (name + ".pcap"))) if p.payload]
    first = next(i for i, p in enumerate(pkts) if START.search(p))
    return pkts[max(0, first - 10):first + 250]


def expected(parts):
    """What the core finds in the same records without any kill: (host, title)."""
    core, det = Reassembler(), SourceDetector(False)
    for host, payload in interleave(parts):
        core.process(payload, host, 6665, 6666, 1.0)
    core.flush(1.0)
    for rec in core.records():
        det.feed(rec, 1.0)
    det.pool.flush(1.0)
    det.run(1.0, 0.0)
    return sorted((i.host, i.title) for i in det.out)


def interleave(parts):
    """Each host's datagrams spread over the whole run (the reports overlap the dumps)."""
    order = sorted((i / len(p), n, host, payload) for n, (host, p) in enumerate(parts.items())
                   for i, payload in enumerate(p))
    return [(host, payload) for _, _, host, payload in order]


def rx_queue(port):
    for fields in _udp_sockets(port):
        return int(fields[4].split(":")[1], 16)
    return 0


def kill_and_restart(sng, timeout):
    # sng.proc is syslog-ng itself, in the chroot too (unshare, sh, chroot and env exec
    # it); the pid file may still name the process killed before
    sng.proc.send_signal(signal.SIGKILL)
    sng.proc.wait(10)
    sng.stop()                          # closes the harness's handles; the process is gone
    sng.start(timeout=timeout)


def run_chaos(sng, mail, web, am, timeout):
    rng = random.Random(SEED)
    parts = {h: crash_part(n) for h, n in HOSTS.items()}
    want = expected(parts)
    assert len(want) == 3, want
    traffic = interleave(parts)
    points = sorted(rng.sample(range(20, len(traffic) - 5), KILLS_DURING))
    socks = {}
    for host in HOSTS:
        s = socks[host] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))         # any port: another run may hold 6665
    sng.start(timeout=timeout)
    try:
        for n, (host, payload) in enumerate(traffic):
            if points and n == points[0]:
                points.pop(0)
                assert wait_for(lambda: rx_queue(sng.port) == 0, 10)
                time.sleep(rng.uniform(0.0, 0.04))
                kill_and_restart(sng, timeout)
            socks[host].sendto(payload, ("127.0.0.1", sng.port))
            time.sleep(0.001)
        for _ in range(KILLS_AFTER):   # while reports finish, are stored and alerted
            time.sleep(rng.uniform(0.05, 1.5))
            kill_and_restart(sng, timeout)
        ids = {}

        def stored():
            rows = incidents(sng.statedir)
            ids.update((r["id"], (r["host"], r["title"])) for r in rows)
            return len(rows) >= len(want)
        assert wait_for(stored, 40), sng.stderr_tail()

        def delivered():
            mail_ids = {m["X-Netconsole-Alert-Id"] for m in mail.parsed()}
            web_ids = {r["json"]["netconsole"]["id"] for r in web.requests if r["json"]}
            am_ids = {a["annotations"].get("incident_id") for a in am.alerts()}
            delivered.last = (mail_ids, web_ids, am_ids)
            return all(set(ids) <= got for got in (mail_ids, web_ids, am_ids)) and (
                mail_ids, web_ids, am_ids)
        got = wait_for(delivered, 60)
        assert got, (sorted(ids), delivered.last, outbox_states(sng.statedir), sng.stderr_tail())
        time.sleep(2.0)                 # nothing more arrives late
        rows = incidents(sng.statedir)
        assert sorted((r["host"], r["title"]) for r in rows) == want      # each once
        assert not any(r["truncated"] for r in rows), rows
        mail_ids, web_ids, am_ids = delivered()
        # one distinct alert per incident on every channel (a redelivery after a kill
        # repeats the same key, which the receiver's dedup folds)
        assert mail_ids == web_ids == am_ids == set(ids)
        # Alertmanager's own dedup key is the label set: one alert (fingerprint) each
        assert len({a["fingerprint"] for a in am.alerts()
                    if a["annotations"].get("incident_id") in ids}) == len(ids)
        err = sng.stderr_text()
        assert err.count("from the journal replayed") >= 1, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    finally:
        for s in socks.values():
            s.close()
        sng.stop()


def outbox_states(statedir):
    return sorted(outbox_rows(statedir))


def dropin(tmpdir, mail, web, am, **kw):
    opts = ("smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') mail_to('ops@example.org') "
            "webhook_url('%s') alertmanager_url('%s') retry_base('0.5') retry_cap('2')"
            % (mail.port, web.url, am.url))
    return Syslogng(tmpdir, defines={"netconsole_alert_options": opts}, **kw)


def test_sigkill_at_20_points_loses_no_incident_and_no_alert(tmp_path, smtp, http, alertmanager):
    why = available()
    if why:
        pytest.skip(why)
    mail, web = smtp(), http()
    run_chaos(dropin(tmp_path / "sng", mail, web, alertmanager), mail, web, alertmanager, 20)


@pytest.mark.chroot
def test_sigkill_at_20_points_in_strict_4x(tmp_path, smtp, http, alertmanager):
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    root = chroot.ensure_chroot("trixie", chroot.SYSLOGNG_4X)
    mail, web = smtp(), http()
    sng = dropin(None, mail, web, alertmanager, chroot=root, version="4.4")
    run_chaos(sng, mail, web, alertmanager, 40)
