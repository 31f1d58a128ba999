"""The facts plan.py needs, from this host: `ip -j` and /proc, /sys, /lib/modules.

Thin on purpose: it runs ``ip -j route get``, ``ip -j neigh show`` and
``ip -j -d addr show`` (root not needed) and reads files; every decision is
plan.py's. A file that cannot be read is an unknown (None), not an error.
"""

import gzip
import json
import os
import pathlib
import subprocess
from typing import List, Optional, Tuple

from .plan import Driver, Facts, System

CONFIGFS = "/sys/kernel/config/netconsole"


def run_ip(args: List[str], timeout: float = 10.0) -> Tuple[Optional[list], str]:
    """(parsed JSON, "") or (None, what went wrong)."""
    try:
        proc = subprocess.run(["ip", "-j"] + args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "cannot run ip: %s" % exc
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        return None, err or "ip %s exited %d" % (" ".join(args), proc.returncode)
    try:
        data = json.loads(proc.stdout.decode() or "[]")
    except ValueError as exc:
        return None, "ip %s printed no JSON (%s)" % (" ".join(args), exc)
    return data, ""


def facts(collector: str, interface: Optional[str] = None) -> Facts:
    args = ["route", "get", collector] + (["oif", interface] if interface else [])
    route, route_error = run_ip(args)
    neigh, _ = run_ip(["neigh", "show"])
    links, _ = run_ip(["-d", "addr", "show"])
    links = links or []
    return Facts(route=route, route_error=route_error, neigh=neigh or [], links=links,
                 system=system([x.get("ifname") for x in links if x.get("ifname")]))


def _read(path, default=None, limit=65536) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return default


def _int(text) -> Optional[int]:
    try:
        return int(text.split()[0])
    except (AttributeError, ValueError, IndexError):
        return None


def netconsole_kind(kernel: str, sys_root="/sys", lib="/lib/modules") -> str:
    """"module", "builtin" or "missing" for this kernel's netconsole."""
    mod = pathlib.Path(sys_root, "module", "netconsole")
    if mod.is_dir():
        return "module" if (mod / "initstate").exists() else "builtin"
    kdir = pathlib.Path(lib, kernel)
    builtin = _read(kdir / "modules.builtin", "", limit=1 << 24)
    if any(line.endswith("/netconsole.ko") for line in builtin.splitlines()):
        return "builtin"
    for line in (_read(kdir / "modules.dep", "", limit=1 << 26) or "").splitlines():
        if os.path.basename(line.split(":")[0]).split(".ko")[0] == "netconsole":
            return "module"
    try:
        for _dirpath, _dirs, names in os.walk(str(kdir / "kernel" / "drivers" / "net")):
            if any(n.split(".ko")[0] == "netconsole" for n in names if ".ko" in n):
                return "module"
    except OSError:
        pass
    return "missing"


def kernel_config(kernel: str) -> dict:
    """CONFIG_NETCONSOLE* from /boot/config-KVER or /proc/config.gz ({} if neither)."""
    text = _read("/boot/config-%s" % kernel, limit=1 << 24)
    if text is None:
        try:
            with gzip.open("/proc/config.gz") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_NETCONSOLE"):
            key, _, value = line.partition("=")
            out[key] = value
        elif line.startswith("# CONFIG_NETCONSOLE") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out


def driver(ifname: str, sys_root="/sys") -> Optional[Driver]:
    dev = pathlib.Path(sys_root, "class", "net", ifname, "device")
    try:
        name = os.path.basename(os.readlink(str(dev / "driver")))
    except OSError:
        return None                 # a virtual device
    try:
        module = os.path.basename(os.readlink(str(dev / "driver" / "module")))
    except OSError:
        return Driver(name, None, False)
    return Driver(name, module, pathlib.Path(sys_root, "module", module, "initstate").exists())


def configfs_targets(root=CONFIGFS) -> List[dict]:
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        d = os.path.join(root, name)
        if os.path.isdir(d):
            t = {"name": name}
            for attr in ("enabled", "dev_name", "remote_ip", "remote_port"):
                t[attr] = _read(os.path.join(d, attr), "")
            out.append(t)
    return out


def _os_id() -> str:
    text = _read("/etc/os-release", "") or _read("/usr/lib/os-release", "")
    ids = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.extend(value.strip('"').split())
    return " ".join(ids)


def _present() -> Tuple[str, ...]:
    checks = {"ifupdown": "/etc/network/if-up.d", "networkmanager": "/etc/NetworkManager/dispatcher.d",
              "systemd": "/run/systemd/system", "networkd": "/run/systemd/netif",
              "debian-grub": "/etc/default/grub.d"}
    return tuple(k for k, p in checks.items() if os.path.isdir(p))


def system(ifnames: List[str]) -> System:
    kernel = _read("/proc/sys/kernel/osrelease", "") or os.uname().release
    kind = netconsole_kind(kernel)
    dynamic = None
    if os.path.isdir(CONFIGFS):
        dynamic = True
    else:
        value = kernel_config(kernel).get("CONFIG_NETCONSOLE_DYNAMIC")
        dynamic = None if value is None else value == "y"
    drivers = {}
    for name in ifnames:
        d = driver(name)
        if d is not None:
            drivers[name] = d
    cmdline = _read("/proc/cmdline", "") or ""
    return System(
        kernel=kernel, netconsole=kind, dynamic=dynamic, drivers=drivers,
        hostname=_read("/proc/sys/kernel/hostname", "") or "",
        console_loglevel=_int(_read("/proc/sys/kernel/printk")),
        panic_on_oops=_int(_read("/proc/sys/kernel/panic_on_oops")),
        panic=_int(_read("/proc/sys/kernel/panic")),
        cmdline_netconsole=any(w.startswith("netconsole=") for w in cmdline.split()),
        targets=configfs_targets(), os_id=_os_id(), present=_present())
