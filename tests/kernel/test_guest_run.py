"""The QEMU wait of guest_run: time-outs and power-off hangs; the guest's command line
and its checks (no QEMU needed)."""

import subprocess
import time

import pytest

from harness import guest_run


def _sleeper():
    return subprocess.Popen(["sleep", "30"])


def test_hang_after_power_off_marker_is_told_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(guest_run, "POWEROFF_GRACE", 1.0)
    serial = tmp_path / "serial.log"
    serial.write_bytes(b"[    4.0] nctest-init: powering off\r\n[    5.0] ACPI: PM: ...\r\n")
    t0 = time.monotonic()
    code, timed_out, hang = guest_run._wait_qemu(_sleeper(), serial, t0 + 20)
    assert timed_out and hang and code != 0
    assert time.monotonic() - t0 < 5


def test_time_out_without_marker_is_a_plain_time_out(tmp_path):
    serial = tmp_path / "serial.log"
    serial.write_bytes(b"[    4.0] still booting\r\n")
    code, timed_out, hang = guest_run._wait_qemu(_sleeper(), serial, time.monotonic() + 1)
    assert timed_out and not hang


def test_normal_exit(tmp_path):
    proc = subprocess.Popen(["true"])
    assert guest_run._wait_qemu(proc, tmp_path / "absent.log", time.monotonic() + 10) == \
        (0, False, False)


def test_a_guest_that_died_before_init_is_told_apart(tmp_path):
    early = tmp_path / "early.log"
    early.write_bytes(b"[    2.557379] Kernel panic - not syncing: Fatal exception in interrupt\n")
    good = tmp_path / "good.log"
    good.write_bytes(b"[    1.9] Run /init as init process\n[    2.0] nctest-init: x\n")
    assert not guest_run._reached_userspace(early)
    assert guest_run._reached_userspace(good)
    assert not guest_run._reached_userspace(tmp_path / "missing.log")


def test_command_line_is_unchanged_unless_a_hostname_is_asked_for(monkeypatch):
    """The recorded fixtures' command lines come out again without hostname=, and
    hostname= only appends init.sh's nchostname= (no QEMU needed)."""
    import json
    import pathlib
    monkeypatch.delenv("NETCONSOLE_GUEST_BQL", raising=False)
    monkeypatch.delenv("NETCONSOLE_GUEST_SETTLE", raising=False)
    meta = json.loads((pathlib.Path(__file__).resolve().parents[1] / "fixtures"
                       / "kernel-fixtures.json").read_text())
    for f in meta.values():
        assert guest_run._cmdline(f["mode"], f["scenario"], f["collector_port"],
                                  guest_run.BURST_LINES) == f["cmdline"]
    plain = guest_run._cmdline("configfs", "oops", 6666, 5000)
    assert guest_run._cmdline("configfs", "oops", 6666, 5000, "db-17") == \
        plain + " nchostname=db-17"


@pytest.mark.parametrize("mode,name", [("extended", "db-17"), ("release", "db-17"),
                                       ("configfs", ""), ("configfs", "db 17"),
                                       ("configfs", "x" * 201)])
def test_a_hostname_needs_the_configfs_mode_and_one_word(tmp_path, mode, name):
    # refused before anything is built or booted
    with pytest.raises(ValueError, match="hostname"):
        guest_run.boot_guest("6.12", mode, "oops", 9, tmp_path, hostname=name)


def test_senderconfig_mode_needs_the_script(tmp_path):
    with pytest.raises(ValueError, match="senderconfig runs files"):
        guest_run.boot_guest("6.12", "senderconfig", "boot", 9, tmp_path,
                             files={guest_run.SELFTEST_LINE: b"<5>x\n"})


def test_with_files_appends_an_archive_the_kernel_unpacks_on_top(tmp_path):
    """Two gzip'd newc archives back to back; cpio reads the second's files."""
    import gzip
    import subprocess
    from harness import guest_build
    base = tmp_path / "base.cpio.gz"
    stage = tmp_path / "stage"
    (stage / "etc").mkdir(parents=True)
    (stage / "etc" / "old").write_text("old\n")
    base.write_bytes(guest_build._cpio(stage, base))
    out = guest_build.with_files(base, {"etc/netconsole-target": b"#!/bin/sh\n"},
                                 tmp_path / "run.initrd")
    data = out.read_bytes()
    assert data.startswith(base.read_bytes())
    second = gzip.decompress(data[len(base.read_bytes()):])
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=second,
                             stdout=subprocess.PIPE, timeout=30).stdout.decode().split()
    assert "etc/netconsole-target" in listing
