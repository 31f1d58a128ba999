"""`sender-config --apply`: write a plan's files idempotently and load its target.

A file is written only when its content differs (atomically, with its mode); one
that exists without render.HEADER is an operator's and is left alone unless
``force``. A file for one network stack or boot loader (render.File.applies) is
written only where its directory exists (/etc/network/if-up.d for ifupdown,
/etc/NetworkManager/dispatcher.d, /etc/default/grub.d). Loading: the configfs
script is run (and its unit enabled when systemd runs); a module-parameter target
is loaded with modprobe unless netconsole is loaded already (modprobe -r would drop
every target it has: that is left to the operator); a boot parameter needs the boot
loader updated and a reboot, which is never done here.
"""

import os
import subprocess
from typing import Callable, List, Tuple

from . import render
from .plan import Plan


def _under(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def _ours(text: str) -> bool:
    return any(line.startswith(render.HEADER) for line in text.splitlines()[:3])


def write_file(f: render.File, root: str = "/", force: bool = False) -> str:
    """What happened: "created", "updated", "unchanged", "skipped: ..." or "refused: ..."."""
    path = _under(root, f.path)
    parent = os.path.dirname(path)
    if f.applies != render.FOR_ALL and not os.path.isdir(parent):
        return "skipped: no %s here (%s)" % (os.path.dirname(f.path), f.applies)
    try:
        with open(path, encoding="utf-8", errors="replace") as old:
            current = old.read()
    except FileNotFoundError:
        current = None
    if current == f.content and (os.stat(path).st_mode & 0o7777) == f.mode:
        return "unchanged"
    if current is not None and not _ours(current) and not force:
        return "refused: it exists and was not written by sender-config (--force replaces it)"
    os.makedirs(parent, exist_ok=True)
    tmp = "%s.sender-config.tmp" % path
    with open(tmp, "w", encoding="utf-8") as new:
        new.write(f.content)
    os.chmod(tmp, f.mode)
    os.replace(tmp, path)
    return "created" if current is None else "updated"


def write_files(plan: Plan, root: str = "/", force: bool = False) -> List[Tuple[str, str]]:
    return [(f.path, write_file(f, root, force)) for f in render.files(plan)]


def _run(argv: List[str]) -> Tuple[int, str]:
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout.decode(errors="replace").strip()


def load(plan: Plan, run: Callable = _run, systemd: bool = None,
         loaded: bool = None) -> List[Tuple[str, int, str]]:
    """Load the target now: [(command, exit status, output)]; a status of None is a
    step left to the operator (its output says why)."""
    if systemd is None:
        systemd = os.path.isdir("/run/systemd/system")
    if loaded is None:
        loaded = os.path.isdir("/sys/module/netconsole")
    steps = []
    if plan.method == "configfs":
        argv = []
        if systemd:
            argv = [["systemctl", "daemon-reload"],
                    ["systemctl", "enable", render.unit_name(plan)]]
        argv.append(["sh", render.script_path(plan)])
        for a in argv:
            rc, out = run(a)
            steps.append((" ".join(a), rc, out))
            if rc != 0:
                break
    elif plan.netconsole == "builtin":
        steps.append(("reboot", None, "a netconsole= boot parameter takes effect at the "
                      "next boot, once the boot loader has it: %s"
                      % "; ".join(c for _w, c in render.commands(plan))))
    elif loaded:
        steps.append(("modprobe netconsole", None, "netconsole is loaded already: the "
                      "option takes effect when it is loaded again (modprobe -r netconsole "
                      "&& modprobe netconsole drops every target it has) or at the next "
                      "boot"))
    else:
        rc, out = run(["modprobe", "netconsole"])
        steps.append(("modprobe netconsole", rc, out))
    return steps
