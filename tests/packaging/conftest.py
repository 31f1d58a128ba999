"""Fixtures of the packaging tier: the built .deb, Debian chroots, crash captures.
Constants and helpers live in pkgtest.py (test files import it; a test file importing
`conftest` would get whichever conftest pytest loaded last)."""

import os
import pathlib
import re
import subprocess

import pytest

from harness import chroot
from pkgtest import FIXTURES, PREVIOUS_RELEASE, REPO, analyze, decode_records


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
def crash_captures():
    """Real QEMU kernel crash captures of the kernel tier (tests/fixtures/*.pcap): by
    name, the first in which the checkout's detector finds an incident, for each wire format
    (plain, extended). NETCONSOLE_CRASH_CAPTURE=FILE[:FILE...] picks them by hand."""
    if os.environ.get("NETCONSOLE_CRASH_CAPTURE"):
        return [pathlib.Path(f) for f in os.environ["NETCONSOLE_CRASH_CAPTURE"].split(":")]
    chosen = {}
    for cap in sorted(FIXTURES.glob("**/*.pcap")) if FIXTURES.is_dir() else []:
        fmt = ",".join(sorted({r["format"] for r in decode_records(cap)}))
        if fmt not in chosen and analyze(cap):
            chosen[fmt] = cap
    if not chosen:
        pytest.skip("no kernel crash capture under tests/fixtures/ (the kernel tier adds them)")
    return [chosen[f] for f in sorted(chosen)]


@pytest.fixture(scope="session")
def previous_release_tree(tmp_path_factory):
    """The previous release's tree (pkgtest.PREVIOUS_RELEASE), from `git archive` of its
    commit into a scratch directory: what was released, not the checkout's files."""
    version, commit = PREVIOUS_RELEASE
    tree = tmp_path_factory.mktemp("release-%s" % version)
    arch = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True,
                          timeout=120)
    if arch.returncode != 0:
        pytest.skip("not a git checkout holding the previous release %s (%s): %s"
                    % (version, commit, arch.stderr.decode(errors="replace").strip()))
    subprocess.run(["tar", "-C", str(tree), "-xf", "-"], input=arch.stdout, check=True,
                   timeout=120)
    got = re.search(r'__version__ = "(.*)"',
                    (tree / "syslogng_netconsole/__init__.py").read_text()).group(1)
    assert got == version, (commit, got)
    return tree


@pytest.fixture(scope="session")
def previous_deb_file(previous_release_tree, tmp_path_factory):
    """The previous release's .deb, built by its own packaging/build-deb.sh."""
    out = tmp_path_factory.mktemp("deb-previous")
    p = subprocess.run(["sh", str(previous_release_tree / "packaging/build-deb.sh"), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    debs = sorted(out.glob("syslog-ng-netconsole_%s_all.deb" % PREVIOUS_RELEASE[0]))
    assert len(debs) == 1, (debs, p.stdout)
    return debs[0]
