"""Another Python 3 first on PATH (pyenv's, as any pyenv-run shell has it) must not
cost incidents. syslog-ng's embedded interpreter takes its standard library from
the first python3 on PATH; with pyenv's there, `import ssl` fails inside syslog-ng
("undefined symbol: _PyModule_Add"). `make run` gives syslog-ng a clean
environment; and where the environment is not ours (here the harness passes the
foreign PATH on), the alerts failing to start must not stop storage."""

import glob
import os
import signal
import subprocess
import sys

import pytest

from harness import samples
from harness.sng import REPO, Sender, Syslogng, available, free_udp_port, wait_for
from syslogng_netconsole.incidents.store import read_incidents

pytestmark = pytest.mark.syslogng
MAJOR_MINOR = "%d.%d" % sys.version_info[:2]


def foreign_python_bin():
    """A bin directory with another installation's python3 of this version."""
    for d in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s*/bin" % MAJOR_MINOR))
                    + glob.glob("/opt/conda/bin")):
        if os.access(os.path.join(d, "python3"), os.X_OK) and \
                os.path.realpath(os.path.join(d, "python3")) != os.path.realpath(sys.executable):
            return d
    return None


@pytest.fixture
def foreign():
    why = available()
    if why:
        pytest.skip(why)
    d = foreign_python_bin()
    if d is None:
        pytest.skip("no other Python %s installation (pyenv, conda) on this machine"
                    % MAJOR_MINOR)
    return d


def send_oops(port, src):
    with Sender(src, port) as tx:
        tx.send_all([(line + "\n").encode()
                     for line in samples.dmesg(samples.OOPS_LINES + samples.PANIC_LINES)])


def test_make_run_stores_incidents_with_a_foreign_python_first_on_path(foreign, tmp_path):
    port = free_udp_port()
    env = dict(os.environ, PATH=foreign + os.pathsep + os.environ["PATH"],
               RUNDIR=str(tmp_path / "run"))
    log = open(tmp_path / "make-run.log", "wb")
    proc = subprocess.Popen(["make", "-s", "run", "PORT=%d" % port,
                             "LOGDIR=%s" % (tmp_path / "logs")], cwd=str(REPO), env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text = lambda: (tmp_path / "make-run.log").read_text(errors="replace")  # noqa: E731
        wait_for(lambda: "syslog-ng starting up" in text(), 30, message="make run did not start")
        send_oops(port, "127.0.6.1")
        found = wait_for(lambda: read_incidents(tmp_path / "run" / "state"), 10,
                         message="no incident stored:\n" + text()[-3000:])
        assert found[0]["host"] == "127.0.6.1" and "nctest_init" in found[0]["title"]
        assert "trouble" not in text() and "ImportError" not in text(), text()[-3000:]
        assert "alerts cannot start" not in text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()


def test_a_channel_that_cannot_start_never_stops_storage(foreign, tmp_path):
    # the harness passes the caller's PATH on: here the foreign python breaks ssl,
    # which only the mail channel imports
    s = Syslogng(tmp_path / "sng", env={"PATH": foreign + os.pathsep + os.environ["PATH"]},
                 defines={"netconsole_alert_options":
                          "smtp_host('127.0.0.1') smtp_port('9') mail_to('ops@example.org')"})
    with s:
        err = wait_for(lambda: "channel mail cannot start" in s.stderr_text()
                       and s.stderr_text(), 10,
                       message="the foreign stdlib did not break the mail channel:\n"
                       + s.stderr_tail())
        assert "ImportError" in err and "no configured channel could start" in err
        send_oops(s.port, "127.0.6.2")
        found = wait_for(lambda: read_incidents(s.statedir), 10,
                         message="no incident stored:\n" + s.stderr_tail())
        assert found[0]["host"] == "127.0.6.2"
        # the per-host log is written too
        assert wait_for(lambda: s.log_lines("127.0.6.2"), 5)
