"""Fixtures of the integration tier: real syslog-ng instances from tests/harness/sng.py."""

import pytest

from harness import sng as sngmod


@pytest.fixture
def start_sng(tmp_path):
    """start_sng(**kw) -> a started harness.sng.Syslogng; all are stopped at teardown and
    their stderr is printed (pytest shows it for failed tests)."""
    why = sngmod.available()
    if why:
        pytest.skip(why)
    started = []

    def start(name="sng", **kw):
        s = sngmod.Syslogng(kw.pop("tmpdir", None) or tmp_path / name, **kw)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        rc = s.stop()
        print("---- syslog-ng %s (port %d, rc %s) stderr tail:\n%s" % (s.tmp, s.port, rc, s.stderr_tail(60)))


@pytest.fixture(scope="module")
def shared_sng(tmp_path_factory):
    """One syslog-ng for a module's read-only tests (each test uses its own senders)."""
    why = sngmod.available()
    if why:
        pytest.skip(why)
    s = sngmod.Syslogng(tmp_path_factory.mktemp("shared-sng"), capture_pairs=True).start()
    yield s
    rc = s.stop()
    print("---- shared syslog-ng rc %s stderr tail:\n%s" % (rc, s.stderr_tail(60)))
