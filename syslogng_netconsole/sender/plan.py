"""What netconsole target a sender needs to reach the collector, from facts.

Pure: ``make_plan(facts, request)`` takes the parsed output of ``ip -j route get
COLLECTOR``, ``ip -j neigh show`` and ``ip -j -d addr show`` plus /proc and /sys
facts (``System``) and returns a ``Plan``: the target (interface, addresses, ports,
next-hop MAC, extended/release/userdata), the method (a configfs target made after
boot, or a module/boot parameter) and the messages: every choice it could not make
is an ``error`` with its fix, every trap a ``warning``, anything worth knowing a
``note``. No subprocess, no file, no clock.

Kernel facts used (Documentation/networking/netconsole.rst and drivers/net/
netconsole.c): extended format 4.2+, the ``r`` release prefix and ``release``
attribute 6.6+, userdata 6.9+, configfs targets with CONFIG_NETCONSOLE_DYNAMIC;
only Ethernet devices; the default MAC is broadcast; netconsole cannot resolve a
next hop itself; a device that joins a bond stops its targets ("network logging
stopped on interface X as it is joining a master device"); bond, bridge and 802.1Q
VLAN devices take netpoll (their own ndo_netpoll_setup, since about 2.6.35) if
their lower devices' drivers do; a boot-parameter target of a built-in netconsole
is set up before a modular NIC driver has loaded, so it fails.
"""

import dataclasses
import ipaddress
import re
from typing import Dict, List, Optional, Tuple

from syslogng_netconsole.hosts.names import valid_name

EXTENDED_SINCE = (4, 2)
RELEASE_SINCE = (6, 6)
USERDATA_SINCE = (6, 9)
STACKED_NETPOLL_SINCE = (2, 6, 35)     # bond, bridge, VLAN devices
MAX_PARAM = 256                        # netconsole= string (MAX_PARAM_LENGTH)
BROADCAST = "ff:ff:ff:ff:ff:ff"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# neighbour states with a usable link-layer address (STALE: known, not confirmed lately)
GOOD_NEIGH = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}
BAD_NEIGH = {"FAILED", "INCOMPLETE"}
DOWN_STATES = {"DOWN", "LOWERLAYERDOWN", "NOTPRESENT", "DORMANT"}
STACKED = {"bond", "bridge", "vlan"}
# kinds of virtual devices known to take netpoll through their lower device
NETPOLL_KINDS = STACKED | {"macvlan", "veth", "team", "virtio"}


@dataclasses.dataclass
class Driver:
    name: str                      # the driver, e.g. "virtio_net", "e1000e"
    module: Optional[str] = None   # its module's name
    modular: bool = False          # a loadable module (else built in)


@dataclasses.dataclass
class System:
    """/proc and /sys facts (gather.system() reads them)."""
    kernel: str                              # uname -r
    netconsole: str = "module"               # "module", "builtin" or "missing"
    dynamic: Optional[bool] = None           # CONFIG_NETCONSOLE_DYNAMIC (None: unknown)
    drivers: Dict[str, Driver] = dataclasses.field(default_factory=dict)  # by interface
    hostname: str = ""
    console_loglevel: Optional[int] = None
    panic_on_oops: Optional[int] = None
    panic: Optional[int] = None
    cmdline_netconsole: bool = False         # a netconsole= boot parameter is in use
    targets: List[dict] = dataclasses.field(default_factory=list)  # existing configfs targets
    os_id: str = ""                          # /etc/os-release ID and ID_LIKE, space separated
    present: Tuple[str, ...] = ()            # "ifupdown", "networkmanager", "systemd", ...


@dataclasses.dataclass
class Facts:
    route: Optional[list]          # `ip -j route get ADDR`, None when it failed
    neigh: list                    # `ip -j neigh show`
    links: list                    # `ip -j -d addr show`
    system: System
    route_error: str = ""          # what `ip route get` said when it failed


@dataclasses.dataclass
class Request:
    collector: str                 # an IPv4 or IPv6 address
    port: int = 6666
    local_port: int = 6665
    interface: Optional[str] = None
    hostname: Optional[str] = None  # None: the host's own name when the target is made
    mac: Optional[str] = None
    method: str = "auto"            # "auto", "configfs" or "params"
    plain: bool = False


@dataclasses.dataclass
class Message:
    level: str                      # "error", "warning" or "note"
    code: str
    text: str
    fix: str = ""


@dataclasses.dataclass
class Target:
    name: str                       # the configfs target's directory name
    dev: str
    local_ip: str                   # "" = the interface's address when it is enabled
    local_port: int
    remote_ip: str
    remote_port: int
    remote_mac: str
    extended: bool
    release: bool
    userdata: bool                  # userdata hostname is set (configfs, 6.9+)
    hostname: Optional[str]         # None: the host's name when the script runs
    ipv6: bool = False
    source_ip: str = ""             # the route's source address (always known)


@dataclasses.dataclass
class Plan:
    request: Request
    target: Optional[Target]
    method: str                     # "configfs" or "params"
    netconsole: str                 # "module", "builtin" or "missing"
    kernel: str
    dev: str = ""                   # the interface the route names
    nexthop: str = ""
    via_gateway: bool = False
    neigh_state: str = ""
    kind: str = ""                  # the interface's kind: "", "bond", "vlan", "bridge" ...
    lower: Tuple[str, ...] = ()     # the physical devices under it
    drivers: Dict[str, Driver] = dataclasses.field(default_factory=dict)
    messages: List[Message] = dataclasses.field(default_factory=list)
    system: Optional[System] = None

    @property
    def ok(self) -> bool:
        return self.target is not None and not self.errors()

    def errors(self):
        return [m for m in self.messages if m.level == "error"]

    def warnings(self):
        return [m for m in self.messages if m.level == "warning"]


def kernel_version(release: str) -> Tuple[int, ...]:
    """(major, minor, patch) of a kernel release such as 6.12.118+deb12-amd64."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release or "")
    if not m:
        return (0, 0, 0)
    return tuple(int(x or 0) for x in m.groups())


def target_name(collector: str) -> str:
    return "syslogng-" + re.sub(r"[^0-9A-Za-z]+", "-", collector).strip("-").lower()


def _link(links, name):
    for link in links or ():
        if link.get("ifname") == name:
            return link
    return None


def _kind(link) -> str:
    return (link.get("linkinfo") or {}).get("info_kind") or ""


def _slave_kind(link) -> str:
    return (link.get("linkinfo") or {}).get("info_slave_kind") or ""


def _same_ip(a, b) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def lower_devices(links, name, depth=0) -> List[str]:
    """The devices that carry `name`'s frames: a VLAN's parent, a bond's or a
    bridge's ports, recursively; the device itself if it has none."""
    link = _link(links, name)
    if link is None or depth > 4:
        return [name]
    kind = _kind(link)
    if kind == "vlan" and link.get("link"):
        return lower_devices(links, link["link"], depth + 1)
    if kind in ("bond", "bridge", "team"):
        ports = [x["ifname"] for x in links if x.get("master") == name]
        out = []
        for p in ports:
            out.extend(lower_devices(links, p, depth + 1))
        return out
    return [name]


class _Builder:
    """One plan being made: the facts, the request and the messages so far."""

    def __init__(self, facts: Facts, req: Request):
        self.facts, self.req, self.sys = facts, req, facts.system
        self.version = kernel_version(self.sys.kernel)
        self.messages: List[Message] = []

    def say(self, level, code, text, fix=""):
        self.messages.append(Message(level, code, text, fix))

    def has(self, since) -> bool:
        return self.version >= since


def make_plan(facts: Facts, req: Request) -> Plan:
    """The plan for `req` on the host `facts` describe (see the module's doc)."""
    b = _Builder(facts, req)
    plan = Plan(request=req, target=None, method="configfs", netconsole=b.sys.netconsole,
                kernel=b.sys.kernel, system=b.sys, messages=b.messages)
    remote = _collector(b)
    _netconsole_available(b)
    route = _route(b, remote) if remote is not None else None
    if route is not None:
        dev, src = route["dev"], route.get("prefsrc") or ""
        plan.dev = dev
        plan.nexthop = route.get("gateway") or route.get("dst") or str(remote)
        plan.via_gateway = bool(route.get("gateway"))
        link = _interface(b, plan, dev)
        mac = _mac(b, plan, dev)
        plan.method = _method(b, plan)
        local_ip = _source(b, plan, link, src, remote)
        fmt = _format(b, plan)
        if link is not None and mac is not None and local_ip is not None and b.req.port:
            plan.target = Target(
                name=target_name(str(remote)), dev=dev, local_ip=local_ip,
                local_port=req.local_port, remote_ip=str(remote), remote_port=req.port,
                remote_mac=mac, ipv6=remote.version == 6, source_ip=src, **fmt)
            _param_length(b, plan)
    _existing(b, plan, remote)
    _sysctl_notes(b)
    return plan


def _collector(b):
    try:
        remote = ipaddress.ip_address(b.req.collector)
    except ValueError:
        b.say("error", "collector_address", "%r is not an IP address" % (b.req.collector,),
              "give the collector's IPv4 or IPv6 address (netconsole sends to an address, "
              "not a name)")
        return None
    if remote.is_multicast or remote.is_unspecified:
        b.say("error", "collector_address", "%s cannot be a netconsole target" % remote,
              "give the collector's own unicast address")
        return None
    for name, value in (("--port", b.req.port), ("--local-port", b.req.local_port)):
        if not 0 < value < 65536:
            b.say("error", "port", "%s %r is not a UDP port" % (name, value),
                  "a number from 1 to 65535")
            b.req.port = 0 if name == "--port" else b.req.port
    if remote.version == 6 and not b.has((3, 9)):
        b.say("error", "ipv6", "netconsole sends to IPv6 addresses since 3.9; this kernel "
              "is %s" % b.sys.kernel, "give the collector's IPv4 address")
    return remote


def _netconsole_available(b):
    if b.sys.netconsole == "missing":
        b.say("error", "no_netconsole",
              "kernel %s has no netconsole: no netconsole module under /lib/modules/%s "
              "and none built in (modules.builtin)" % (b.sys.kernel, b.sys.kernel),
              "install this kernel's modules package (the one that holds "
              "drivers/net/netconsole.ko), or boot a kernel built with CONFIG_NETCONSOLE")


def _route(b, remote):
    route = b.facts.route
    if not route:
        why = (b.facts.route_error or "no answer").strip()
        b.say("error", "no_route", "no route to the collector %s: %s" % (remote, why),
              "check `ip route get %s`; add a route (or a default route) to it, or name "
              "the interface to send from with --interface" % remote)
        return None
    route = route[0]
    rtype = route.get("type", "unicast")
    if rtype == "local" or route.get("dev") == "lo":
        b.say("error", "collector_is_local",
              "%s is an address of this host (route type %s, dev %s): netconsole cannot "
              "send to the host it runs on" % (remote, rtype, route.get("dev")),
              "run sender-config on each sender, with the collector's address as the "
              "senders reach it")
        return None
    if rtype != "unicast" or not route.get("dev"):
        b.say("error", "no_route", "the route to %s is of type %s" % (remote, rtype),
              "fix the routing table so that `ip route get %s` names a device" % remote)
        return None
    return route


def _interface(b, plan, dev):
    link = _link(b.facts.links, dev)
    if link is None:
        b.say("error", "no_interface", "the route names %s, which `ip -d addr show` "
              "does not list" % dev, "check the interface name (--interface)")
        return None
    kind, slave = _kind(link), _slave_kind(link)
    plan.kind = kind
    plan.lower = tuple(lower_devices(b.facts.links, dev))
    plan.drivers = {d: b.sys.drivers[d] for d in plan.lower if d in b.sys.drivers}
    if link.get("link_type", "ether") != "ether":
        b.say("error", "not_ethernet", "%s is a %s device: netconsole sends only over "
              "Ethernet devices" % (dev, link.get("link_type")),
              "route the collector over an Ethernet interface (--interface)")
        return None
    if link.get("master") and slave in ("bond", "team", "bridge"):
        b.say("error", "enslaved", "%s is a port of the %s %s: netconsole stops on a "
              "device that joins a master, and the address lives on the master"
              % (dev, slave, link["master"]), "use --interface %s" % link["master"])
        return None
    _stacked(b, plan, dev, kind)
    state = link.get("operstate", "UNKNOWN")
    flags = link.get("flags") or []
    if state in DOWN_STATES or "NO-CARRIER" in flags or "UP" not in flags:
        b.say("warning", "interface_down",
              "%s is %s%s: netconsole sends nothing over a link without carrier (it "
              "brings the device up itself when a target is enabled, not the cable)"
              % (dev, state, " (no carrier)" if "NO-CARRIER" in flags else ""),
              "bring it up (`ip link set %s up`, check the cable or the switch port), "
              "then rerun sender-config" % dev)
    return link


def _stacked(b, plan, dev, kind):
    lower = ", ".join(plan.lower) or "none"
    if kind == "bond":
        b.say("note", "bond", "%s is a bond (ports: %s): the target uses the bond "
              "device itself, which sends through its active port; every port's driver "
              "must support netpoll (else netconsole says \"doesn't support polling\")"
              % (dev, lower), "never point netconsole at a port: it stops when the "
              "port joins the bond")
    elif kind == "vlan":
        b.say("note", "vlan", "%s is an 802.1Q VLAN device on %s: netconsole tags the "
              "frames through it" % (dev, lower))
    elif kind == "bridge":
        b.say("note", "bridge", "%s is a bridge (ports: %s): the target uses the bridge, "
              "which needs every port's driver to support netpoll" % (dev, lower))
    elif kind and kind not in NETPOLL_KINDS:
        b.say("warning", "untested_kind", "%s is a %s device: netconsole needs netpoll "
              "support in its driver, which this tool cannot check" % (dev, kind),
              "after --apply, look for \"doesn't support polling\" in dmesg")
    if kind in STACKED and not b.has(STACKED_NETPOLL_SINCE):
        b.say("error", "stacked_old_kernel", "netconsole on a %s device needs a kernel "
              "of 2.6.35 or later; this one is %s" % (kind, b.sys.kernel),
              "use the physical interface under it")
    if kind in STACKED and not plan.lower:
        b.say("warning", "no_ports", "%s has no ports: nothing can be sent" % dev,
              "add its ports, then rerun sender-config")


def _normal_mac(mac):
    mac = (mac or "").strip().lower().replace("-", ":")
    return mac if _MAC.match(mac) else None


def _mac(b, plan, dev):
    hop = plan.nexthop
    entry = None
    for n in b.facts.neigh or ():
        if n.get("dev") == dev and _same_ip(n.get("dst"), hop):
            entry = n
    state = ",".join((entry or {}).get("state") or []) if entry else ""
    plan.neigh_state = state or "none"
    known = _normal_mac(entry.get("lladdr")) if entry else None
    what = "the gateway %s" % hop if plan.via_gateway else "the collector %s" % hop
    if b.req.mac is not None:
        mac = _normal_mac(b.req.mac)
        if mac is None:
            b.say("error", "bad_mac", "--mac %r is not a MAC address" % b.req.mac,
                  "six hex bytes: 52:54:00:12:34:56")
            return None
        if known and known != mac:
            b.say("warning", "mac_differs", "--mac %s differs from %s's entry in the "
                  "neighbour table (%s, %s)" % (mac, hop, known, state),
                  "check that %s is the next hop's MAC" % mac)
        return _mac_sanity(b, mac, what)
    if entry is None:
        b.say("error", "no_neighbour", "no neighbour entry for %s on %s: its MAC is "
              "unknown (netconsole cannot ask ARP/NDP itself)" % (what, dev),
              "ping it once (`ping -c 1 %s`), then rerun sender-config; or give --mac"
              % hop)
        return None
    states = set((entry.get("state") or []))
    if states & BAD_NEIGH or not known:
        b.say("error", "neighbour_failed", "%s does not answer ARP/NDP on %s (neighbour "
              "state %s): a MAC from it would reach nobody" % (what, dev, state or "none"),
              "check that %s is up and on %s's network (`ping -c 1 %s`), then rerun "
              "sender-config" % (hop, dev, hop))
        return None
    if not states & GOOD_NEIGH:
        b.say("warning", "neighbour_state", "%s's neighbour entry is in state %s"
              % (hop, state), "`ping -c 1 %s`, then rerun sender-config" % hop)
    return _mac_sanity(b, known, what)


def _mac_sanity(b, mac, what):
    if mac == BROADCAST:
        b.say("warning", "broadcast_mac", "the MAC for %s is the broadcast address: every "
              "host on the segment gets every kernel message, and switches that suppress "
              "broadcasts drop them" % what,
              "give the next hop's own MAC (--mac), as `ip neigh show` lists it")
    elif mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
        b.say("error", "bad_mac", "%s is not a unicast MAC (for %s)" % (mac, what),
              "give the next hop's own MAC with --mac")
        return None
    return mac


def _method(b, plan):
    req, dyn, builtin = b.req, b.sys.dynamic, b.sys.netconsole == "builtin"
    method = req.method
    if method == "auto":
        method = "params" if dyn is False else "configfs"
    if method == "configfs" and dyn is False:
        b.say("error", "no_dynamic", "this kernel's netconsole has no configfs targets "
              "(CONFIG_NETCONSOLE_DYNAMIC is not set)", "use --method params")
    elif method == "configfs" and dyn is None:
        b.say("note", "dynamic_unknown", "could not check CONFIG_NETCONSOLE_DYNAMIC (no "
              "/boot/config-%s, no /sys/kernel/config/netconsole yet); Debian, Ubuntu, "
              "RHEL and Fedora kernels have it" % b.sys.kernel)
    modular_nic = sorted(d for d, drv in plan.drivers.items() if drv.modular)
    if method == "params" and plan.kind in STACKED:
        b.say("error", "params_stacked", "%s is a %s that the network configuration "
              "creates after boot: a module or boot parameter target is set up before it "
              "exists and fails (\"%s doesn't exist\")" % (plan.dev, plan.kind,
                                                           plan.dev),
              "use --method configfs (a target made once the network is up)")
    if builtin and modular_nic:
        names = ", ".join("%s (%s)" % (d, plan.drivers[d].module) for d in modular_nic)
        if method == "params":
            b.say("error", "builtin_modular_nic", "netconsole is built into this kernel "
                  "and the NIC driver of %s is a module: a netconsole= boot parameter "
                  "target is set up before the driver loads, and fails" % names,
                  "use --method configfs (a target made after boot), or build the NIC "
                  "driver into the kernel")
        else:
            b.say("note", "builtin_modular_nic", "netconsole is built in and the NIC "
                  "driver of %s is a module: fine for a configfs target, made after the "
                  "driver loaded (a netconsole= boot parameter would fail)" % names)
    return method


def _dynamic_address(link, src):
    for a in (link or {}).get("addr_info") or ():
        if _same_ip(a.get("local"), src):
            return bool(a.get("dynamic"))
    return False


def _source(b, plan, link, src, remote):
    if not src:
        b.say("error", "no_source", "the route to %s has no source address" % remote,
              "give %s an address of the collector's family" % plan.dev)
        return None
    dynamic = _dynamic_address(link, src)
    family = "inet6" if remote.version == 6 else "inet"
    own = [a for a in (link or {}).get("addr_info") or ()
           if a.get("family") == family and a.get("scope") == "global"]
    if plan.method == "configfs" and dynamic and len(own) <= 1:
        b.say("note", "dynamic_source", "%s is a dynamic (DHCP) address: the configfs "
              "target leaves local_ip to the kernel, which takes the interface's address "
              "when the target is enabled" % src)
        return ""
    if dynamic:
        b.say("warning", "dynamic_source", "the source address %s is dynamic (DHCP) and "
              "fixed in the target: if it changes, the collector files the host under an "
              "old address and routers may drop the packets" % src,
              "give the host a fixed address, or rerun sender-config after a change")
    return src


def _format(b, plan):
    req = b.req
    if not b.has(EXTENDED_SINCE):
        b.say("note", "no_extended", "the extended format needs 4.2+; this kernel is %s: "
              "plain format (no sequence numbers, levels or fragments)" % b.sys.kernel)
        extended = False
    elif req.plain:
        b.say("warning", "plain_format", "--plain chosen where the extended format is "
              "available: no sequence numbers (the collector cannot tell loss), no "
              "levels, records over 1000 bytes cut without a marker, no release or "
              "userdata", "drop --plain")
        extended = False
    else:
        extended = True
    release = extended and b.has(RELEASE_SINCE)
    if extended and not release:
        b.say("note", "no_release", "the release prefix needs 6.6+; this kernel is %s"
              % b.sys.kernel)
    userdata = extended and plan.method == "configfs" and b.has(USERDATA_SINCE)
    if extended and not userdata:
        b.say("note", "no_userdata", "userdata hostname needs a configfs target on 6.9+ "
              "(this: %s, %s): the collector names the host from its inventory, boot log "
              "or reverse DNS" % (b.sys.kernel, plan.method))
    name = req.hostname
    if name is not None and not valid_name(name):
        b.say("error", "bad_hostname", "--hostname %r is not a name the collector takes"
              % name, "letters, digits, '.', '_' and '-', at most 64, starting with a "
              "letter or digit")
    if userdata and name is None and not valid_name(b.sys.hostname or ""):
        b.say("warning", "bad_hostname", "this host's name %r is not one the collector "
              "takes: the target will carry no hostname" % b.sys.hostname,
              "set the host name (hostnamectl set-hostname NAME) or give --hostname")
    return {"extended": extended, "release": release, "userdata": userdata,
            "hostname": name}


def param_string(t: Target) -> str:
    """The netconsole= module/boot parameter for a target."""
    flags = ("+" if t.extended else "") + ("r" if t.release else "")
    local = t.local_ip or t.source_ip
    return "%s%d@%s/%s,%d@%s/%s" % (flags, t.local_port, local, t.dev, t.remote_port,
                                    t.remote_ip, t.remote_mac)


def _param_length(b, plan):
    if plan.method == "params" and len(param_string(plan.target)) >= MAX_PARAM:
        b.say("error", "param_length", "the netconsole= parameter is over %d bytes"
              % MAX_PARAM, "use --method configfs")


def _existing(b, plan, remote):
    if b.sys.cmdline_netconsole:
        b.say("warning", "cmdline_target", "a netconsole= boot parameter is already in "
              "use (/proc/cmdline): that is a target of its own; if it points at the same "
              "collector, every message arrives twice",
              "remove it from the boot loader, or keep it and do not apply this plan")
    mine = plan.target.name if plan.target else None
    for t in b.sys.targets:
        if t.get("name") == mine or str(t.get("enabled")) != "1":
            continue
        if remote is not None and _same_ip(t.get("remote_ip"), remote) and \
                str(t.get("remote_port")) == str(b.req.port):
            b.say("warning", "duplicate_target", "the enabled configfs target %s already "
                  "sends to %s:%s: with this one every message arrives twice"
                  % (t.get("name"), remote, b.req.port),
                  "disable it (echo 0 > /sys/kernel/config/netconsole/%s/enabled)"
                  % t.get("name"))


def _sysctl_notes(b):
    level = b.sys.console_loglevel
    if level is not None and level < 7:
        b.say("note", "console_loglevel", "the console log level is %d (quiet): netconsole "
              "sends only messages more urgent than level %d, so not the info lines of "
              "the kernel log; crash reports are sent (an Oops or a panic raises the level)"
              % (level, level),
              "for everything: `dmesg -n 8` now, loglevel=7 or 8 on the kernel command "
              "line (instead of quiet)")
