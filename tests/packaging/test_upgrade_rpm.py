"""`rpm -U` from the previous release's .rpm to this checkout's (issue 17), with the
scriptlets running.

The previous release is 0.1.0 = commit fdb4507 (pkgtest.PREVIOUS_RELEASE), its rpm
built by its own packaging/build-rpm.sh from `git archive fdb4507`; this checkout is
0.2.1 (its __version__). Both are the Fedora 42 build (Python 3.13). The `rpm --root` tree is a copy
of the Debian 13 chroot with syslog-ng 4.8 and Python 3.13 installed, so the
scriptlets have a /bin/sh and `syslog-ng --syntax-only` to run, and the packaged code
runs with that Python (PYTHONPATH = the rpm's site-packages, which Debian's python3
does not search by itself). systemctl is a recording stand-in (no systemd in a tree).

Checked: the old release's own code (run from its installed rpm files) writes a state
directory (make_release_files.py: stored incidents, one not yet handed to the alerts,
a parked report, an outbox with a waiting alert, pending records, a journal); `rpm -U`
runs the scriptlets and asks systemd for exactly one `try-restart syslog-ng.service`
(the new %posttrans; the old %postun sees $1=1 and does nothing), after `syslog-ng
--syntax-only` passed with the new SCL and the kept drop-in; the state directory is
byte for byte as before and the new release's installed code reads all of it (CLI
`incidents`, the outbox's waiting row, pending records, journal); the edited
%config(noreplace) drop-in and logrotate file are kept (the new drop-in as .rpmnew);
the local conf stays; `rpm -e` asks for one more restart and keeps the state
directory.

Not exercised without an EL host: dnf, EL's own syslog-ng and Python 3.9/3.12, a
real systemd restart and the restarted syslog-ng running the new code (the Debian
test does that part), SELinux labels, `sysctl -p` in %post (the tree has no /proc:
it fails there, as written, without stopping the scriptlet).
"""

import json
import os
import shutil
import subprocess

import pytest

from harness import chroot
from pkgtest import FIXTURES, PACKAGE, PREVIOUS_RELEASE, REPO
from syslogng_netconsole import __version__

pytestmark = pytest.mark.packaging

TARGET = "fc42:3.13"
SITE = "usr/lib/python3.13/site-packages"
STATE = "var/lib/syslog-ng/netconsole"
DROPIN = "etc/syslog-ng/conf.d/netconsole.conf"
LOGROTATE = "etc/logrotate.d/syslog-ng-netconsole"
LOCAL_CONF = "etc/syslog-ng/conf.d/00-netconsole-local.conf"
SYSTEMCTL = "#!/bin/sh\necho \"$*\" >> /tmp/systemctl.calls\nexit 0\n"


def sh(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert p.returncode == 0, "%s: rc %d\n%s\n%s" % (argv, p.returncode, p.stdout[-3000:],
                                                    p.stderr[-3000:])
    return p.stdout + p.stderr


def build_rpm(tree, out):
    sh(["sh", str(tree / "packaging/build-rpm.sh"), str(out), TARGET])
    found = sorted(out.glob("syslog-ng-netconsole-*.fc42.noarch.rpm"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def rpms(tmp_path_factory, previous_release_tree):
    for tool in ("rpm", "rpmbuild"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed (tests/install-deps.sh installs it)" % tool)
    old = build_rpm(previous_release_tree, tmp_path_factory.mktemp("rpm-old"))
    new = build_rpm(REPO, tmp_path_factory.mktemp("rpm-new"))
    return old, new


def test_rpm_upgrade_keeps_the_state_directory(chroot_ok, rpms, tmp_path):
    old_rpm, new_rpm = rpms
    root = chroot.clean_chroot("trixie", chroot.SYSLOGNG_4X)
    try:
        _upgrade(root, old_rpm, new_rpm, tmp_path)
    finally:
        chroot.remove_chroot(root.parent)


def _upgrade(root, old_rpm, new_rpm, tmp):
    rpm = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    env = dict(os.environ, HOME=str(tmp))
    sh(rpm + ["--initdb"], env=env)
    (root / "usr/bin/systemctl").write_text(SYSTEMCTL)
    (root / "usr/bin/systemctl").chmod(0o755)
    calls = root / "tmp/systemctl.calls"
    in_tree = {"PYTHONPATH": "/" + SITE}

    def run(argv):
        """The tree's own programs (its python3 sees the rpm's site-packages)."""
        p = chroot.run_in_chroot(root, argv, in_tree, newnet=True, capture_output=True,
                                 text=True, timeout=300)
        assert p.returncode == 0, "%s: rc %d\n%s\n%s" % (argv, p.returncode, p.stdout[-3000:],
                                                        p.stderr[-3000:])
        return p.stdout

    sh(rpm + ["-i", "--nodeps", str(old_rpm)], env=env)
    assert sh(rpm + ["-q", "--qf", "%{VERSION}", PACKAGE], env=env) == PREVIOUS_RELEASE[0]
    assert calls.read_text() == "try-restart syslog-ng.service\n"    # the install's own
    assert run(["syslogng-netconsole", "--version"]).strip() == PREVIOUS_RELEASE[0]

    # the old release's own code writes its state directory
    gen = root / "tmp/gen"
    (gen / "upgrade").mkdir(parents=True)
    shutil.copy(REPO / "tests/fixtures/upgrade/make_release_files.py", gen / "upgrade")
    for name in ("kernel-6.1-plain-bug.pcap", "kernel-6.12-release-warn.pcap",
                 "kernel-6.1-extended-oops-panic.pcap"):
        shutil.copy(FIXTURES / name, gen)
    run(["python3", "/tmp/gen/upgrade/make_release_files.py", "/" + STATE])
    state = root / STATE
    expected = json.loads((state / "expected.json").read_text())
    (state / "expected.json").unlink()
    assert expected["release"] == PREVIOUS_RELEASE[0]
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    assert sorted(before) == ["incidents.sqlite", "outbox.db", "source-6666.journal",
                              "source-6666.pending.jsonl"], sorted(before)

    # local settings: the site's conf, edited %config(noreplace) files
    (root / LOCAL_CONF).write_text('@define netconsole_port "6677"\n')
    for rel in (DROPIN, LOGROTATE):
        with open(root / rel, "a") as fh:
            fh.write("# edited by the site\n")
    mine = {rel: (root / rel).read_bytes() for rel in (LOCAL_CONF, DROPIN, LOGROTATE)}

    calls.write_text("")
    sh(rpm + ["-U", "--nodeps", str(new_rpm)], env=env)
    assert sh(rpm + ["-q", "--qf", "%{VERSION}", PACKAGE], env=env) == __version__
    # one restart request, from %posttrans, after --syntax-only passed in the tree
    assert calls.read_text() == "try-restart syslog-ng.service\n", calls.read_text()
    run(["syslog-ng", "--syntax-only"])
    assert run(["syslogng-netconsole", "--version"]).strip() == __version__
    news = (root / "usr/share/doc/syslog-ng-netconsole/NEWS.md").read_text()
    assert news.split("\n## ", 1)[1].startswith(__version__ + " ")

    assert {p.name: p.read_bytes() for p in state.iterdir()} == before
    for rel, data in mine.items():
        assert (root / rel).read_bytes() == data, rel
    assert (root / (DROPIN + ".rpmnew")).read_text() == (REPO / "conf.d/netconsole.conf").read_text()
    assert not (root / (LOGROTATE + ".rpmnew")).exists()   # unchanged by the package

    # the new release's installed code reads everything the old one wrote
    listed = [json.loads(line) for line in run(
        ["syslogng-netconsole", "incidents", "--json", "--state-dir", "/" + STATE]).splitlines()]
    assert sorted(i["id"] for i in listed) == sorted(i["id"] for i in expected["incidents"])
    summary = json.loads(run(["syslogng-netconsole", "incidents", "--summary", "--json",
                              "--state-dir", "/" + STATE]))
    assert summary["alerts_waiting"] == len(expected["unhanded"])
    probe = run(["python3", "-c", PROBE, "/" + STATE])
    got = json.loads(probe)
    assert got["version"] == __version__
    assert got["outbox"] == expected["outbox_rows"]
    assert got["pending"] == [d["text"] for d in expected["pending"]]
    assert got["journal"] == [expected["journal"]["records"], expected["journal"]["incidents"]]
    assert got["parked"] == expected["parked"]["d_netconsole_incidents#0"]

    # erase: one more restart request; the state directory stays
    calls.write_text("")
    sh(rpm + ["-e", "--nodeps", PACKAGE], env=env)
    assert calls.read_text() == "try-restart syslog-ng.service\n", calls.read_text()
    # what stays is bytecode the tree's python3 wrote while running the code (the rpm
    # ships none when built on Debian: no brp-python-bytecompile): no module is left
    left = [p for p in (root / SITE).rglob("*") if p.is_file()]
    assert left and all(p.suffix == ".pyc" and p.parent.name == "__pycache__" for p in left), left
    # (plus the -wal/-shm files SQLite makes when the CLI reads a WAL database)
    after = {p.name: p.read_bytes() for p in state.iterdir()}
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) <= {"incidents.sqlite-shm", "incidents.sqlite-wal"}, after.keys()


# what the installed release reads of the state directory (run in the tree, on a copy)
PROBE = r"""
import json, shutil, sys, tempfile
import syslogng_netconsole as pkg
from syslogng_netconsole.alerts.outbox import Outbox
from syslogng_netconsole.incidents.store import Store
from syslogng_netconsole.sng import journal, persist
d = tempfile.mkdtemp()
shutil.copytree(sys.argv[1], d + "/s")
s = d + "/s"
ob = Outbox(s + "/outbox.db")
store = Store(s)
recs, incs = journal.load(s + "/source-6666.journal", 0.0)
saved = persist.take_saved(s + "/source-6666.pending.jsonl", True, 0.0)
out = {"version": pkg.__version__,
       "outbox": [list(r) for r in ob.rows()],
       "pending": [r.text for r, _ in saved],
       "journal": [[t[1] for t, _ in recs], [i["id"] for i in incs]],
       "parked": [i.id for i in store.unpark("d_netconsole_incidents#0")]}
print(json.dumps(out))
"""
