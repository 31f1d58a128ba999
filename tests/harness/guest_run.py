"""Boot a Debian kernel in QEMU that sends netconsole to a collector on the host.

API (for the kernel, incidents and alert tiers)::

    from harness.guest_run import boot_guest, MODES, SCENARIOS

    run = boot_guest("6.1", "extended", "oops-panic", collector_port, workdir)
    run.serial_log   # pathlib.Path: the guest's serial console (ground truth)
    run.pcap         # pathlib.Path: every frame the guest NIC sent (pcap,
                     #   Ethernet, 10.0.2.15:6665 -> 10.0.2.2:PORT), written by
                     #   QEMU's filter-dump, so it holds only this guest's traffic
    run.seconds      # wall seconds of the QEMU run; run.build_seconds for the
                     #   (cached) initramfs/module preparation
    run.exit_code, run.timed_out, run.accel, run.kver, run.cmdline

    # a configfs target that names its host (userdata hostname=db-17 as well)
    run = boot_guest("6.12", "configfs", "oops", collector_port, workdir, hostname="db-17")

``kernel`` is a short name ("6.1", "6.12", see guest_build.KERNEL_PATTERNS)
or a full release. ``mode`` is one of MODES: ``plain``, ``extended``,
``release`` (extended with the ``r`` release prefix, 6.6+) or ``configfs``
(an extended configfs target with two userdata entries, ``guest`` and
``role``; 6.9+ for userdata; ``hostname=NAME`` adds a third entry, ``hostname``,
which the collector takes as the host's own name), or ``senderconfig`` (the
configfs script ``sender-config`` generated for this guest, passed in ``files``, run
twice; ``hostname=`` names the guest). ``scenario`` is one of SCENARIOS (see
``tests/kernel/init.sh`` and ``tests/kernel/nctest/nctest.c``); EXPECT holds,
per scenario, the lines that prove it happened. ``missing_tools()`` says why
this host cannot boot guests (None if it can).

Networking is QEMU user mode (slirp): the guest sends to 10.0.2.2:PORT and
the datagrams arrive on the host at 127.0.0.1:PORT from 127.0.0.1 (a slirp
ephemeral source port), so a collector listening on 127.0.0.1:PORT sees the
guest as host ``127.0.0.1``. Nothing leaves the machine.

NIC: virtio-net (``NETCONSOLE_QEMU_NIC=e1000`` for an e1000; under TCG it
sent less, not more). The guest raises the virtio TX queue's BQL floor
(``init.sh``): 6.12 otherwise stalls netconsole for good in about one run of
three on a busy host; ``NETCONSOLE_GUEST_BQL=kernel`` keeps the kernel
default to reproduce that.

Acceleration: KVM only if a short probe boot under KVM works on this host
(``/dev/kvm`` may open and still hang guests), otherwise TCG; the verdict is
cached in ``tests/kernel/.cache/accel-*.txt``. ``NETCONSOLE_QEMU_ACCEL=tcg|kvm`` forces it.
"""

import dataclasses
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import time
from typing import Optional

from harness import guest_build

QEMU = "qemu-system-x86_64"
MODES = ("plain", "extended", "release", "configfs", "senderconfig")
# senderconfig: the guest runs the configfs script `sender-config` generated for it
# (boot_guest(files={SENDERCONFIG_SCRIPT: ...})) instead of init.sh's own setup, twice
SENDERCONFIG_SCRIPT = "etc/netconsole-target"
# a /dev/kmsg line (sender-test's record) init.sh writes once the target is up
SELFTEST_LINE = "etc/netconsole-selftest"
# modes that need a kernel feature: mode -> minimal (major, minor)
MODE_MIN_KERNEL = {"release": (6, 6), "configfs": (6, 9)}
SCENARIOS = ("boot", "sysrq-t", "sysrq-l", "sysrq-m", "sysrq-c", "oops", "oops-panic",
             "bug", "warn", "warn3", "panic", "long", "burst", "clean", "clean-off", "reboot-f",
             "hang")
BURST_LINES = 5000
# scenario -> [(regex on a line's text, how many lines at least)]: proof that
# the guest did what the scenario says, on the console and in the decoded log
EXPECT = {
    "boot": [(r"^Linux version |^netconsole: network logging started", 1)],
    "sysrq-t": [(r"^sysrq: Show State", 1), (r"^task:", 20)],
    "sysrq-l": [(r"^sysrq: Show backtrace of all active CPUs", 1), (r"NMI backtrace", 1)],
    "sysrq-m": [(r"^sysrq: Show Memory", 1), (r"^Mem-Info:", 1)],
    "sysrq-c": [(r"^sysrq: Trigger a crash", 1), (r"^Kernel panic - not syncing: sysrq", 1)],
    "oops": [(r"^BUG: kernel NULL pointer dereference", 1), (r"^Oops: ", 1),
             (r"RIP: 0010:nctest_null_deref", 1), (r"^---\[ end trace ", 1)],
    "oops-panic": [(r"^BUG: kernel NULL pointer dereference", 1),
                   (r"^Kernel panic - not syncing: Fatal exception", 1)],
    "bug": [(r"^kernel BUG at nctest\.c:\d+", 1), (r"invalid opcode", 1)],
    "warn": [(r"^WARNING: CPU: \d+ PID: \d+ at nctest\.c:\d+ nctest_warn", 1),
             (r"^nctest: WARN\(\) with a message, value=42", 1), (r"^---\[ end trace ", 1)],
    "warn3": [(r"^WARNING: CPU: \d+ PID: \d+ at nctest\.c:\d+ nctest_warn3", 3),
              (r"^---\[ end trace ", 3)],
    "panic": [(r"^Kernel panic - not syncing: nctest: panic\(\) called on purpose", 1)],
    "long": [(r"^nctest long1020: ", 1), (r"^nctest multiline: line 7 of 8", 1),
             (r"^nctest utf8: ", 1), (r"^nctest escapes-big: ", 1), (r"^nctest cont: a b c$", 1)],
    "burst": [(r"^nctest burst \d+/%d " % BURST_LINES, BURST_LINES)],
    "clean": [(r"^systemd-shutdown\[1\]: Rebooting\.", 1)],
    "clean-off": [(r"^systemd-shutdown\[1\]: Powering off\.", 1)],
    "reboot-f": [(r"^nctest-init: rebooting with reboot -f", 1)],
    "hang": [(r"^nctest-init: waiting for the reset", 1)],
}
# scenario -> the guest's marker after which the harness resets it through QEMU's
# monitor (`system_reset`: no shutdown, no last words), RESET_AFTER seconds later
RESET_MARKERS = {"hang": b"nctest-init: waiting for the reset"}
# scenarios that end the guest without a power-off: for the reboot tests only, not
# the console comparison matrix (their stream stops wherever the guest is cut)
REBOOTS = ("clean", "clean-off", "reboot-f", "hang")
RESET_AFTER = 1.5
# scenarios that end in a panic (the guest reboots, QEMU exits on -no-reboot)
PANICS = ("sysrq-c", "oops-panic", "panic")
# wall-clock limit of one run under TCG; a 5,000-line burst takes longest
TIMEOUTS = {"burst": 240, "sysrq-t": 120}
DEFAULT_TIMEOUT = 90
# seconds a guest may take from init's power-off marker to QEMU's exit
POWEROFF_GRACE = 20
POWEROFF_MARKER = b"nctest-init: powering off"
# the kernel prints this when it hands over to /init; a guest that died before it
# (seen once under TCG: an int3 Oops in sched_init_debug at 2.5 s) never loaded
# netconsole, so nothing of the run is lost by booting it again
USERSPACE_MARKER = b"Run /init as init process"
EARLY_BOOT_RETRIES = 2
# QEMU NIC model -> -device name
NICS = {"virtio": "virtio-net-pci", "e1000": "e1000"}
DEFAULT_NIC = os.environ.get("NETCONSOLE_QEMU_NIC", "virtio")


@dataclasses.dataclass
class GuestRun:
    kernel: str
    kver: str
    mode: str
    scenario: str
    port: int
    workdir: pathlib.Path
    serial_log: pathlib.Path
    pcap: pathlib.Path
    qemu_log: pathlib.Path
    cmdline: str
    accel: str
    hostname: Optional[str] = None   # the configfs userdata hostname, if one was set
    nic: str = DEFAULT_NIC
    exit_code: Optional[int] = None
    timed_out: bool = False
    # the guest printed init's power-off marker, then hung in the kernel's
    # shutdown (seen once in ~170 runs, 6.1 under TCG); QEMU was killed
    poweroff_hang: bool = False
    early_boot_retries: int = 0      # boots that died before /init, done again
    seconds: float = 0.0
    build_seconds: float = 0.0

    def serial_text(self):
        return self.serial_log.read_bytes().decode("utf-8", "backslashreplace")


def missing_tools():
    """Why this host cannot boot guests, or None."""
    if not shutil.which(QEMU):
        return "qemu-system-x86_64 is not installed (tests/install-deps.sh installs it)"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    for tool in ("cpio", "make", "gcc", "modprobe"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


def why_no_guest(kernel):
    """Why a test cannot boot Debian's `kernel` ("6.12") here with a syslog-ng to
    send to, or None: for pytest.skip() in the tests that need one guest."""
    from harness.sng import available
    why = available() or missing_tools()
    if why is None and kernel not in guest_build.kernels():
        why = ("Debian's %s kernel (with headers) is not installed "
               "(tests/install-deps.sh installs it)" % kernel)
    return why


def kernel_tuple(kver):
    major, minor = kver.split(".")[:2]
    return int(major), int(minor)


def mode_supported(kver, mode):
    need = MODE_MIN_KERNEL.get(mode)
    return need is None or kernel_tuple(kver) >= need


def _qemu_argv(kver, initrd, accel, append, serial, pcap, smp=2, mem=512, nic=DEFAULT_NIC):
    return [
        QEMU, "-accel", accel, "-m", str(mem), "-smp", str(smp),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(guest_build.vmlinuz(kver)), "-initrd", str(initrd),
        "-append", append,
        "-serial", "file:%s" % serial,
        "-monitor", "none",
        "-netdev", "user,id=n0",
        "-device", "%s,netdev=n0" % NICS[nic],
        "-object", "filter-dump,id=d0,netdev=n0,file=%s" % pcap,
    ]


def _cmdline(mode, scenario, port, lines, hostname=None):
    # panic=2: a panicking guest reboots after 2 s, and -no-reboot ends QEMU.
    # log_buf_len: the 5,000-line burst must not wrap the 128 KiB default.
    # printk.devkmsg=on: init's /dev/kmsg markers are not rate-limited.
    # ncbql, ncsettle: see init.sh (two ways 6.12 guests lost netconsole
    # output under TCG on a busy host)
    # nchostname: only when asked, so every other run's command line (and so
    # its console: the kernel echoes the parameters init gets) stays as it was
    line = ("console=ttyS0,115200 loglevel=7 panic=2 log_buf_len=1M printk.devkmsg=on "
            "ncmode=%s ncscen=%s ncport=%d nclines=%d ncbql=%s ncsettle=%s"
            % (mode, scenario, port, lines, os.environ.get("NETCONSOLE_GUEST_BQL", "raise"),
               os.environ.get("NETCONSOLE_GUEST_SETTLE", "1")))
    return line + (" nchostname=%s" % hostname if hostname else "")


# configfs refuses a userdata value over 200 bytes; whitespace would split the
# kernel command line init reads it from
MAX_USERDATA_VALUE = 200


def _check_hostname(mode, hostname):
    if hostname is None:
        return
    if mode not in ("configfs", "senderconfig"):
        raise ValueError("hostname= is configfs userdata: mode %r has none (use configfs)" % mode)
    if not hostname or len(hostname.encode()) > MAX_USERDATA_VALUE or \
            any(c.isspace() for c in hostname):
        raise ValueError("hostname %r: 1-%d bytes without whitespace"
                         % (hostname, MAX_USERDATA_VALUE))


def _accel_cache():
    qemu_id = "unknown"
    try:
        out = subprocess.run([QEMU, "--version"], stdout=subprocess.PIPE, timeout=20).stdout
        qemu_id = out.decode().split("\n")[0].split()[3]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    name = "accel-%s-%s.txt" % (platform.release(), qemu_id)
    return guest_build.CACHE / name.replace("/", "_")


_ACCEL = None


def accel():
    """'kvm' if a KVM guest really boots here, else 'tcg' (probe cached)."""
    global _ACCEL
    forced = os.environ.get("NETCONSOLE_QEMU_ACCEL")
    if forced:
        return forced
    if _ACCEL:
        return _ACCEL
    cache = _accel_cache()
    if cache.exists():
        _ACCEL = cache.read_text().strip()
        return _ACCEL
    _ACCEL = "tcg"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        _ACCEL = "kvm" if _probe_kvm() else "tcg"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(_ACCEL + "\n")
    return _ACCEL


def _probe_kvm(timeout=25):
    """Boot the 'boot' scenario without netconsole under KVM; True if init ran
    to its power-off marker. Under working KVM this takes 2-4 s."""
    import tempfile
    kver = guest_build.kernel_version(sorted(guest_build.kernels())[0])
    initrd = guest_build.build_initramfs(kver)
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as d:
        serial = pathlib.Path(d, "serial.log")
        argv = _qemu_argv(kver, initrd, "kvm", _cmdline("none", "boot", 9, 1),
                          serial, pathlib.Path(d, "probe.pcap"), smp=1)
        try:
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        text = serial.read_bytes() if serial.exists() else b""
        return proc.returncode == 0 and b"nctest-init: powering off" in text


def boot_guest(kernel, mode, scenario, collector_port, workdir, lines=BURST_LINES,
               timeout=None, name=None, nic=DEFAULT_NIC, hostname=None, files=None):
    """Boot `kernel` with netconsole in `mode` pointed at 10.0.2.2:collector_port
    (= 127.0.0.1:collector_port on the host), run `scenario`, power off or
    panic, and return a GuestRun. Files go to workdir/NAME.{serial.log,pcap,qemu.log}
    (NAME defaults to KERNEL-MODE-SCENARIO). `hostname` (configfs mode only) adds
    the userdata entry hostname=NAME to the target (init.sh's nchostname=); in
    senderconfig mode it is the guest's host name, which the script reads. `files`
    ({guest path: bytes}) go into the initramfs too (guest_build.with_files);
    senderconfig mode needs SENDERCONFIG_SCRIPT among them.
    Raises ValueError for an unknown mode/scenario, a mode the kernel lacks, or a
    hostname that mode or the command line cannot carry."""
    if mode not in MODES:
        raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
    if scenario not in SCENARIOS:
        raise ValueError("unknown scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
    _check_hostname(mode, hostname)
    if mode == "senderconfig" and SENDERCONFIG_SCRIPT not in (files or {}):
        raise ValueError("mode senderconfig runs files[%r]: give it" % SENDERCONFIG_SCRIPT)
    kver = guest_build.kernel_version(kernel)
    if not mode_supported(kver, mode):
        raise ValueError("kernel %s has no netconsole %s mode" % (kver, mode))
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = name or "%s-%s-%s" % (kernel, mode, scenario)
    t0 = time.monotonic()
    initrd = guest_build.build_initramfs(kver)
    if files:
        initrd = guest_build.with_files(initrd, files, workdir / (name + ".initrd"))
    acc = accel()
    build_seconds = time.monotonic() - t0
    run = GuestRun(kernel=kernel, kver=kver, mode=mode, scenario=scenario,
                   port=collector_port, workdir=workdir,
                   serial_log=workdir / (name + ".serial.log"),
                   pcap=workdir / (name + ".pcap"),
                   qemu_log=workdir / (name + ".qemu.log"),
                   cmdline=_cmdline(mode, scenario, collector_port, lines, hostname),
                   accel=acc, nic=nic, build_seconds=build_seconds, hostname=hostname)
    for p in (run.serial_log, run.pcap):
        if p.exists():
            p.unlink()
    argv = _qemu_argv(kver, initrd, acc, run.cmdline, run.serial_log, run.pcap, nic=nic)
    monitor = None
    if scenario in RESET_MARKERS:       # the hard reset goes through QEMU's monitor
        monitor = workdir / (name + ".monitor")
        argv[argv.index("-monitor") + 1] = "unix:%s,server=on,wait=off" % monitor
    limit = timeout or TIMEOUTS.get(scenario, DEFAULT_TIMEOUT)
    while True:
        t1 = time.monotonic()
        with open(str(run.qemu_log), "wb") as log:
            log.write((" ".join(shlex.quote(a) for a in argv) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
            run.exit_code, run.timed_out, run.poweroff_hang = _wait_qemu(
                proc, run.serial_log, t1 + limit, RESET_MARKERS.get(scenario), monitor)
        run.seconds = time.monotonic() - t1
        if run.early_boot_retries >= EARLY_BOOT_RETRIES or _reached_userspace(run.serial_log):
            return run
        run.early_boot_retries += 1
        os.replace(str(run.serial_log), str(run.serial_log) + ".early-crash-%d" % run.early_boot_retries)
        if run.pcap.exists():
            run.pcap.unlink()


def _monitor_command(path, command: bytes) -> None:
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(command)
        time.sleep(0.5)             # QEMU acts on the line before the socket closes


def _reached_userspace(serial_log) -> bool:
    try:
        return USERSPACE_MARKER in pathlib.Path(serial_log).read_bytes()
    except OSError:
        return False


def _wait_qemu(proc, serial_log, deadline, reset_marker=None, monitor=None):
    """Wait for QEMU; kill it at `deadline`, or POWEROFF_GRACE seconds after
    the guest printed the power-off marker. RESET_AFTER seconds after
    `reset_marker`, a hard reset: `system_reset` on the `monitor` socket (with
    -no-reboot QEMU then exits, as for any reset). Returns (exit code, timed out,
    hung in power-off)."""
    marker_at = reset_at = None
    while True:
        try:
            return proc.wait(timeout=0.5), False, False
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        tail = b""
        if marker_at is None or (reset_marker and reset_at is None):
            try:
                with open(str(serial_log), "rb") as f:
                    f.seek(max(0, os.path.getsize(str(serial_log)) - 4096))
                    tail = f.read()
            except OSError:
                pass
        if marker_at is None and POWEROFF_MARKER in tail:
            marker_at = now
        if reset_marker and reset_at is None and reset_marker in tail:
            reset_at = now
        if reset_at is not None and now - reset_at > RESET_AFTER:
            reset_at = float("inf")         # once
            _monitor_command(monitor, b"system_reset\n")
        hang = marker_at is not None and now - marker_at > POWEROFF_GRACE
        if hang or now > deadline:
            proc.kill()
            return proc.wait(), True, hang
