"""Fleet insight with a real syslog-ng 3.38 and the unmodified drop-in (issue 13):
real kernel captures of two releases (Debian 6.1 and 6.12, tests/fixtures/) replayed
from five hosts into one collector, then the CLI's fleet views and the alerts' news.

  B  6.12 sysrq-t         no incident; seen on 6.12 (the host table says so)
  A  6.1 oops + panic     NULL deref S: new, and new on 6.1 (the fleet also runs 6.12)
  C  6.12 configfs oops   the same S on 6.12: already seen on 6.1, neither
  D  6.12 WARNING         new, new on 6.12
  E  6.1 plain BUG        new, new on 6.1; a plain stream with no release prefix: the
                          host's release comes from the report's CPU line
"""

import json
import pathlib
import subprocess
import sys

import pytest

from harness.sng import REPO, Syslogng, available, wait_for

pytestmark = pytest.mark.syslogng

FIX = REPO / "tests" / "fixtures"
R61, R612 = "6.1.0-57-amd64", "6.12.117+deb12-amd64"
S_NULL = "7cf9b5fa41d06f737f8a"
HOSTS = [  # (capture, replayed from, release)
    ("kernel-6.12-extended-sysrq-t", "127.0.10.2", R612),
    ("kernel-6.1-extended-oops-panic", "127.0.11.2", R61),
    ("kernel-6.12-configfs-oops", "127.0.12.2", R612),
    ("kernel-6.12-release-warn", "127.0.13.2", R612),
    ("kernel-6.1-plain-bug", "127.0.14.2", R61),
]


def cli(*args):
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole"] + list(args),
                         cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def jsonl(path):
    p = pathlib.Path(path)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def test_releases_hosts_and_news_from_real_captures(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    if not all((FIX / (c + ".pcap")).exists() for c, _, _ in HOSTS):
        pytest.skip("kernel fixtures missing in %s" % FIX)
    sng = Syslogng(tmp_path / "sng")
    sng.start(timeout=30)
    state = str(sng.statedir)
    alerts = sng.statedir / "alerts.jsonl"
    try:
        for n, (capture, addr, _) in enumerate(HOSTS):
            cli("replay", str(FIX / (capture + ".pcap")), "--to", "127.0.0.1:%d" % sng.port,
                "--speed", "0", "--source-base", addr)
            if n == 0:      # B must be in the host table before A's incident is judged
                assert wait_for(lambda: '"%s"' % R612 in _hosts_json(state), 15)
            else:           # one incident per crash capture, in order
                assert wait_for(lambda: len(jsonl(sng.statedir / "incidents.jsonl")) == n, 30), \
                    sng.stderr_tail()
        assert wait_for(lambda: all(h.get("incidents") == (0 if a == HOSTS[0][1] else 1)
                                    for h in _hosts(state) for a in [h["host"]]), 15)
    finally:
        sng.stop()

    stored = {i["host"]: (i["new"], i["new_on_release"], i["release"])
              for i in jsonl(sng.statedir / "incidents.jsonl")}
    a, c, d, e = (HOSTS[i][1] for i in (1, 2, 3, 4))
    assert stored == {a: (True, True, R61), c: (False, False, R612), d: (True, True, R612),
                      e: (True, True, R61)}, stored
    # C's report is S again: the alert policy folds it (one alert per bug), so three
    news = {x["netconsole"]["host"]: (x["netconsole"]["new"], x["netconsole"]["new_on_release"],
                                      x["netconsole"]["release"]) for x in jsonl(alerts)}
    assert news == {h: v for h, v in stored.items() if h != c}, news
    labels = {x["netconsole"]["host"]: x["alerts"][0]["labels"] for x in jsonl(alerts)}
    assert labels[a]["new"] == labels[a]["new_on_release"] == "true"
    assert labels[a]["release"] == R61 and labels[d]["release"] == R612
    summary = {x["netconsole"]["host"]: x["commonAnnotations"]["summary"] for x in jsonl(alerts)}
    print("\n".join(sorted(summary.values())))

    hosts = {h["host"]: h for h in _hosts(state)}
    assert {h: hosts[h]["release"] for h in hosts} == {addr: rel for _, addr, rel in HOSTS}
    assert hosts[e]["release"] == R61           # plain: from the report's CPU line
    assert hosts[a]["last_incident_title"].startswith("BUG: unable to handle kernel NULL")
    # records and seq gaps as `decode` counts them in the same captures (the kernel's
    # console loglevel filters records: without msgid (6.17+) that reads as loss)
    for capture, addr, _ in HOSTS:
        recs = [json.loads(x) for x in cli("decode", "--json", str(FIX / (capture + ".pcap")))
                .splitlines()]
        want = (len(recs), sum(r.get("lost_before", 0) for r in recs), 0)
        assert (hosts[addr]["records"], hosts[addr]["lost"], hosts[addr]["lost_msgid"]) == want
    listing = cli("hosts", "--state-dir", state)
    print(listing)
    assert len(listing.splitlines()) == 5 and ("release %s" % R612) in listing

    by_rel = [json.loads(x) for x in cli("incidents", "--state-dir", state, "--by-release",
                                         "--json").splitlines()]
    print(cli("incidents", "--state-dir", state, "--by-release"))
    got = {r["release"]: (r["hosts_seen"], r["incidents"], r["signatures"], r["crashing_hosts"],
                          r["per_1000"]) for r in by_rel}
    assert got == {R61: (2, 2, 2, 2, 1000.0), R612: (3, 2, 2, 2, 666.7)}, got
    sigs = {r["signature"]: r for r in (json.loads(x) for x in cli(
        "incidents", "--state-dir", state, "--by-signature", "--json").splitlines())}
    assert sigs[S_NULL]["releases"] == [R61, R612] and sigs[S_NULL]["hosts"] == 2
    print(cli("incidents", "--state-dir", state, "--by-signature"))


def _hosts_json(state):
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "hosts", "--state-dir",
                          state, "--json"], cwd=str(REPO), capture_output=True, text=True)
    return out.stdout


def _hosts(state):
    return [json.loads(x) for x in _hosts_json(state).splitlines()]
