"""Hosts by name from the operator's inventory and from reverse DNS, with a real
syslog-ng 3.38, the unmodified drop-in and a real SMTP server (issue 15):

- the inventory (CSV) names a host and gives it labels; rewritten while syslog-ng runs,
  it applies within seconds, without a restart or reload; its bad line is reported
  with its line number;
- reverse DNS through the system resolver, in a mount namespace of syslog-ng's own
  (its /etc/hosts and /etc/resolv.conf bound over; the machine's stay as they are):
  a name from /etc/hosts, the inventory winning over it, and a host whose lookup goes
  to a DNS server that never answers: its records are posted at once all the same
  (the lookup is not on the ingest path);
- hostile userdata values (a raw CR and ESC, an encoded word, Slack's `<!channel>`)
  reach the mail as one clean line of labels, never a header.
"""

import socket
import threading
import time

import pytest

from alert_servers import wait_for
from harness import samples
from harness.sng import Syslogng, available
from test_alerts_syslogng import incidents

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]

INV_HOST, RDNS_HOST, SLOW_HOST, UD_HOST = "127.0.8.21", "127.0.8.22", "127.0.8.23", "127.0.8.24"
INVENTORY = """address,name,rack,team
%s,inv-21,r21,storage
127.0.8.0/24,,r8,
127.0.8.300,bad,x,y
""" % INV_HOST


class SilentDns:
    """A DNS server that reads queries and never answers (counts them)."""

    def __init__(self, addr="127.0.9.53"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.sock.settimeout(0.2)
        self.queries, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sock.recv(4096)
                self.queries += 1
            except socket.timeout:
                pass

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def lines(host_lines, start_us):
    return [("[%5d.%06d] %s\n" % ((start_us + i * 97) // 10 ** 6, (start_us + i * 97) % 10 ** 6,
                                  l)).encode() for i, l in enumerate(host_lines)]


def hostname_of(sng, host, marker):
    for p in sng.pairs():
        if p.get("HOST") == host and marker in p.get("MESSAGE", ""):
            return p.get(".netconsole.hostname", "")
    return None


def named_soon(sng, host, marker, start_us, name):
    """A poll for wait_for: each call sends one more record of `host`, then says
    whether it was posted with .netconsole.hostname == `name`."""
    sent = [0]

    def poll():
        sent[0] += 1
        text = "%s-%d" % (marker, sent[0] + 1)
        sng.sender(host).send_all(lines([text], start_us + sent[0] * 1000))
        time.sleep(0.2)
        return hostname_of(sng, host, text) == name
    return poll


def test_inventory_reload_and_reverse_dns_off_the_ingest_path(tmp_path, smtp):
    why = available()
    if why:
        pytest.skip(why)
    inventory = tmp_path / "hosts.csv"
    inventory.write_text(INVENTORY)
    etc_hosts = tmp_path / "etc-hosts"
    etc_hosts.write_text("127.0.0.1 localhost\n%s ptr-21.example.org\n%s rdns-22.example.org\n"
                         % (INV_HOST, RDNS_HOST))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.9.53\noptions timeout:5 attempts:1\n")
    try:
        dns = SilentDns()
    except OSError as e:
        pytest.skip("cannot bind a DNS stub on 127.0.9.53:53: %s" % e)
    mail = smtp()
    sng = Syslogng(tmp_path / "sng", capture_pairs=True,
                   mounts={"/etc/hosts": etc_hosts, "/etc/resolv.conf": resolv},
                   defines={"netconsole_inventory": str(inventory),
                            "netconsole_reverse_dns": "yes",
                            "netconsole_alert_options": (
                                "smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') "
                                "mail_to('ops@example.org')" % mail.port)})
    sng.start(timeout=40)
    try:
        assert wait_for(lambda: "hosts.csv:4: '127.0.8.300' is not an address or network"
                        in sng.stderr_text(), 10), sng.stderr_tail()
        # the slow host first: its lookup hangs in the silent DNS server for 5 s ...
        t0 = time.monotonic()
        sng.sender(SLOW_HOST).send_all(lines(["slow-1"], 1_000_000))
        assert wait_for(lambda: hostname_of(sng, SLOW_HOST, "slow-1") is not None, 10)
        slow_posted = time.monotonic() - t0
        # ... and the others' records are not held behind it either
        t1 = time.monotonic()
        sng.sender(INV_HOST).send_all(lines(["inv-1"], 2_000_000))
        sng.sender(RDNS_HOST).send_all(lines(["rdns-1"], 3_000_000))
        assert wait_for(lambda: hostname_of(sng, INV_HOST, "inv-1") is not None
                        and hostname_of(sng, RDNS_HOST, "rdns-1") is not None, 10)
        others_posted = time.monotonic() - t1
        assert slow_posted < 2.0 and others_posted < 2.0, (slow_posted, others_posted)
        assert wait_for(lambda: dns.queries >= 1, 5)   # the slow lookup did go to DNS
        assert hostname_of(sng, SLOW_HOST, "slow-1") == ""
        assert hostname_of(sng, INV_HOST, "inv-1") == "inv-21"     # inventory over PTR
        # the PTR answer (from the namespace's /etc/hosts) names the next records
        assert wait_for(named_soon(sng, RDNS_HOST, "rdns", 3_000_000, "rdns-22.example.org"),
                        10), sng.stderr_tail()

        # the inventory rewritten (as editors do: a new file renamed over it)
        tmp = tmp_path / "hosts.csv.new"
        tmp.write_text(INVENTORY.replace("inv-21,r21", "renamed-21,r99"))
        tmp.replace(inventory)
        assert wait_for(named_soon(sng, INV_HOST, "inv", 2_000_000, "renamed-21"), 10), \
            sng.stderr_tail()

        # a crash of the renamed host, and one of a host with hostile userdata
        sng.sender(INV_HOST).send_all(lines(samples.WARN_LINES, 4_000_000), pace=0.001)
        # a raw CR and ESC (a LF would end the value: the wire is one key=value a line)
        hostile = (" hostname=db-24\n rack=r24\rBcc: evil@example.org\x1b[2J\n"
                   " role=<!channel>=?utf-8?q?=0D=0ABcc:_x@example.org?=\n")
        sng.sender(UD_HOST).send_all(
            [("4,%d,%d,-;%s\n%s" % (700 + i, 5_000_000 + i * 97, l, hostile)).encode()
             for i, l in enumerate(samples.OOPS_LINES + samples.PANIC_LINES)], pace=0.001)
        assert wait_for(lambda: len(mail.messages) == 2, 30), sng.stderr_tail()
    finally:
        sng.stop()
        dns.close()
    by_subject = {str(m["Subject"]): m for m in mail.parsed()}
    subjects = sorted(by_subject)
    assert subjects[0].startswith("[netconsole] new: db-24 (%s): BUG:" % UD_HOST), subjects
    assert subjects[1].startswith("[netconsole] new: renamed-21 (%s): WARNING" % INV_HOST), subjects
    for m in by_subject.values():
        assert m.get_all("Bcc") is None and m.get_all("Cc") is None
    body = by_subject[subjects[0]].get_content()
    labels_line = [l for l in body.splitlines() if l.startswith("Labels:")]
    # the core shows control characters of a field as \xNN (the per-host log does too)
    assert labels_line == ["Labels:    rack=r24\\x0dBcc: evil@example.org\\x1b[2J "
                           "role=<!channel>=?utf-8?q?=0D=0ABcc:_x@example.org?="], labels_line
    assert "Labels:    rack=r99 team=storage" in by_subject[subjects[1]].get_content()
    by_host = {r["host"]: r for r in incidents(sng.statedir)}
    assert by_host[INV_HOST]["hostname"] == "renamed-21"
    assert by_host[INV_HOST]["labels"] == {"rack": "r99", "team": "storage"}
    assert by_host[UD_HOST]["labels"]["rack"] == "r24\\x0dBcc: evil@example.org\\x1b[2J"
