"""hosts/directory.py and rdns.py: a host's name from userdata > inventory > boot log >
reverse DNS, labels merged (userdata wins), answers cached, reverse DNS off the
caller's thread and never asked twice for a host in the cache."""

import threading
import time

from syslogng_netconsole.hosts.directory import HostDirectory
from syslogng_netconsole.hosts.inventory import parse
from syslogng_netconsole.hosts.rdns import ReverseDns
from syslogng_netconsole.ingest.records import EXTENDED, Record


def rec(host, text, **fields):
    return Record(host=host, text=text, format=EXTENDED, fields=fields)


INV = parse("address,name,rack,team\n10.0.0.1,inv-1,r1,db\n10.0.0.0/24,,r0,\n", "inv.csv")


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_trust_order_and_label_merge():
    d = HostDirectory()
    d.set_inventory(INV)
    assert d.who("10.0.0.1") == ("inv-1", {"rack": "r1", "team": "db"})
    d.learn(rec("10.0.0.1", "systemd[1]: Hostname set to <boot-1>."))
    assert d.name("10.0.0.1") == "inv-1"                       # inventory over boot log
    d.learn(rec("10.0.0.1", "x", **{"userdata.hostname": "ud-1", "userdata.rack": "u9"}))
    assert d.who("10.0.0.1") == ("ud-1", {"rack": "u9", "team": "db"})
    d.learn(rec("10.0.0.2", "systemd[1]: Hostname set to <boot-2>."))
    assert d.who("10.0.0.2") == ("boot-2", {"rack": "r0"})     # the /24's label
    d.set_inventory(parse("address,name\n", "empty.csv"))      # a reload drops the cache
    assert d.who("10.0.0.1") == ("ud-1", {"rack": "u9"})
    assert d.who("10.9.9.9") == (None, {})


def test_reverse_dns_is_asked_once_per_host_off_the_callers_thread():
    asked, release = [], threading.Event()
    caller = threading.get_ident()

    def lookup(addr):
        assert threading.get_ident() != caller
        asked.append(addr)
        release.wait(5)
        return {"10.0.0.7": "seven.example.org", "10.0.0.8": "bad name!"}.get(addr)

    d = HostDirectory()
    d.set_reverse_dns(True, ttl=100.0, lookup=lookup)
    d.set_inventory(INV)
    for _ in range(1000):                 # the per-record path: never blocks, asks once
        assert d.name("10.0.0.7") is None
        assert d.name("10.0.0.8") is None
        assert d.name("10.0.0.1") == "inv-1"                   # named: no lookup
    release.set()
    wait_for(lambda: len(d.rdns._done) == 2)
    d.poll(10.0)
    assert d.name("10.0.0.7") == "seven.example.org"
    assert d.name("10.0.0.8") is None and d.rdns.counters["refused"] == 1
    assert sorted(asked) == ["10.0.0.7", "10.0.0.8"]
    d.learn(rec("10.0.0.7", "x", **{"userdata.hostname": "ud-7"}))
    assert d.name("10.0.0.7") == "ud-7"                        # more trusted wins
    d.close()


def test_reverse_dns_ttl_keeps_the_old_name_until_the_new_answer():
    answers = {"10.0.0.9": "old.example.org"}
    r = ReverseDns(ttl=60.0, negative_ttl=45.0, lookup=lambda a: answers.get(a))
    r.want("10.0.0.9")
    r.want("10.0.0.10")
    wait_for(lambda: len(r._done) == 2)
    assert sorted(r.collect(0.0)) == ["10.0.0.10", "10.0.0.9"]
    assert r.name("10.0.0.9") == "old.example.org"
    answers["10.0.0.9"] = "new.example.org"
    assert r.collect(30.0) == [] and r.counters["lookups"] == 2   # not expired yet
    assert r.collect(50.0) == [] and r.counters["lookups"] == 3   # the unnamed one, at 45 s
    wait_for(lambda: len(r._done) == 1)
    assert r.collect(50.5) == []                                  # still no name: no change
    r.collect(61.0)                      # expired: asked again, the old name stays meanwhile
    assert r.counters["lookups"] == 4 and r.name("10.0.0.9") == "old.example.org"
    wait_for(lambda: len(r._done) == 1)
    assert r.collect(61.5) == ["10.0.0.9"] and r.name("10.0.0.9") == "new.example.org"
    r.close()


def test_reverse_dns_is_bounded():
    r = ReverseDns(max_hosts=3, lookup=lambda a: None)
    r._start_threads = lambda: None      # nothing answers: the queue fills
    for i in range(10):
        r.want("10.0.1.%d" % i)
    assert len(r._queued) == 3 and r.counters["queue_full"] == 7
