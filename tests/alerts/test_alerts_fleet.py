"""docs/fleet.md tried end to end (issue 13): two collectors (real syslog-ng 3.38,
each the unmodified drop-in plus docs/examples/ship-incidents.conf, each its own
state) and one real Alertmanager configured with docs/examples/alertmanager-
netconsole.yml. 30 hosts crash with the same bug, 15 on each collector: Alertmanager
shows ONE group for the signature, holding both collectors' alerts; the shipping
snippet posts all 30 incidents to one central HTTP endpoint."""

import json
import shutil

import pytest

from alert_servers import Alertmanager, wait_for
from harness import samples
from harness.sng import REPO, Syslogng, available
from test_alerts_syslogng import extended, incidents

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]

EXAMPLES = REPO / "docs" / "examples"


def test_two_collectors_one_alertmanager_group_one_central_store(tmp_path, http):
    why = available()
    if why:
        pytest.skip(why)
    if not shutil.which("prometheus-alertmanager"):
        pytest.skip("prometheus-alertmanager is not installed (tests/install-deps.sh)")
    am = Alertmanager(tmp_path / "am",
                      config=(EXAMPLES / "alertmanager-netconsole.yml").read_text()).start()
    central = http()
    collectors = []
    try:
        for n in (1, 2):
            sng = Syslogng(tmp_path / ("c%d" % n), defines={
                "netconsole_central_url": central.url + "/netconsole/_doc",
                "netconsole_alert_options": "alertmanager_url('%s') digest_interval('2')" % am.url},
                extra_config='@include "%s"' % (EXAMPLES / "ship-incidents.conf"))
            collectors.append(sng.start(timeout=30))
        hosts = ["127.0.9.%d" % (100 + i) for i in range(30)]
        senders = [collectors[i % 2].sender(h) for i, h in enumerate(hosts)]
        for line in extended(samples.OOPS_LINES):       # line k of every host, then k+1
            for s in senders:
                s.send(line)
        # and another bug on one host: a group of its own
        collectors[0].sender("127.0.9.200").send_all(extended(samples.WARN_LINES, seq=900))
        assert wait_for(lambda: len(incidents(collectors[0].statedir)) == 16, 30), \
            collectors[0].stderr_tail()
        assert wait_for(lambda: len(incidents(collectors[1].statedir)) == 15, 30), \
            collectors[1].stderr_tail()
        sigs = {i["host"]: i["signature"] for sng in collectors for i in incidents(sng.statedir)}
        signature, other = sigs[hosts[0]], sigs["127.0.9.200"]
        assert {sigs[h] for h in hosts} == {signature} and other != signature

        def grouped():
            g = [x for x in am.groups() if x["labels"].get("signature") == signature]
            hosts_in = {a["labels"].get("host") for x in g for a in x["alerts"]}
            return g if len(g) == 1 and len(hosts_in - {None}) >= 2 else None
        groups = wait_for(grouped, 30)
        all_groups = wait_for(lambda: len(am.groups()) == 2 and am.groups(), 30)
        assert wait_for(lambda: len(central.requests) == 31, 30), collectors[0].stderr_tail()
    finally:
        for sng in collectors:
            sng.stop()
        am.stop()
    (group,) = groups
    alerts = group["alerts"]
    by_name = {}
    for a in alerts:
        by_name.setdefault(a["labels"]["alertname"], []).append(a)
    # each collector: its first alert of the bug, then a digest of its other hosts
    firsts = {a["labels"]["host"] for a in by_name["KernelCrash"]}
    assert len(firsts) == 2 and {h[-1] for h in firsts} <= set("0123456789")
    # one release in this fleet: no candidate regression, the list receiver
    assert group["receiver"]["name"] == "kernel-crashes"
    assert sorted(g["labels"]["signature"] for g in all_groups) == sorted([signature, other])
    print("\nAlertmanager: 1 group {signature=%s}: %s" % (
        signature, sorted((a["labels"]["alertname"], a["labels"].get("host", "-"))
                          for a in alerts)))
    shipped = [json.loads(r["body"]) if "body" in r else r["json"] for r in central.requests]
    assert sorted(d["host"] for d in shipped) == sorted(hosts + ["127.0.9.200"])
    assert {d["signature"] for d in shipped} == {signature, other}
