"""The README's recipe for per-host files named by host name, checked with a real
syslog-ng 3.38: `$(or ${.netconsole.hostname} ${HOST})` gives `db-31.log` for a host
that names itself and `<address>.log` for one that does not."""

import time

import pytest

from harness.sng import Syslogng, available, wait_for

pytestmark = pytest.mark.syslogng

BY_NAME = '''
destination d_byname { file("%s/$(or ${.netconsole.hostname} ${HOST}).log"
    template("${.netconsole.dmesg}\\n") create-dirs(yes)); };
log { source(s_netconsole); destination(d_byname); };
'''


def test_per_host_files_named_by_the_hosts_name(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    out = tmp_path / "byname"
    # before the drop-in: its log path is final
    sng = Syslogng(tmp_path / "sng", prelude=BY_NAME % out)
    sng.start(timeout=30)
    try:
        sng.sender("127.0.8.31").send_all([b"4,1,100,-;hello\n hostname=db-31\n"])
        sng.sender("127.0.8.32").send_all([b"[    1.000000] plain\n"])
        assert wait_for(lambda: out.exists() and len(list(out.iterdir())) == 2, 10)
        time.sleep(0.5)
    finally:
        sng.stop()
    assert sorted(p.name for p in out.iterdir()) == ["127.0.8.32.log", "db-31.log"]
    assert (out / "db-31.log").read_text() == "[    0.000100] hello\n"
