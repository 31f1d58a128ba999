"""sender-config's pure core (sender/plan.py) against recorded and crafted iproute2
JSON (tests/fixtures/iproute2/README.md says which is which): the interface,
next hop, MAC, method and format it picks, and each trap's message with its fix."""

import json
import pathlib

import pytest

from syslogng_netconsole.sender.plan import (Driver, Facts, Request, System, make_plan,
                                             param_string)

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "iproute2"
K612 = "6.12.118+deb12-amd64"
CRAFTED = json.loads((FIX / "crafted.json").read_text())


def load(name):
    return json.loads((FIX / name).read_text())


def system(**kw):
    kw.setdefault("kernel", K612)
    kw.setdefault("dynamic", True)
    kw.setdefault("hostname", "web-3")
    kw.setdefault("console_loglevel", 7)
    return System(**kw)


def plan_for(route, neigh, links, req=None, route_error="", **sys_kw):
    if isinstance(route, str):
        route = load(route)
    if isinstance(neigh, str):
        neigh = load(neigh)
    if isinstance(links, str):
        links = load(links)
    facts = Facts(route=route, neigh=neigh, links=links, route_error=route_error,
                  system=system(**sys_kw))
    return make_plan(facts, req or Request(collector=route[0]["dst"] if route else "10.9.0.1"))


def crafted(name, req=None, **sys_kw):
    c = CRAFTED[name]
    drivers = {k: Driver(*v) for k, v in c["drivers"].items()}
    sys_kw.setdefault("drivers", drivers)
    return plan_for(c["route"], c["neigh"], c["links"] or load("veth-addr.json"), req,
                    **sys_kw)


def codes(plan, level=None):
    return [m.code for m in plan.messages if level is None or m.level == level]


def msg(plan, code):
    (m,) = [m for m in plan.messages if m.code == code]
    return m


def test_directly_connected_collector_recorded():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json")
    assert p.ok, p.messages
    t = p.target
    assert (t.dev, t.remote_ip, t.remote_mac, t.local_ip, t.source_ip) == \
        ("veth0", "10.9.0.1", "9e:06:8a:72:61:f6", "10.9.0.2", "10.9.0.2")
    assert (p.nexthop, p.via_gateway, p.neigh_state, p.method) == \
        ("10.9.0.1", False, "REACHABLE", "configfs")
    assert (t.extended, t.release, t.userdata, t.hostname) == (True, True, True, None)
    assert t.name == "syslogng-10-9-0-1"
    assert param_string(t) == "+r6665@10.9.0.2/veth0,6666@10.9.0.1/9e:06:8a:72:61:f6"
    assert codes(p, "warning") == [] and codes(p, "error") == []


def test_collector_behind_a_gateway_takes_the_gateways_mac():
    p = plan_for("veth-route-gw.json", "veth-neigh-reachable.json", "veth-addr.json")
    assert p.ok
    assert (p.nexthop, p.via_gateway, p.target.remote_ip, p.target.remote_mac) == \
        ("10.9.0.1", True, "198.51.100.7", "9e:06:8a:72:61:f6")


def test_this_hosts_gateway_in_stale_state_is_usable():
    # recorded on the CI machine: STALE = known, not confirmed lately
    p = plan_for("host-route-gw.json", "host-neigh.json", "host-addr.json")
    assert p.ok, p.messages
    assert (p.target.dev, p.target.remote_mac, p.neigh_state) == \
        ("eth0", "02:fc:00:00:00:05", "STALE")


def test_missing_neighbour_says_how_to_populate_it():
    p = plan_for("veth-route-direct.json", [], "veth-addr.json")
    assert p.target is None and not p.ok
    m = msg(p, "no_neighbour")
    assert m.level == "error" and "ping -c 1 10.9.0.1" in m.fix and "rerun" in m.fix
    assert "--mac" in m.fix


def test_missing_neighbour_of_a_gateway_names_the_gateway():
    p = plan_for("veth-route-gw.json", [], "veth-addr.json")
    assert "the gateway 10.9.0.1" in msg(p, "no_neighbour").text
    assert "ping -c 1 10.9.0.1" in msg(p, "no_neighbour").fix


@pytest.mark.parametrize("neigh,state", [("veth-neigh-incomplete.json", "INCOMPLETE"),
                                         ("veth-neigh-failed.json", "FAILED")])
def test_neighbour_that_does_not_answer_is_an_error(neigh, state):
    p = plan_for("veth-route-direct-99.json", neigh, "veth-addr.json")
    assert p.target is None
    m = msg(p, "neighbour_failed")
    assert state in m.text and "10.9.0.99" in m.text and "ping -c 1 10.9.0.99" in m.fix


def test_ipv6_next_hop_failed_on_this_host():
    p = plan_for("host-route-v6.json", "host-neigh.json", "host-addr.json")
    assert msg(p, "neighbour_failed").level == "error" and p.target is None


def test_interface_without_carrier_warns_and_still_plans():
    p = plan_for("veth-route-linkdown.json", "veth-neigh-reachable.json",
                 "veth-addr-linkdown.json")
    assert p.ok
    m = msg(p, "interface_down")
    assert m.level == "warning" and "no carrier" in m.text and "veth0" in m.fix


def test_interface_admin_down_has_no_route():
    p = plan_for(None, [], "veth-addr-admindown.json", Request(collector="10.9.0.1"),
                 route_error="RTNETLINK answers: Network is unreachable")
    m = msg(p, "no_route")
    assert "Network is unreachable" in m.text and "--interface" in m.fix


def test_interface_admin_down_named_by_the_route():
    down = load("veth-addr-admindown.json")
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", down)
    assert "DOWN" in msg(p, "interface_down").text


def test_collector_on_this_host_is_refused():
    p = plan_for("host-route-local.json", "host-neigh.json", "host-addr.json",
                 Request(collector="127.0.0.1"))
    m = msg(p, "collector_is_local")
    assert m.level == "error" and "on each sender" in m.fix


def test_bridge_recorded_uses_the_bridge_and_knows_its_port():
    p = plan_for("bridge-route-gw.json", "bridge-neigh.json", "bridge-addr.json")
    assert p.ok
    assert (p.target.dev, p.kind, p.lower) == ("br0", "bridge", ("veth0",))
    assert msg(p, "bridge").level == "note"


def test_ipv6_collector_through_a_bridge():
    p = plan_for("bridge-route-v6.json", "bridge-neigh-v6.json", "bridge-addr.json")
    assert p.ok, p.messages
    t = p.target
    assert t.ipv6 and (t.remote_ip, t.local_ip, t.dev) == ("fd09::1", "fd09::2", "br0")
    assert param_string(t) == "+r6665@fd09::2/br0,6666@fd09::1/9e:06:8a:72:61:f6"


def test_bond_uses_the_bond_device():
    p = crafted("bond")
    assert p.ok, p.messages
    assert (p.target.dev, p.kind, p.lower, p.target.remote_mac) == \
        ("bond0", "bond", ("eno1", "eno2"), "00:1c:73:aa:bb:01")
    m = msg(p, "bond")
    assert "never point netconsole at a port" in m.fix
    assert set(p.drivers) == {"eno1", "eno2"}


def test_a_bond_port_is_refused_with_the_bond_as_fix():
    c = CRAFTED["bond"]
    route = [dict(c["route"][0], dev="eno1")]
    p = plan_for(route, c["neigh"], c["links"], Request(collector="10.20.0.9",
                                                        interface="eno1"))
    m = msg(p, "enslaved")
    assert m.fix == "use --interface bond0" and "joins a master" in m.text


def test_bond_with_a_module_parameter_target_fails_at_boot():
    p = crafted("bond", Request(collector="10.20.0.9", method="params"))
    assert "doesn't exist" in msg(p, "params_stacked").text
    assert "--method configfs" in msg(p, "params_stacked").fix


def test_vlan_goes_through_its_parent():
    p = crafted("vlan")
    assert p.ok, p.messages
    assert (p.target.dev, p.kind, p.lower, p.target.remote_mac) == \
        ("eth0.100", "vlan", ("eth0",), "52:54:00:6b:01:05")
    assert "eth0" in msg(p, "vlan").text and p.drivers["eth0"].module == "e1000e"


def test_builtin_netconsole_with_a_modular_nic_driver():
    # the seed's table: a boot-parameter target of a built-in netconsole is set up
    # before a modular NIC driver loads
    p = crafted("qemu-guest", Request(collector="10.0.2.2", method="params"),
                netconsole="builtin")
    m = msg(p, "builtin_modular_nic")
    assert m.level == "error" and "virtio_net" in m.text and "--method configfs" in m.fix
    auto = crafted("qemu-guest", netconsole="builtin")
    assert auto.ok and auto.method == "configfs"
    assert msg(auto, "builtin_modular_nic").level == "note"


def test_builtin_netconsole_and_builtin_driver_take_a_boot_parameter():
    p = crafted("qemu-guest", Request(collector="10.0.2.2", method="params"),
                netconsole="builtin", drivers={"eth0": Driver("virtio_net", None, False)})
    assert p.ok and p.method == "params" and p.target.userdata is False
    assert "no_userdata" in codes(p, "note")


def test_vlan_builtin_netconsole_params_has_both_errors():
    p = crafted("vlan", Request(collector="10.100.0.5", method="params"),
                netconsole="builtin")
    assert {"params_stacked", "builtin_modular_nic"} <= set(codes(p, "error"))


@pytest.mark.parametrize("source", ["crafted", "mac"])
def test_broadcast_mac_warns(source):
    if source == "crafted":
        p = crafted("broadcast")
    else:
        p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                     Request(collector="10.9.0.1", mac="FF-FF-FF-FF-FF-FF"))
        assert msg(p, "mac_differs").level == "warning"
    assert p.ok and p.target.remote_mac == "ff:ff:ff:ff:ff:ff"
    assert "every host on the segment" in msg(p, "broadcast_mac").text


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "zz:00"])
def test_multicast_zero_or_bad_mac_is_an_error(mac):
    p = plan_for("veth-route-direct.json", [], "veth-addr.json",
                 Request(collector="10.9.0.1", mac=mac))
    assert p.target is None and msg(p, "bad_mac").level == "error"


def test_mac_given_when_the_table_has_none():
    p = plan_for("veth-route-direct.json", [], "veth-addr.json",
                 Request(collector="10.9.0.1", mac="02:00:00:00:00:09"))
    assert p.ok and p.target.remote_mac == "02:00:00:00:00:09"


def test_plain_where_extended_is_available_warns():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 Request(collector="10.9.0.1", plain=True))
    assert p.ok and not p.target.extended and not p.target.release
    assert msg(p, "plain_format").level == "warning"
    assert param_string(p.target).startswith("6665@")


def test_old_kernel_is_plain_without_a_warning():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 kernel="4.1.52")
    assert p.ok and not p.target.extended and "plain_format" not in codes(p)
    assert msg(p, "no_extended").level == "note"


@pytest.mark.parametrize("kernel,release,userdata", [
    ("6.1.0-57-amd64", False, False), ("6.6.1", True, False), ("6.9.0", True, True),
    (K612, True, True), ("5.14.0-427.el9.x86_64", False, False)])
def test_features_by_kernel_version(kernel, release, userdata):
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 kernel=kernel)
    assert (p.target.extended, p.target.release, p.target.userdata) == \
        (True, release, userdata)


def test_dynamic_address_is_left_to_the_kernel_in_configfs():
    route = [{"dst": "10.9.0.1", "dev": "veth0", "prefsrc": "10.9.0.5", "flags": []}]
    neigh = load("veth-neigh-reachable.json")
    p = plan_for(route, neigh, "veth-addr-dynamic.json")
    assert p.ok and p.target.local_ip == "" and p.target.source_ip == "10.9.0.5"
    assert msg(p, "dynamic_source").level == "note"
    q = plan_for(route, neigh, "veth-addr-dynamic.json",
                 Request(collector="10.9.0.1", method="params"))
    assert q.target.local_ip == "10.9.0.5" and msg(q, "dynamic_source").level == "warning"
    assert param_string(q.target).startswith("+r6665@10.9.0.5/veth0,")


def test_a_tunnel_is_not_ethernet():
    p = crafted("wireguard")
    assert p.target is None and "Ethernet" in msg(p, "not_ethernet").text


def test_no_netconsole_in_this_kernel():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 netconsole="missing", kernel="6.18.44-fc-v1272")
    assert not p.ok and "modules package" in msg(p, "no_netconsole").fix


def test_no_dynamic_targets_chooses_parameters():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 dynamic=False)
    assert p.ok and p.method == "params" and not p.target.userdata
    q = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 Request(collector="10.9.0.1", method="configfs"), dynamic=False)
    assert msg(q, "no_dynamic").fix == "use --method params"


def test_second_target_to_the_same_collector_warns():
    others = [{"name": "old", "enabled": "1", "remote_ip": "10.9.0.1",
               "remote_port": "6666", "dev_name": "veth0"},
              {"name": "syslogng-10-9-0-1", "enabled": "1", "remote_ip": "10.9.0.1",
               "remote_port": "6666"}]
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 targets=others, cmdline_netconsole=True)
    assert "old" in msg(p, "duplicate_target").text      # its own target: no warning
    assert msg(p, "cmdline_target").level == "warning"


def test_hostnames_the_collector_would_refuse():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 Request(collector="10.9.0.1", hostname="db 17"))
    assert msg(p, "bad_hostname").level == "error"
    q = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 hostname="(none)")
    assert q.ok and msg(q, "bad_hostname").level == "warning"


def test_quiet_console_loglevel_is_a_note():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 console_loglevel=4)
    assert msg(p, "console_loglevel").level == "note" and "dmesg -n 8" in \
        msg(p, "console_loglevel").fix


@pytest.mark.parametrize("addr", ["db.example.org", "224.0.0.1", "0.0.0.0"])
def test_collector_must_be_a_unicast_address(addr):
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 Request(collector=addr))
    assert p.target is None and "collector_address" in codes(p, "error")


def test_bad_port():
    p = plan_for("veth-route-direct.json", "veth-neigh-reachable.json", "veth-addr.json",
                 Request(collector="10.9.0.1", port=70000))
    assert "port" in codes(p, "error") and not p.ok


def test_stacked_device_on_a_kernel_before_their_netpoll_support():
    p = crafted("vlan", kernel="2.6.32-754.el6.x86_64")
    assert msg(p, "stacked_old_kernel").level == "error" and not p.ok
