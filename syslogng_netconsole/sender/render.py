"""The files that make a plan's netconsole target persistent, and the commands.

Pure: ``files(plan)`` -> [File], ``commands(plan)`` -> [(what, command)]. Every file
starts with HEADER, which is how apply.py tells its own files from an operator's.

configfs method (the default): a shell script that makes or updates the target
(POSIX sh, busybox too; running it again changes nothing unless a setting differs),
a systemd unit that runs it once the network is online, interface-up hooks for
ifupdown (Debian/Ubuntu) and NetworkManager (RHEL/Fedora, Ubuntu desktops) that run
it again when the interface comes back (systemd-networkd: the unit alone, after
systemd-networkd-wait-online). params method: /etc/modprobe.d/netconsole.conf (the
netconsole= option, a softdep on the NIC driver) and /etc/modules-load.d/
netconsole.conf, or for a built-in netconsole the netconsole= boot parameter
(/etc/default/grub.d/ on Debian/Ubuntu, grubby on RHEL/Fedora). Both: an
/etc/sysctl.d/ file whose panic settings are commented-out options.
"""

import dataclasses
import shlex
from typing import List, Optional, Tuple

from syslogng_netconsole import __version__
from .plan import Plan, param_string

HEADER = "# Written by syslogng-netconsole sender-config"
SCRIPT_DIR = "/usr/local/sbin"
UNIT_DIR = "/etc/systemd/system"
SYSCTL = "/etc/sysctl.d/90-netconsole-panic.conf"
MODPROBE = "/etc/modprobe.d/netconsole.conf"
MODULES_LOAD = "/etc/modules-load.d/netconsole.conf"
GRUB_D = "/etc/default/grub.d/netconsole.cfg"
# where each kind of file belongs: a tag apply.py checks against the host
FOR_ALL, IFUPDOWN, NETWORKMANAGER, DEBIAN_GRUB = "all", "ifupdown", "networkmanager", \
    "debian-grub"
LABELS = {FOR_ALL: "every distribution",
          IFUPDOWN: "Debian/Ubuntu with ifupdown (/etc/network/interfaces)",
          NETWORKMANAGER: "RHEL/Fedora (and any host) with NetworkManager",
          DEBIAN_GRUB: "Debian/Ubuntu (GRUB); then run update-grub"}


@dataclasses.dataclass
class File:
    path: str
    content: str
    mode: int = 0o644
    applies: str = FOR_ALL
    about: str = ""


def q(value) -> str:
    """A value as one shell word ('' for empty)."""
    return shlex.quote(str(value))


def script_path(plan: Plan) -> str:
    return "%s/netconsole-%s" % (SCRIPT_DIR, plan.target.name)


def unit_name(plan: Plan) -> str:
    return "netconsole-%s.service" % plan.target.name


def _stamp(plan: Plan) -> str:
    t = plan.target
    return "%s %s: netconsole target %s, %s -> %s:%d" % (
        HEADER, __version__, t.name, t.dev, t.remote_ip, t.remote_port)


def files(plan: Plan) -> List[File]:
    if plan.target is None:
        return []
    out = []
    if plan.method == "configfs":
        out += [File(script_path(plan), configfs_script(plan), 0o755, FOR_ALL,
                     "makes or updates the configfs target (run it again at any time)"),
                File("%s/%s" % (UNIT_DIR, unit_name(plan)), unit(plan), 0o644, FOR_ALL,
                     "runs the script at boot, once the network is online; "
                     "`systemctl enable %s`" % unit_name(plan))]
        out += _hooks(plan)
    elif plan.netconsole == "builtin":
        out.append(File(GRUB_D, _grub(plan), 0o644, DEBIAN_GRUB,
                        "the netconsole= boot parameter (built-in netconsole)"))
    else:
        out += [File(MODPROBE, _modprobe(plan), 0o644, FOR_ALL,
                     "the netconsole= module option"),
                File(MODULES_LOAD, "%s\nnetconsole\n" % _stamp(plan), 0o644, FOR_ALL,
                     "loads netconsole at boot")]
    out.append(File(SYSCTL, sysctl(plan), 0o644, FOR_ALL,
                    "panic options, commented out: nothing is set until you uncomment"))
    return out


def commands(plan: Plan) -> List[Tuple[str, str]]:
    """What to run (by hand, or what --apply runs) after writing the files."""
    if plan.target is None:
        return []
    if plan.method == "configfs":
        return [("start it now and at every boot",
                 "systemctl daemon-reload && systemctl enable --now %s" % unit_name(plan)),
                ("or, without systemd, run", script_path(plan))]
    if plan.netconsole == "builtin":
        p = param_string(plan.target)
        return [("Debian/Ubuntu: after writing %s" % GRUB_D, "update-grub && reboot"),
                ("RHEL/Fedora", "grubby --update-kernel=ALL --args='netconsole=%s' && "
                 "reboot" % p)]
    return [("load it now (if netconsole is loaded already: modprobe -r netconsole "
             "first, which drops every target it has)", "modprobe netconsole")]


def configfs_script(plan: Plan) -> str:
    t = plan.target
    reset_ip = "::" if t.ipv6 else "0.0.0.0"
    head = """#!/bin/sh
%s
# Kernel messages as UDP to the collector %s:%d%s.
# Run at boot by %s and again when %s comes up; running it
# again changes nothing unless a setting differs. To remove the target:
#   echo 0 > /sys/kernel/config/netconsole/%s/enabled; rmdir it (userdata first).
NAME=%s
DEV=%s
LOCAL_PORT=%d
LOCAL_IP=%s    # empty: the interface's address when the target is enabled
REMOTE_IP=%s
REMOTE_PORT=%d
REMOTE_MAC=%s
EXTENDED=%d    # /dev/kmsg-style records: sequence numbers, levels, fragments
RELEASE=%d     # every record starts with `uname -r` (6.6+)
USERDATA=%d    # userdata hostname=NAME on every record (6.9+)
HOST_NAME=%s   # empty: this host's name when the script runs
RESET_IP=%s
""" % (_stamp(plan), t.remote_ip, t.remote_port, _features(t), unit_name(plan), t.dev,
       t.name, q(t.name), q(t.dev), t.local_port, q(t.local_ip), q(t.remote_ip),
       t.remote_port, q(t.remote_mac), t.extended, t.release, t.userdata,
       q(t.hostname or ""), reset_ip)
    return head + _SCRIPT_BODY


def _features(t) -> str:
    f = ["extended" if t.extended else "plain"]
    if t.release:
        f.append("release prefix")
    if t.userdata:
        f.append("userdata hostname")
    return " (%s)" % ", ".join(f)


_SCRIPT_BODY = r"""
# NETCONSOLE_CONFIGFS: a configfs mounted elsewhere (then nothing is loaded or mounted)
CFS=${NETCONSOLE_CONFIGFS:-/sys/kernel/config}
T=$CFS/netconsole/$NAME
say() { echo "netconsole-$NAME: $*" >&2; }
cur() { cat "$T/$1" 2>/dev/null; }
put() { echo "$2" > "$T/$1" || { say "cannot set $1=$2"; exit 1; }; }

if [ -z "${NETCONSOLE_CONFIGFS:-}" ]; then
    [ -d /sys/module/netconsole ] || modprobe netconsole || { say "cannot load netconsole"; exit 1; }
    grep -qs " $CFS configfs " /proc/mounts || mount -t configfs configfs "$CFS" ||
        { say "cannot mount configfs on $CFS"; exit 1; }
fi
[ -d "$CFS/netconsole" ] || { say "no $CFS/netconsole: no dynamic targets in this kernel"; exit 1; }
[ -d "$T" ] || mkdir "$T" || { say "cannot make $T"; exit 1; }

# userdata first: the target's first record ("network logging started") carries it too
hostname_userdata() {
    [ -d "$T/userdata" ] || { say "no userdata (6.9+): no hostname"; return; }
    h=${HOST_NAME:-$(cat /proc/sys/kernel/hostname)}
    case "$h" in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) h= ;; esac
    [ ${#h} -le 64 ] || h=
    if [ -z "$h" ]; then
        say "the host name is not one the collector takes ([A-Za-z0-9._-], <= 64): no userdata hostname"
        return
    fi
    [ -d "$T/userdata/hostname" ] || mkdir "$T/userdata/hostname" || exit 1
    [ "$(cur userdata/hostname/value)" = "$h" ] || put userdata/hostname/value "$h"
}
[ "$USERDATA" != 1 ] || hostname_userdata

changed=
for kv in "dev_name=$DEV" "local_port=$LOCAL_PORT" "remote_port=$REMOTE_PORT" \
          "remote_ip=$REMOTE_IP" "remote_mac=$REMOTE_MAC" "extended=$EXTENDED"; do
    [ "$(cur "${kv%%=*}")" = "${kv#*=}" ] || changed=1
done
[ -z "$LOCAL_IP" ] || [ "$(cur local_ip)" = "$LOCAL_IP" ] || changed=1
[ ! -e "$T/release" ] || [ "$(cur release)" = "$RELEASE" ] || changed=1
if [ -n "$changed" ] || [ "$(cur enabled)" != 1 ]; then
    [ "$(cur enabled)" != 1 ] || put enabled 0
    [ ! -e "$T/release" ] || put release 0
    put dev_name "$DEV"
    put local_port "$LOCAL_PORT"
    put remote_port "$REMOTE_PORT"
    put local_ip "${LOCAL_IP:-$RESET_IP}"
    put remote_ip "$REMOTE_IP"
    put remote_mac "$REMOTE_MAC"
    put extended "$EXTENDED"
    if [ "$RELEASE" = 1 ]; then
        [ -e "$T/release" ] && put release 1 || say "no release attribute (6.6+): no prefix"
    fi
    echo 1 > "$T/enabled" || { say "enabling failed: see dmesg (netconsole, netpoll)"; exit 1; }
    say "enabled: $DEV -> $REMOTE_IP:$REMOTE_PORT ($REMOTE_MAC)"
fi

exit 0
"""


def unit(plan: Plan) -> str:
    t = plan.target
    return """%s
[Unit]
Description=netconsole target %s: kernel messages to %s:%d
Documentation=https://docs.kernel.org/networking/netconsole.html
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%s

[Install]
WantedBy=multi-user.target
""" % (_stamp(plan), t.name, t.remote_ip, t.remote_port, script_path(plan))


def _hooks(plan: Plan) -> List[File]:
    t, script = plan.target, script_path(plan)
    ifup = """#!/bin/sh
%s
# ifupdown runs this for every interface it brings up; the target needs %s.
[ "$IFACE" = %s ] || exit 0
exec %s
""" % (_stamp(plan), t.dev, q(t.dev), q(script))
    nm = """#!/bin/sh
%s
# NetworkManager runs this with the interface and the action.
[ "$1" = %s ] && [ "$2" = up ] || exit 0
exec %s
""" % (_stamp(plan), q(t.dev), q(script))
    return [File("/etc/network/if-up.d/netconsole-%s" % t.name, ifup, 0o755, IFUPDOWN,
                 "runs the script again when ifupdown brings %s up" % t.dev),
            File("/etc/NetworkManager/dispatcher.d/50-netconsole-%s" % t.name, nm, 0o755,
                 NETWORKMANAGER, "runs the script again when NetworkManager brings %s up"
                 % t.dev)]


def _modprobe(plan: Plan) -> str:
    lines = [_stamp(plan), "options netconsole netconsole=%s" % param_string(plan.target)]
    mods = sorted({d.module for d in plan.drivers.values() if d.modular and d.module})
    if mods:
        lines.append("# the NIC driver first: netconsole sets its target up when it loads")
        lines.append("softdep netconsole pre: %s" % " ".join(mods))
    return "\n".join(lines) + "\n"


def _grub(plan: Plan) -> str:
    return ('%s\n# Debian/Ubuntu: /etc/default/grub reads this; run update-grub, then '
            'reboot.\nGRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX netconsole=%s"\n'
            % (_stamp(plan), param_string(plan.target)))


def _current(value: Optional[int]) -> str:
    return "unknown" if value is None else str(value)


def sysctl(plan: Plan) -> str:
    s = plan.system
    return """%s
# Options, not settings: every line below is commented out, so nothing changes
# until you uncomment it and run `sysctl --system`. Current values on this host:
# kernel.panic_on_oops = %s, kernel.panic = %s.
#
# kernel.panic_on_oops = 1 turns every Oops into a panic. The report is sent first
# (netconsole sends it as it is printed), then the machine stops instead of running
# on with a kernel that just failed; an Oops otherwise kills only the task.
#kernel.panic_on_oops = 1
#
# kernel.panic = 10 reboots 10 seconds after a panic (0 waits for ever, for someone
# to read the screen and reset the machine). The wait lets the last datagrams leave.
#kernel.panic = 10
""" % (_stamp(plan), _current(s.panic_on_oops if s else None),
       _current(s.panic if s else None))
