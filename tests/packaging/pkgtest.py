"""Constants and helpers of the packaging tier (shared by its conftest and tests)."""

import json
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
# Debian 12 and 13 as the issue asks: syslog-ng 3.38 (Python 3.11), 4.8 (Python 3.13).
SUITES = ("bookworm", "trixie")
# Fetched into the image's apt cache, not installed: apt resolves the package's own
# Depends from them, offline (the install runs in a network namespace with only lo).
PREDOWNLOAD = ("python3", "python3-regex", "syslog-ng-core", "syslog-ng-mod-python")
# Installed in the image before the package: man-db, so `man syslogng-netconsole` can
# read the installed pages (and dpkg runs man-db's trigger when the package comes).
IMAGE_PACKAGES = ("man-db",)
FIXTURES = REPO / "tests" / "fixtures"
CRASH_MARKERS = ("Kernel panic - not syncing", "Oops:", "BUG:", "kernel BUG at", "WARNING:")
PACKAGE = "syslog-ng-netconsole"
# The release an upgrade starts from: 0.1.0, the last landed release before issue 17
# (no git tag yet); its packages are built from `git archive` of this commit.
PREVIOUS_RELEASE = ("0.1.0", "fdb4507")


def analyze(capture: pathlib.Path) -> list:
    """The checkout's own detector on the capture: one dict per incident."""
    p = subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole", "analyze", "--json",
                        str(capture)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def decode_records(capture: pathlib.Path) -> list:
    """The checkout's own decoder on the capture: one dict per record."""
    p = subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole", "decode", "--json",
                        str(capture)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def decode(capture: pathlib.Path) -> str:
    """The checkout's own decoder on the capture: 'HOST: line' per record line."""
    p = subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole", "decode", str(capture)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout
