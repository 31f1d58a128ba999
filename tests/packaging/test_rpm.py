"""The noarch .rpm, built with rpmbuild on Debian for EL9, EL10 and Fedora: rpmlint
reports no errors (signed with a throwaway key, as a release pipeline signs), it
installs into an `rpm --root` tree with --nodeps, its files sit where EL's syslog-ng
looks (packaging/rpm/README.md cites each path), the installed command runs, its manual
pages are there (gzipped, as documentation) and man-db reads them, and an erase leaves no
conf.d file behind that would name a module that is gone."""

import ast
import gzip
import os
import re
import shutil
import subprocess

import pytest

from pkgtest import REPO

pytestmark = pytest.mark.packaging

# dist -> the target's python3 (EL9 3.9, EL10 3.12, Fedora 42 3.13)
TARGETS = {"el9": "3.9", "el10": "3.12", "fc42": "3.13"}
SCL = "usr/share/syslog-ng/include/scl/netconsole/netconsole.conf"
DROPIN = "etc/syslog-ng/conf.d/netconsole.conf"
DIRS = ("var/lib/syslog-ng/netconsole", "var/log/netconsole")
MAN_PAGES = ("usr/share/man/man1/syslogng-netconsole.1.gz",
             "usr/share/man/man5/syslogng-netconsole.conf.5.gz")


def sh(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, "%s: rc %d\n%s\n%s" % (argv, p.returncode, p.stdout, p.stderr)
    return p.stdout


@pytest.fixture(scope="module")
def rpm_tools():
    for tool in ("rpmbuild", "rpmlint", "rpmsign", "gpg"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed (tests/install-deps.sh installs it)" % tool)


@pytest.fixture(scope="module")
def signed_rpms(rpm_tools, tmp_path_factory):
    """{dist: path} built by packaging/build-rpm.sh and signed with a throwaway key whose
    public half is in a private rpm database ($HOME/.rpmdb of `home`)."""
    tmp = tmp_path_factory.mktemp("rpm")
    gnupg, home, out = tmp / "gnupg", tmp / "home", tmp / "out"
    gnupg.mkdir(mode=0o700)
    home.mkdir()
    env = dict(os.environ, GNUPGHOME=str(gnupg), HOME=str(home))
    sh(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
        "netconsole test <netconsole-test@example.org>", "rsa2048", "sign", "never"], env=env)
    (home / "key.asc").write_text(sh(["gpg", "--armor", "--export",
                                      "netconsole-test@example.org"], env=env))
    sh(["rpm", "--import", str(home / "key.asc")], env=env)
    targets = ["%s:%s" % kv for kv in TARGETS.items()]
    sh(["sh", str(REPO / "packaging/build-rpm.sh"), str(out)] + targets,
       env=dict(env, RPM_GPG_NAME="netconsole-test@example.org"))
    rpms = {}
    for dist in TARGETS:
        found = sorted(out.glob("syslog-ng-netconsole-*.%s.noarch.rpm" % dist))
        assert len(found) == 1, (dist, sorted(out.iterdir()))
        rpms[dist] = found[0]
    return rpms, env


def test_rpmlint_reports_no_errors(signed_rpms):
    rpms, env = signed_rpms
    for dist, rpm in rpms.items():
        assert "signatures OK" in sh(["rpm", "-K", str(rpm)], env=env)
        p = subprocess.run(["rpmlint", str(rpm)], capture_output=True, text=True, env=env,
                           timeout=300)
        summary = re.search(r"(\d+) errors, (\d+) warnings", p.stdout)
        assert summary, p.stdout + p.stderr
        assert summary.group(1) == "0", p.stdout
        assert ": E: " not in p.stdout, p.stdout


def test_metadata(signed_rpms):
    rpms, env = signed_rpms
    for dist, rpm in rpms.items():
        arch = sh(["rpm", "-qp", "--qf", "%{ARCH}", str(rpm)], env=env)
        assert arch == "noarch"
        requires = sh(["rpm", "-qpR", str(rpm)], env=env).split("\n")
        # the syslog-ng Python plugin package of EL/Fedora, and the target's Python
        for need in ("syslog-ng-python", "python(abi) = %s" % TARGETS[dist]):
            assert need in requires, (dist, requires)
        assert any(r.startswith("syslog-ng ") for r in requires), requires
        assert "python%sdist(regex)" % TARGETS[dist] in requires, requires
        assert "logrotate" in requires, requires


@pytest.mark.parametrize("dist", sorted(TARGETS))
def test_installs_into_rpm_root(signed_rpms, tmp_path, dist):
    rpms, env = signed_rpms
    root = tmp_path / "root"
    rpm = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    sh(rpm + ["--initdb"], env=env)
    # no scriptlets: the tree has no /bin/sh (they are checked in the Debian chroots'
    # counterpart; here the layout is under test)
    sh(rpm + ["-ivh", "--nodeps", "--noscripts", str(rpms[dist])], env=env)
    sh(rpm + ["-V", "--nodeps", "syslog-ng-netconsole"], env=env)

    site = root / ("usr/lib/python%s/site-packages" % TARGETS[dist])
    assert (site / "syslogng_netconsole/__init__.py").is_file()
    assert (site / "syslogng_netconsole/sng/source.py").is_file()
    assert (site / "syslogng_netconsole/sng/dest.py").is_file()
    assert list(site.glob("syslogng_netconsole-*.dist-info/METADATA"))
    assert (root / SCL).read_text() == (REPO / "syslogng_netconsole/scl/netconsole.conf").read_text()
    assert (root / DROPIN).read_text() == (REPO / "conf.d/netconsole.conf").read_text()
    for d in DIRS:
        assert (root / d).is_dir(), d
    script = root / "usr/bin/syslogng-netconsole"
    assert script.read_text().startswith("#!/usr/bin/python3\n")
    configs = sh(rpm + ["-qc", "syslog-ng-netconsole"], env=env).split()
    assert sorted(configs) == sorted(["/" + DROPIN, "/etc/logrotate.d/syslog-ng-netconsole"])

    # the installed tree runs: its command with the host's python3 on that site dir
    out = sh(["/usr/bin/python3", str(script), "--version"],
             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)})
    assert out.strip() == re.search(r'__version__ = "(.*)"',
                                    (REPO / "syslogng_netconsole/__init__.py").read_text()).group(1)

    # the manual pages: docs/man/ gzipped, marked as documentation, readable by man-db
    docs = sh(rpm + ["-qd", "syslog-ng-netconsole"], env=env).split()
    for rel in MAN_PAGES:
        page = root / rel
        source = REPO / "docs/man" / page.name[:-len(".gz")]
        assert gzip.decompress(page.read_bytes()) == source.read_bytes(), rel
        assert "/" + rel in docs, (rel, docs)
        if shutil.which("man"):
            p = subprocess.run(["man", "--warnings", "-P", "cat", "-l", str(page)],
                               capture_output=True, text=True, timeout=60,
                               env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MANWIDTH": "80"})
            assert p.returncode == 0 and p.stderr == "", p.stderr
            assert re.search(r"^NAME\n +%s +- " % re.escape(source.stem), p.stdout, re.M), rel

    # erase: an unmodified conf.d file goes; an edited one stays only as .rpmsave,
    # which syslog-ng's "conf.d/*.conf" include does not match
    sh(rpm + ["-e", "--nodeps", "--noscripts", "syslog-ng-netconsole"], env=env)
    assert not (root / DROPIN).exists() and not (root / SCL).exists()
    assert not any((root / rel).exists() for rel in MAN_PAGES)
    sh(rpm + ["-ivh", "--nodeps", "--noscripts", str(rpms[dist])], env=env)
    with open(root / DROPIN, "a") as fh:
        fh.write("# edited by the site\n")
    sh(rpm + ["-e", "--nodeps", "--noscripts", "syslog-ng-netconsole"], env=env)
    left = sorted(p.name for p in (root / "etc/syslog-ng/conf.d").iterdir())
    assert left == ["netconsole.conf.rpmsave"], left
    assert not (root / "etc/logrotate.d/syslog-ng-netconsole").exists()


def test_el9_payload_parses_as_python_3_9(signed_rpms, tmp_path):
    """EL9's syslog-ng embeds Python 3.9: every module of its rpm must at least parse
    with the 3.9 grammar (ast feature_version; it catches e.g. match statements, not
    runtime-only differences)."""
    rpms, env = signed_rpms
    rpm2cpio = subprocess.run(["rpm2cpio", str(rpms["el9"])], capture_output=True, check=True,
                              timeout=120)
    subprocess.run(["cpio", "-idm", "--quiet"], input=rpm2cpio.stdout, cwd=tmp_path, check=True,
                   timeout=120)
    sources = sorted(tmp_path.glob("usr/lib/python3.9/site-packages/syslogng_netconsole/**/*.py"))
    assert len(sources) > 10, sources
    for src in sources:
        ast.parse(src.read_text(), filename=str(src), feature_version=(3, 9))
