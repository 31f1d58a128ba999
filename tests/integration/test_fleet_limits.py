"""Fleet-sized limits in a real syslog-ng 3.38 with the drop-in: a low open-file limit
is named at start with its fix, and idle hosts' files are closed (time-reap)."""

import os
import resource

import pytest

from harness.ncdata import ext
from harness.sng import Syslogng, available, wait_for

pytestmark = pytest.mark.syslogng


@pytest.fixture
def sng_factory(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    started = []

    def make(name, **kw):
        s = Syslogng(tmp_path / name, **kw).start()
        started.append(s)
        return s
    yield make
    for s in started:
        s.stop()


def test_a_low_open_file_limit_is_named_at_start(sng_factory):
    s = sng_factory("low", nofile=(1024, 1024))
    text = wait_for(lambda: "open-file limit" in s.stderr_text() and s.stderr_text(), 5)
    assert "the open-file limit is 1024 (hard): with max_hosts(10000)" in text
    assert "LimitNOFILE=10256" in text
    # the collector still works: only files beyond the limit would fail
    tx = s.sender("127.0.0.81")
    tx.send(ext(1, "still collecting"))
    assert wait_for(lambda: s.log_lines("127.0.0.81"), 5) == ["[    1.001000] still collecting"]
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 10256:
        ok = sng_factory("ok")
        assert "open-file limit" not in ok.stderr_text()


def _open_paths(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def test_an_idle_hosts_file_is_closed_and_reopened(sng_factory):
    s = sng_factory("reap", defines={"netconsole_time_reap": "1"})
    tx = s.sender("127.0.0.82")
    tx.send(ext(1, "before idle"))
    path = str(s.log_path("127.0.0.82"))
    wait_for(lambda: s.log_lines("127.0.0.82"), 5)
    assert path in _open_paths(s.pid)
    wait_for(lambda: path not in _open_paths(s.pid), 10, message="file not reaped")
    tx.send(ext(2, "after idle"))
    assert wait_for(lambda: len(s.log_lines("127.0.0.82")) == 2 and s.log_lines("127.0.0.82"),
                    5) == ["[    1.001000] before idle", "[    1.002000] after idle"]
