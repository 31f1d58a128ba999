"""sender-config's files (sender/render.py), their writing (sender/apply.py), the
configfs script run by real shells (dash and busybox sh) against a directory laid
out as the kernel lays out a fresh target, and the command itself on this machine."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from syslogng_netconsole.cli import sender_config
from syslogng_netconsole.sender import apply, gather, render
from syslogng_netconsole.sender.plan import Driver, Request

from test_sender_plan import crafted

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
# what a fresh target directory holds (drivers/net/netconsole.c defaults)
FRESH = {"enabled": "0", "dev_name": "eth0", "local_port": "6665", "remote_port": "6666",
         "local_ip": "0.0.0.0", "remote_ip": "0.0.0.0", "remote_mac": "ff:ff:ff:ff:ff:ff",
         "extended": "0", "release": "0"}


def guest_plan(**kw):
    return crafted("qemu-guest", Request(collector="10.0.2.2", port=kw.pop("port", 6666),
                                         **kw))


def by_path(plan):
    return {f.path: f for f in render.files(plan)}


def test_configfs_plan_files():
    p = guest_plan()
    files = by_path(p)
    assert sorted(files) == [
        "/etc/NetworkManager/dispatcher.d/50-netconsole-syslogng-10-0-2-2",
        "/etc/network/if-up.d/netconsole-syslogng-10-0-2-2",
        "/etc/sysctl.d/90-netconsole-panic.conf",
        "/etc/systemd/system/netconsole-syslogng-10-0-2-2.service",
        "/usr/local/sbin/netconsole-syslogng-10-0-2-2"]
    script = files["/usr/local/sbin/netconsole-syslogng-10-0-2-2"]
    assert script.mode == 0o755 and script.content.startswith("#!/bin/sh\n" + render.HEADER)
    for line in ("DEV=eth0", "REMOTE_IP=10.0.2.2", "REMOTE_MAC=52:55:0a:00:02:02",
                 "LOCAL_IP=10.0.2.15 ", "EXTENDED=1 ", "RELEASE=1 ", "USERDATA=1 "):
        assert "\n" + line in script.content, line
    unit = files["/etc/systemd/system/netconsole-syslogng-10-0-2-2.service"].content
    assert "After=network-online.target" in unit and \
        "ExecStart=/usr/local/sbin/netconsole-syslogng-10-0-2-2" in unit
    nm = files["/etc/NetworkManager/dispatcher.d/50-netconsole-syslogng-10-0-2-2"]
    assert nm.applies == render.NETWORKMANAGER and '[ "$1" = eth0 ]' in nm.content


def test_sysctl_file_sets_nothing():
    p = guest_plan()
    p.system.panic_on_oops, p.system.panic = 0, 1
    text = by_path(p)[render.SYSCTL].content
    settings = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert settings == []
    assert "#kernel.panic_on_oops = 1" in text and "#kernel.panic = 10" in text
    assert "kernel.panic_on_oops = 0, kernel.panic = 1" in text


def test_module_parameter_plan_files():
    p = guest_plan(method="params")
    files = by_path(p)
    assert sorted(files) == sorted([render.MODULES_LOAD, render.MODPROBE, render.SYSCTL])
    mp = files[render.MODPROBE].content
    assert "\noptions netconsole netconsole=+r6665@10.0.2.15/eth0,6666@10.0.2.2/" \
        "52:55:0a:00:02:02\n" in mp
    assert "\nsoftdep netconsole pre: virtio_net\n" in mp
    assert files[render.MODULES_LOAD].content.endswith("\nnetconsole\n")


def test_boot_parameter_plan_for_builtin_netconsole():
    p = crafted("qemu-guest", Request(collector="10.0.2.2", method="params"),
                netconsole="builtin", drivers={"eth0": Driver("virtio_net", None, False)})
    files = by_path(p)
    assert sorted(files) == [render.GRUB_D, render.SYSCTL]
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX netconsole=+r6665@10.0.2.15/eth0,' \
        in files[render.GRUB_D].content
    cmds = dict(render.commands(p))
    assert cmds["RHEL/Fedora"].startswith("grubby --update-kernel=ALL --args='netconsole=+r")


# ---- the configfs script, run by real shells ----

SHELLS = [["dash"], ["busybox", "sh"]]


def fresh_target(cfs, name, userdata=True):
    t = cfs / "netconsole" / name
    t.mkdir(parents=True)
    for k, v in FRESH.items():
        (t / k).write_text(v + "\n")
    if userdata:
        (t / "userdata").mkdir()
    return t


def run_script(shell, script, cfs, hostname=None):
    env = dict(os.environ, NETCONSOLE_CONFIGFS=str(cfs))
    if shutil.which(shell[0]) is None:
        pytest.fail("%s is not installed (tests/install-deps.sh)" % shell[0])
    return subprocess.run(shell + [str(script)], env=env, capture_output=True, timeout=30,
                          text=True)


def values(t):
    return {p.name: p.read_text().strip() for p in t.iterdir() if p.is_file()}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_script_sets_the_target_then_changes_nothing(tmp_path, shell):
    p = guest_plan(port=7001, hostname="db-17")
    script = tmp_path / "nc.sh"
    script.write_text(render.configfs_script(p))
    cfs = tmp_path / "cfs"
    t = fresh_target(cfs, p.target.name)
    res = run_script(shell, script, cfs)
    assert res.returncode == 0, res.stderr
    assert "enabled: eth0 -> 10.0.2.2:7001" in res.stderr
    assert values(t) == {"enabled": "1", "dev_name": "eth0", "local_port": "6665",
                         "remote_port": "7001", "local_ip": "10.0.2.15",
                         "remote_ip": "10.0.2.2", "remote_mac": "52:55:0a:00:02:02",
                         "extended": "1", "release": "1"}
    assert (t / "userdata" / "hostname" / "value").read_text() == "db-17\n"
    stamps = {q: q.stat().st_mtime_ns for q in t.rglob("*") if q.is_file()}
    again = run_script(shell, script, cfs)
    assert again.returncode == 0 and again.stderr == ""
    assert {q: q.stat().st_mtime_ns for q in t.rglob("*") if q.is_file()} == stamps
    # a setting that differs (someone changed the port): disabled, rewritten, enabled
    (t / "remote_port").write_text("9\n")
    third = run_script(shell, script, cfs)
    assert "enabled:" in third.stderr and values(t)["remote_port"] == "7001"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_script_on_a_kernel_without_release_and_userdata(tmp_path, shell):
    p = guest_plan()
    script = tmp_path / "nc.sh"
    script.write_text(render.configfs_script(p))
    cfs = tmp_path / "cfs"
    t = fresh_target(cfs, p.target.name, userdata=False)
    (t / "release").unlink()
    res = run_script(shell, script, cfs)
    assert res.returncode == 0, res.stderr
    assert "no release attribute" in res.stderr and "no userdata" in res.stderr
    assert values(t)["extended"] == "1" and not (t / "release").exists()


@pytest.mark.parametrize("name,ok", [("web-3", True), ("(none)", False), ("a" * 65, False),
                                     ("-x", False), ("db.example.org", True)])
def test_script_takes_only_names_the_collector_takes(tmp_path, name, ok):
    p = guest_plan(hostname=name if ok or name else None)
    p.target.hostname = name
    script = tmp_path / "nc.sh"
    script.write_text(render.configfs_script(p))
    cfs = tmp_path / "cfs"
    t = fresh_target(cfs, p.target.name)
    res = run_script(["dash"], script, cfs)
    assert res.returncode == 0
    got = t / "userdata" / "hostname" / "value"
    assert got.exists() == ok, res.stderr
    if not ok:
        assert "not one the collector takes" in res.stderr


def test_script_fails_loudly_without_dynamic_targets(tmp_path):
    p = guest_plan()
    script = tmp_path / "nc.sh"
    script.write_text(render.configfs_script(p))
    (tmp_path / "cfs").mkdir()
    res = run_script(["dash"], script, tmp_path / "cfs")
    assert res.returncode == 1 and "no dynamic targets" in res.stderr


# ---- apply ----

def test_apply_writes_idempotently_and_keeps_an_operators_file(tmp_path):
    p = guest_plan(method="params")
    (tmp_path / "etc/modprobe.d").mkdir(parents=True)
    mine = tmp_path / "etc/modprobe.d/netconsole.conf"
    mine.write_text("options netconsole netconsole=@/,@10.0.0.1/\n")
    first = dict(apply.write_files(p, str(tmp_path)))
    assert first[render.MODPROBE].startswith("refused")
    assert first[render.MODULES_LOAD] == "created" and first[render.SYSCTL] == "created"
    assert mine.read_text() == "options netconsole netconsole=@/,@10.0.0.1/\n"
    forced = dict(apply.write_files(p, str(tmp_path), force=True))
    assert forced[render.MODPROBE] == "updated"
    assert set(dict(apply.write_files(p, str(tmp_path))).values()) == {"unchanged"}
    assert (tmp_path / render.SYSCTL.lstrip("/")).stat().st_mode & 0o777 == 0o644


def test_apply_writes_a_hook_only_where_its_stack_is(tmp_path):
    p = guest_plan()
    (tmp_path / "etc/network/if-up.d").mkdir(parents=True)
    out = dict(apply.write_files(p, str(tmp_path)))
    ifup = "/etc/network/if-up.d/netconsole-syslogng-10-0-2-2"
    nm = "/etc/NetworkManager/dispatcher.d/50-netconsole-syslogng-10-0-2-2"
    assert out[ifup] == "created" and out[nm].startswith("skipped")
    assert (tmp_path / ifup.lstrip("/")).stat().st_mode & 0o777 == 0o755
    script = tmp_path / "usr/local/sbin/netconsole-syslogng-10-0-2-2"
    assert script.read_text() == render.configfs_script(p)
    # a changed plan updates the files it owns
    q = guest_plan(port=7777)
    assert dict(apply.write_files(q, str(tmp_path)))[
        "/usr/local/sbin/netconsole-syslogng-10-0-2-2"] == "updated"


def test_load_steps():
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, ""
    p = guest_plan()
    steps = apply.load(p, run, systemd=True, loaded=False)
    assert calls == [["systemctl", "daemon-reload"],
                     ["systemctl", "enable", "netconsole-syslogng-10-0-2-2.service"],
                     ["sh", "/usr/local/sbin/netconsole-syslogng-10-0-2-2"]]
    assert [rc for _c, rc, _o in steps] == [0, 0, 0]
    calls.clear()
    params = guest_plan(method="params")
    (step,) = apply.load(params, run, systemd=False, loaded=True)
    assert calls == [] and step[1] is None and "modprobe -r netconsole" in step[2]
    assert apply.load(params, run, systemd=False, loaded=False)[0][:2] == \
        ("modprobe netconsole", 0)


# ---- the command on this machine ----

def cli(*args):
    return subprocess.run([PYTHON, "-m", "syslogng_netconsole"] + list(args), cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)


def test_cli_refuses_this_hosts_own_address():
    res = cli("sender-config", "--collector", "127.0.0.1")
    assert res.returncode == 1
    assert "127.0.0.1 is an address of this host" in res.stdout
    assert "Nothing to write until the errors above are fixed." in res.stdout
    js = json.loads(cli("sender-config", "--collector", "127.0.0.1:514", "--format",
                        "json").stdout)
    assert js["ok"] is False and js["port"] == 514 and js["files"] == []
    assert "collector_is_local" in [m["code"] for m in js["messages"]]


def test_cli_route_agrees_with_ip_on_this_machine():
    default, _ = gather.run_ip(["route", "show", "default"])
    if not default or "gateway" not in default[0]:
        pytest.skip("this machine has no default route via a gateway")
    js = json.loads(cli("sender-config", "--collector", "198.51.100.7", "--format",
                        "json").stdout)
    assert js["route"]["dev"] == default[0]["dev"]
    assert js["route"]["nexthop"] == default[0]["gateway"] and js["route"]["via_gateway"]
    # the kernel this runs on decides the rest: its netconsole kind is what gather says
    assert js["netconsole"] == gather.netconsole_kind(os.uname().release)
    assert js["ok"] == (not [m for m in js["messages"] if m["level"] == "error"])


def test_cli_apply_needs_a_plan(tmp_path):
    res = cli("sender-config", "--collector", "127.0.0.1", "--apply", "--root",
              str(tmp_path))
    assert res.returncode == 1 and "--apply did nothing" in res.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text,want", [
    ("10.0.0.1", ("10.0.0.1", None)), ("10.0.0.1:514", ("10.0.0.1", 514)),
    ("[fd00::1]:6666", ("fd00::1", 6666)), ("fd00::1", ("fd00::1", None)),
    ("[fd00::1]", ("fd00::1", None)), ("collector.example:7000", ("collector.example", 7000))])
def test_collector_argument(text, want):
    assert sender_config.split_collector(text) == want


def test_json_and_text_of_a_full_plan():
    p = guest_plan()
    js = sender_config.to_json(p)
    assert js["ok"] and js["netconsole_param"] == \
        "+r6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"
    assert [f["path"] for f in js["files"]] == [f.path for f in render.files(p)]
    assert js["files"][0]["mode"] == "0755"
    text = sender_config.to_text(p)
    assert "==> /usr/local/sbin/netconsole-syslogng-10-0-2-2 (0755; every distribution" \
        in text
    assert "  next hop    10.0.2.2: 52:55:0a:00:02:02 (neighbour REACHABLE)" in text


def test_gather_tells_module_builtin_and_missing(tmp_path):
    lib, sysfs = tmp_path / "lib", tmp_path / "sys"
    (lib / "9.9.9").mkdir(parents=True)
    assert gather.netconsole_kind("9.9.9", str(sysfs), str(lib)) == "missing"
    (lib / "9.9.9" / "modules.builtin").write_text("kernel/drivers/net/netconsole.ko\n")
    assert gather.netconsole_kind("9.9.9", str(sysfs), str(lib)) == "builtin"
    (lib / "9.9.9" / "modules.builtin").unlink()
    (lib / "9.9.9" / "modules.dep").write_text(
        "kernel/drivers/net/netconsole.ko.xz: kernel/drivers/net/configfs.ko.xz\n")
    assert gather.netconsole_kind("9.9.9", str(sysfs), str(lib)) == "module"
    (sysfs / "module" / "netconsole").mkdir(parents=True)       # loaded, built in
    assert gather.netconsole_kind("9.9.9", str(sysfs), str(lib)) == "builtin"
    (sysfs / "module" / "netconsole" / "initstate").write_text("live\n")
    assert gather.netconsole_kind("9.9.9", str(sysfs), str(lib)) == "module"


def test_gather_reads_the_installed_debian_kernels():
    from harness.guest_build import kernels
    found = kernels()
    if not found:
        pytest.skip("no Debian kernel with headers installed (tests/install-deps.sh)")
    for kver in found.values():
        assert gather.netconsole_kind(kver) == "module"
        assert gather.kernel_config(kver)["CONFIG_NETCONSOLE_DYNAMIC"] == "y"


def test_gather_driver_from_sysfs_links(tmp_path):
    sysfs = tmp_path / "sys"
    drv = sysfs / "bus/pci/drivers/e1000e"
    (drv).mkdir(parents=True)
    (sysfs / "module/e1000e").mkdir(parents=True)
    (sysfs / "module/e1000e/initstate").write_text("live\n")
    os.symlink(str(sysfs / "module/e1000e"), str(drv / "module"))
    dev = sysfs / "devices/pci0000:00/0000:00:19.0"
    dev.mkdir(parents=True)
    os.symlink(str(drv), str(dev / "driver"))
    (sysfs / "class/net/eth0").mkdir(parents=True)
    os.symlink(str(dev), str(sysfs / "class/net/eth0/device"))
    assert gather.driver("eth0", str(sysfs)) == Driver("e1000e", "e1000e", True)
    (sysfs / "module/e1000e/initstate").unlink()
    assert gather.driver("eth0", str(sysfs)).modular is False
    assert gather.driver("lo", str(sysfs)) is None
