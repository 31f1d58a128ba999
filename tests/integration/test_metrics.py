"""Prometheus metrics of a real collector (issue 13): syslog-ng 3.38 with the
unmodified drop-in and `metrics_file()` set; a real 6.1 crash capture replayed plus
9,999 hosts that each lose 3 records (10,000 hosts in all). The file is parsed by the Prometheus client
library's own parser; its values agree with the counters, the host table and the
store; per-host series stay bounded (TOP_HOSTS) with 10,000 hosts; `metrics` prints
the same families."""

import socket
import subprocess
import sys
import time

import pytest

from harness.sng import REPO, Syslogng, available, wait_for
from syslogng_netconsole import metrics

prom = pytest.importorskip("prometheus_client.parser",
                           reason="python3-prometheus-client (tests/install-deps.sh)")
pytestmark = pytest.mark.syslogng

FIX = REPO / "tests" / "fixtures" / "kernel-6.1-extended-oops-panic.pcap"
N_HOSTS = 9999          # and the capture's host: 10,000, the host table's bound


def parse(text):
    return {f.name: f for f in prom.text_string_to_metric_families(text)}


def value(fams, name, **labels):
    fam = fams[name[:-len("_total")] if name.endswith("_total") and name not in fams else name]
    got = [s.value for s in fam.samples if s.name == name
           and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, (name, labels, fam.samples[:3])
    return got[0]


def send_fleet(port):
    """Host i (127.20.x.y) sends seq 1 and seq 5: three records lost each."""
    for i in range(N_HOSTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.20.%d.%d" % (i // 250, i % 250 + 1), 0))
            s.sendto(b"6,1,100,-;hello\n", ("127.0.0.1", port))
            s.sendto(b"6,5,200,-;after a gap\n", ("127.0.0.1", port))
        finally:
            s.close()
        if i % 250 == 249:
            time.sleep(0.25)    # 2,000 datagrams/s: well under what the drop-in drains


def test_metrics_file_parsed_bounded_and_true(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    out = tmp_path / "netconsole.prom"
    sng = Syslogng(tmp_path / "sng", defines={"netconsole_metrics_file": str(out)})
    sng.start(timeout=30)
    try:
        subprocess.run([sys.executable, "-m", "syslogng_netconsole", "replay", str(FIX), "--to",
                        "127.0.0.1:%d" % sng.port, "--speed", "0"], cwd=str(REPO), check=True,
                       capture_output=True, timeout=60)
        send_fleet(sng.port)
        assert wait_for(lambda: sng.stats().get("counters", {}).get("source.datagrams", 0)
                        >= 428 + 2 * N_HOSTS, 30)
        assert not sng.stats()["counters"].get("source.kernel_drops"), sng.stats()

        def complete():
            if not out.exists():
                return None
            fams = parse(out.read_text())
            hosts = fams.get("netconsole_hosts")
            return fams if hosts and hosts.samples[0].value == N_HOSTS + 1 \
                and "netconsole_incidents" in fams else None
        fams = wait_for(complete, 60)     # the source saves hosts every 5 s, metrics every 15 s
        time.sleep(0.5)
    finally:
        sng.stop()
    port = str(sng.port)
    counters = sng.stats().get("counters", {})
    assert value(fams, "netconsole_datagrams_total", port=port) <= counters["source.datagrams"]
    assert value(fams, "netconsole_datagrams_total", port=port) >= 428 + 2 * N_HOSTS
    assert value(fams, "netconsole_incidents_total", type="NULL-POINTER-DEREFERENCE",
                 severity="critical") == 1
    assert value(fams, "netconsole_hosts_on_release", release="6.1.0-57-amd64") == 1
    # loss: the capture's own 19 (its console loglevel gaps) + 3 per fleet host
    assert value(fams, "netconsole_lost_records_total") == 19 + 3 * N_HOSTS
    per_host = fams["netconsole_host_lost_records"].samples
    per_host = [s for s in per_host if s.name == "netconsole_host_lost_records_total"]
    assert len(per_host) == metrics.TOP_HOSTS
    assert value(fams, "netconsole_other_hosts_lost_records_total") == \
        19 + 3 * N_HOSTS - sum(s.value for s in per_host)
    series = sum(len(f.samples) for f in fams.values())
    assert series < 600, series          # bounded: not one series per host
    printed = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "metrics",
                              "--state-dir", str(sng.statedir)], cwd=str(REPO),
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert set(parse(printed.stdout)) >= set(fams)    # (syslog-ng's stop adds final counters)
