"""One version everywhere (issue 17): syslogng_netconsole.__version__ is the source;
setup.cfg reads it, and debian/changelog, the rpm spec (Version and its newest
%changelog entry), NEWS.md's newest section and `syslogng-netconsole --version` must
say the same. The build scripts refuse to build when the packaging disagrees."""

import pathlib
import re
import subprocess

from syslogng_netconsole import __version__

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__


def test_setup_cfg_reads_the_package_version():
    assert "version = attr: syslogng_netconsole.__version__" in (REPO / "setup.cfg").read_text()


def test_debian_changelog_agrees():
    first = (REPO / "packaging/debian/changelog").read_text().splitlines()[0]
    m = re.match(r"syslog-ng-netconsole \(([^)]+)\) ", first)
    assert m and m.group(1) == __version__, first


def test_rpm_spec_agrees():
    spec = (REPO / "packaging/rpm/syslog-ng-netconsole.spec").read_text()
    assert re.search(r"^Version:\s+(\S+)$", spec, re.M).group(1) == __version__
    entry = spec.split("%changelog\n", 1)[1].splitlines()[0]
    assert entry.startswith("* ") and entry.endswith(" - %s-1" % __version__), entry


def test_news_describes_this_version_first():
    news = (REPO / "NEWS.md").read_text()
    sections = re.findall(r"^## (\S+) ", news, re.M)
    assert sections and sections[0] == __version__, sections
    # newest first, no release twice
    keys = [tuple(int(x) for x in v.split(".")) for v in sections]
    assert keys == sorted(set(keys), reverse=True), sections


def test_cli_version():
    p = subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole", "--version"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == __version__
