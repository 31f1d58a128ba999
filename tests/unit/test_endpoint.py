"""sng/endpoint.py without syslog-ng: the held queue's byte count and the reload
registry (take over, adopt an orphan of the same port, refuse a second owner, sweep)."""

import socket

import pytest

from syslogng_netconsole.ingest.reassembly import ReassemblyLimits
from syslogng_netconsole.ingest.records import Record
from syslogng_netconsole.sng import endpoint


@pytest.fixture(autouse=True)
def empty_registry():
    yield
    with endpoint._LOCK:
        for ep in endpoint._ENDPOINTS.values():
            ep.close()
        endpoint._ENDPOINTS.clear()


def _settings(ip=("127.0.0.1",), port=6666):
    return {"ip": ip, "port": port, "rcvbuf": 0, "reuseport": False}


def test_held_counts_text_bytes(monkeypatch):
    monkeypatch.setattr(endpoint, "MAX_HELD_BYTES", 10)
    held = endpoint.Held()
    held.extend([Record(host="h", text="abcd"), Record(host="h", text="efgh")])
    assert (len(held), held.nbytes, held.full(), held.full(0.5)) == (2, 8, False, True)
    held.append(Record(host="h", text="ij"))
    assert held.full()
    assert held.popleft().text == "abcd" and held.nbytes == 6
    assert [r.text for r in held] == ["efgh", "ij"]


def test_registry_hands_the_endpoint_to_the_next_owner():
    a, b, c = object(), object(), object()
    ep, fresh = endpoint.take("src", _settings(), ReassemblyLimits(), a)
    assert fresh and ep.owner is a
    with pytest.raises(endpoint.Busy):
        endpoint.take("src", _settings(), ReassemblyLimits(), b)
    endpoint.release(ep, a, 10.0)
    ep2, fresh = endpoint.take("src", _settings(), ReassemblyLimits(), b)
    assert ep2 is ep and not fresh and ep.counters["reloads"] == 1
    endpoint.release(ep, b, 20.0)
    # a changed address list keeps the port's endpoint (and its state)
    ep3, fresh = endpoint.take("src", _settings(ip=("127.0.0.1", "::1")), ReassemblyLimits(), c)
    assert ep3 is ep and not fresh and ep.key[2] == ("127.0.0.1", "::1")


def test_orphans_are_swept_after_the_grace():
    owner = object()
    ep, _ = endpoint.take("src", _settings(), ReassemblyLimits(), owner)
    endpoint.release(ep, object(), 0.0)        # not its owner: nothing happens
    assert ep.owner is owner
    endpoint.release(ep, owner, 100.0)
    assert endpoint.sweep_orphans(100.0 + endpoint.ORPHAN_GRACE) == []
    assert endpoint.sweep_orphans(101.0 + endpoint.ORPHAN_GRACE) == [6666]
    assert not endpoint._ENDPOINTS


def test_keep_previous_takes_the_only_orphan():
    assert endpoint.keep_previous("src", object()) is None
    ep, _ = endpoint.take("old", _settings(), ReassemblyLimits(), "first")
    endpoint.release(ep, "first", 0.0)
    assert endpoint.keep_previous("other", "second") is ep and ep.owner == "second"


def test_read_counts_datagrams_and_bad_input_does_not_stop_it():
    ep, _ = endpoint.take("src", _settings(port=0), ReassemblyLimits(), object())
    assert ep.bind_missing(0.0, lambda *a: None) == ["127.0.0.1"]
    sock = ep.socks["127.0.0.1"]
    ep.settings["port"] = sock.getsockname()[1]
    said = []
    ep.core.process = lambda *a: 1 / 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"x\n", sock.getsockname())
        tx.sendto(b"y\n", sock.getsockname())
        assert ep.wait(5.0, True) == [sock]
        ep.read(sock, 1.0, lambda kind, text, now, level="error": said.append(kind))
    assert (ep.counters["datagrams"], ep.counters["core_errors"]) == (2, 2)
    assert said == ["core", "core"]
    ep.wake()
    assert ep.wait(5.0, False) == []


def test_records_over_the_held_cap_are_counted_per_host(monkeypatch):
    monkeypatch.setattr(endpoint, "MAX_HELD", 4)
    monkeypatch.setattr(endpoint, "MAX_DROP_HOSTS", 2)
    ep = endpoint.Endpoint(("src", 6666, ("127.0.0.1",), False), _settings(), ReassemblyLimits())
    said = []
    for i, host in enumerate(["10.0.0.1"] * 3 + ["10.0.0.2"] * 2 + ["10.0.0.3"] * 2):
        ep.core.process(b"6,%d,%d,-;r\n" % (i, i), host, 6665, 6666, 0.0)
    ep.drain(0.0, lambda what, text, now: said.append(text))
    assert len(ep.held) == 3 and ep.counters["dropped_held"] == 4
    # the three oldest of 10.0.0.1 and one of 10.0.0.2; a third host would be "other"
    assert dict(ep.host_drops) == {"10.0.0.1": 3, "10.0.0.2": 1}
    assert said == ["syslog-ng is not accepting messages; dropped 4 records "
                    "(10.0.0.1: 3, 10.0.0.2: 1)"]
    ep.count_host_drops({"10.0.0.9": 5})
    assert ep.host_drops["other"] == 5
    assert ep.counters_snapshot(0)["source.drop_hosts"] == 3
    ep.close()


def test_open_file_warning_names_the_limit_and_the_fix():
    from syslogng_netconsole.sng.openfiles import open_file_warning
    assert open_file_warning(10000, (1024, 1048576)) is None
    w = open_file_warning(10000, (1024, 1024))
    assert "open-file limit is 1024 (hard)" in w and "LimitNOFILE=10256" in w
    assert "beyond about 768" in w
    assert open_file_warning(500, (1024, 1024)) is None
