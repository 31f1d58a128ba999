"""The sender self-test record (hosts/selftest.py) and `sender-test`, which writes it:
to a file, and as root to this machine's real /dev/kmsg, read back from the kernel's
own log."""

import errno
import json
import os
import pathlib
import subprocess

import pytest

from syslogng_netconsole.hosts import selftest

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_record_and_parse_round_trip():
    text = selftest.record("a1b2c3d4e5f6", "db-17", 1796412013.9)
    assert text == "netconsole-selftest: id=a1b2c3d4e5f6 host=db-17 time=1796412013"
    assert text.startswith(selftest.MARKER)
    assert selftest.parse(text) == {"id": "a1b2c3d4e5f6", "host": "db-17",
                                    "time": 1796412013}
    assert selftest.parse(("  " + text + "\n").encode()) == selftest.parse(text)
    assert selftest.parse(selftest.record("a1b2c3d4", None, 5)) == \
        {"id": "a1b2c3d4", "host": None, "time": 5}
    assert selftest.kmsg_line(text) == b"<5>" + text.encode() + b"\n"


@pytest.mark.parametrize("text", [
    "netconsole selftest: netcons_gtJHM",                  # the kernel's own selftest
    "hello netconsole-selftest: id=a1b2c3d4e5f6",          # not at the start
    "netconsole-selftest: host=db-17 time=1",              # no id
    "netconsole-selftest: id=short",                       # id too short
    "netconsole-selftest: id=a1b2c3d4e5f6;rm",             # id not alphanumeric
    "netconsole-selftest: id=a1b2c3d4e5f6 id=b1b2c3d4e5f6",  # a key twice
    "netconsole-selftest: id=a1b2c3d4e5f6 host=db 17",      # a word without =
    "netconsole-selftest: id=a1b2c3d4e5f6 host=(none)",
    "netconsole-selftest: id=a1b2c3d4e5f6 time=soon",
    "netconsole-selftest: id=a1b2c3d4e5f6 " + "x=y " * 80,  # too long
    None, 42,
])
def test_parse_refuses_anything_else(text):
    assert selftest.parse(text) is None


@pytest.mark.parametrize("args", [("short", "db", 1), ("a1b2c3d4", "db 17", 1)])
def test_record_refuses_what_parse_would(args):
    with pytest.raises(ValueError):
        selftest.record(*args)


def cli(*args):
    return subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole"] + list(args),
                          cwd=str(REPO), capture_output=True, text=True, timeout=60)


def test_sender_test_writes_one_record_and_says_what_to_look_for(tmp_path):
    out = tmp_path / "kmsg"
    res = cli("sender-test", "--kmsg", str(out), "--hostname", "web-3", "--id",
              "feedc0de42")
    assert res.returncode == 0, res.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"<5>netconsole-selftest: id=feedc0de42 host=web-3 time=")
    assert raw.count(b"\n") == 1
    got = selftest.parse(raw[3:])
    assert got["id"] == "feedc0de42" and got["host"] == "web-3"
    assert "grep -r 'netconsole-selftest: id=feedc0de42' /var/log/netconsole/" in res.stdout
    js = json.loads(cli("sender-test", "--kmsg", str(out), "--format", "json",
                        "--level", "3").stdout)
    assert selftest.parse(js["text"])["id"] == js["id"] and js["level"] == 3
    assert out.read_bytes().splitlines()[1].startswith(b"<3>netconsole-selftest: id=")


def test_sender_test_bad_arguments_and_unwritable_target(tmp_path):
    assert cli("sender-test", "--kmsg", str(tmp_path / "k"), "--level", "9").returncode == 2
    assert cli("sender-test", "--kmsg", str(tmp_path / "k"), "--id", "x").returncode == 2
    res = cli("sender-test", "--kmsg", str(tmp_path / "no" / "such" / "dir"))
    assert res.returncode == 1 and "cannot write" in res.stderr


def _kmsg_records(fd):
    out = []
    while True:
        try:
            out.append(os.read(fd, 8192).decode(errors="replace"))
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return out
            if exc.errno == errno.EPIPE:         # overwritten records: go on
                continue
            raise


def test_sender_test_record_reaches_the_kernel_log():
    """As root, into this machine's real /dev/kmsg; read back from the kernel's log:
    one record, user facility at the notice level (13), the text parse() takes."""
    if os.geteuid() != 0:
        pytest.skip("writing /dev/kmsg needs root (CI runs as root)")
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        res = cli("sender-test", "--hostname", "ci-sender", "--id", "c0ffee0123")
        assert res.returncode == 0, res.stderr
        recs = [r for r in _kmsg_records(fd) if "netconsole-selftest: id=c0ffee0123" in r]
    finally:
        os.close(fd)
    assert len(recs) == 1, recs
    header, _, text = recs[0].partition(";")
    assert header.split(",")[0] == "13"
    assert selftest.parse(text)["host"] == "ci-sender"
