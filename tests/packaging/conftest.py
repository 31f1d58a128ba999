"""Fixtures of the packaging tier: the built .deb, Debian chroots, crash captures.
Constants and helpers live in pkgtest.py (test files import it; a test file importing
`conftest` would get whichever conftest pytest loaded last)."""

import os
import pathlib
import subprocess

import pytest

from harness import chroot
from pkgtest import CRASH_MARKERS, FIXTURES, REPO, decode


@pytest.fixture(scope="session")
def chroot_ok():
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def deb_file(tmp_path_factory):
    """The .deb built from this checkout by packaging/build-deb.sh (as `make deb`)."""
    out = tmp_path_factory.mktemp("deb")
    p = subprocess.run(["sh", str(REPO / "packaging/build-deb.sh"), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    debs = sorted(out.glob("syslog-ng-netconsole_*_all.deb"))
    assert len(debs) == 1, (debs, p.stdout)
    return debs[0]


@pytest.fixture(scope="session")
def crash_capture():
    """A real QEMU kernel crash capture of the kernel tier (tests/fixtures/*.pcap*):
    the first, by name, whose decoded text holds a crash report.
    NETCONSOLE_CRASH_CAPTURE=FILE picks one by hand."""
    if os.environ.get("NETCONSOLE_CRASH_CAPTURE"):
        return pathlib.Path(os.environ["NETCONSOLE_CRASH_CAPTURE"])
    for cap in sorted(FIXTURES.glob("**/*.pcap*")) if FIXTURES.is_dir() else []:
        if any(m in decode(cap) for m in CRASH_MARKERS):
            return cap
    pytest.skip("no kernel crash capture under tests/fixtures/ (the kernel tier adds them)")
