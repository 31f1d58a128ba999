"""hosts/names.py: a host's own name from its stream (configfs userdata `hostname`,
systemd's boot line), most trusted first, untrusted text refused, bounded."""

from syslogng_netconsole.hosts.names import HostNames
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.ingest.reassembly import Reassembler


def rec(host, text, **fields):
    return Record(host=host, text=text, format=EXTENDED, fields=fields)


def test_userdata_hostname_as_the_wire_carries_it():
    core = Reassembler()
    core.process(b"6,388,2949970,-;netconsole: network logging started\n"
                 b" hostname=db-17\n role=database\n", "10.0.0.1", 6665, 6666, 1.0)
    names = HostNames()
    for r in core.records():
        names.learn(r)
    assert names.name("10.0.0.1") == "db-17" and names.name("10.0.0.2") is None


def test_the_boot_log_names_a_host_userdata_overrides_it_not_the_other_way():
    names = HostNames()
    names.learn(rec("10.0.0.3", "systemd[1]: Hostname set to <web-3.example.org>."))
    assert names.name("10.0.0.3") == "web-3.example.org"
    names.learn(rec("10.0.0.3", "hello", **{"userdata.hostname": "web-3"}))
    assert names.name("10.0.0.3") == "web-3"
    names.learn(rec("10.0.0.3", "systemd[1]: Hostname set to <renamed>."))
    assert names.name("10.0.0.3") == "web-3"          # less trusted: not shown ...
    assert names.get("10.0.0.3").boot_log == "renamed"  # ... but kept (directory.py)
    names.learn(rec("10.0.0.3", "x", **{"userdata.hostname": "web-3b"}))
    assert names.name("10.0.0.3") == "web-3b"         # the same source may rename it
    assert names.counters["learnt"] == 4


def test_untrusted_names_are_refused():
    names = HostNames()
    for bad in ("db-17\r\nBcc: evil@example.org", "a b", "<script>", "", "-x",
                "x" * 65, "db\x00", "d\u00e9j\u00e0"):
        names.learn(rec("10.0.0.4", "x", **{"userdata.hostname": bad}))
    names.learn(rec("10.0.0.4", "systemd[1]: Hostname set to <a\"b>."))
    assert names.name("10.0.0.4") is None and names.counters["refused"] == 9
    names.learn(rec("10.0.0.4", "x", **{"userdata.hostname": "x" * 64}))
    assert names.name("10.0.0.4") == "x" * 64


def test_the_table_is_bounded():
    names = HostNames(max_hosts=3)
    for i in range(5):
        names.learn(rec("10.0.1.%d" % i, "x", **{"userdata.hostname": "h%d" % i}))
    assert len(names) == 3 and names.name("10.0.1.0") is None and names.name("10.0.1.4") == "h4"
    assert names.counters["evicted"] == 2


def test_userdata_keys_other_than_hostname_are_labels_cleaned_and_bounded():
    names = HostNames()
    fields = {"userdata.hostname": "db-17", "userdata.rack": "r12\r\nBcc: x@example.org",
              "userdata.role-name": "db", "userdata.9lives": "x", "userdata.severity": "low",
              "cpu": "1", "userdata.empty": ""}
    fields.update({"userdata.z%02d" % i: "v" for i in range(30)})   # sorted after: cut
    assert names.learn(rec("10.0.0.5", "x", **fields))
    got = names.get("10.0.0.5")
    assert got.userdata == "db-17"
    assert got.labels["rack"] == "r12 Bcc: x@example.org"       # one line, no CR/LF
    assert got.labels["role_name"] == "db"
    for left_out in ("9lives", "severity", "hostname", "cpu", "empty"):
        assert left_out not in got.labels
    assert len(got.labels) == 16
    # the same userdata again changes nothing (the per-record cost is one comparison)
    assert not names.learn(rec("10.0.0.5", "y", **fields))
