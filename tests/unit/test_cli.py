"""`syslogng-netconsole decode` run as a real subprocess on generated captures."""

import json
import pathlib
import struct
import subprocess
import unicodedata

import pytest

from syslogng_netconsole.ingest.capture import PcapWriter

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
PYTHON = "/usr/bin/python3"
H1, H2, COL = "10.0.0.5", "10.0.0.6", "10.0.0.1"


def cli(*args, input_=None):
    return subprocess.run([PYTHON, "-m", "syslogng_netconsole"] + [str(a) for a in args],
                          cwd=str(REPO), capture_output=True, timeout=60, input=input_)


def decode(*args):
    res = cli("decode", *args)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode().splitlines(), res.stderr.decode()


def decode_json(*args):
    lines, err = decode("--json", *args)
    return [json.loads(ln) for ln in lines], err


def capture(path, items):
    """items: (ts, src, payload) or (ts, src, sport, dport, payload)"""
    with PcapWriter(str(path)) as w:
        for it in items:
            if len(it) == 3:
                ts, src, payload = it
                sport, dport = 6665, 6666
            else:
                ts, src, sport, dport, payload = it
            dst = "2001:db8::1" if ":" in src else COL
            w.write(ts, src, sport, dst, dport, payload)
    return path


def frags(header, body, cut):
    """ncfrag datagrams of ``body`` cut at the offsets in ``cut``."""
    bounds = [0] + list(cut) + [len(body)]
    return [b"%s,ncfrag=%d/%d;%s" % (header, a, len(body), body[a:b])
            for a, b in zip(bounds, bounds[1:])]


def test_two_hosts_interleaved_plain_and_extended(tmp_path):
    cap = capture(tmp_path / "c.pcap", [
        (10.0, H1, b"6,100,5000000,-;eth0: link up\n"),
        (10.1, H2, b"[    7.100000] usb 1-1: new device\n"),
        (10.2, H1, b"4,101,5100000,-;disk full\n"),
        (10.3, H2, b"[    7.200000] sda: sda1\n"),
    ])
    lines, err = decode(cap)
    assert [ln for ln in lines if ln.startswith(H1 + ": ")] == [
        "10.0.0.5: [    5.000000] eth0: link up",
        "10.0.0.5: [    5.100000] disk full"]
    assert [ln for ln in lines if ln.startswith(H2 + ": ")] == [
        "10.0.0.6: [    7.100000] usb 1-1: new device",
        "10.0.0.6: [    7.200000] sda: sda1"]
    assert len(lines) == 4 and err == ""


def test_extended_fragments_out_of_order_with_dictionary(tmp_path):
    body = b"A" * 950 + b"\\x0asecond line\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n" \
        b" cpu=3\n role=db\n"
    pieces = frags(b"6,2041,98765432,-", body, [500, 900])
    cap = capture(tmp_path / "f.pcap", [(1.0, H1, pieces[2]), (1.001, H1, pieces[0]),
                                        (1.002, H1, pieces[0]), (1.003, H1, pieces[1])])
    [rec], _ = decode_json(cap)
    assert rec["host"] == H1 and rec["text"] == "A" * 950 + "\nsecond line"
    assert (rec["seq"], rec["ts_us"], rec["level"], rec["facility"], rec["severity"]) == \
        (2041, 98765432, 6, 0, 6)
    assert (rec["fragments"], rec["incomplete"], rec["format"]) == (3, False, "extended")
    assert (rec["subsystem"], rec["device"], rec["cpu"], rec["userdata.role"]) == \
        ("pci", "+pci:0000:00:19.0", "3", "db")
    assert rec["src_port"] == 6665 and rec["dst_port"] == 6666
    assert rec["dmesg"] == "[   98.765432] " + "A" * 950 + "\n[   98.765432] second line"
    # every name-value pair the source posts is there
    assert set(rec) >= {"host", "text", "format", "seq", "ts_us", "level", "facility",
                        "severity", "flags", "caller", "release", "boot", "lost_before",
                        "fragments", "incomplete", "continued", "recv_time", "dmesg"}
    lines, _ = decode(cap)
    # a multi-line record prints one line per text line, each with the prefix
    assert lines == ["[   98.765432] " + "A" * 950,
                     "[   98.765432] second line"]


def test_fragment_that_never_arrives_is_flagged_and_reported(tmp_path):
    body = b"B" * 1500 + b"\n"
    pieces = frags(b"3,7,1000,-", body, [960])
    cap = capture(tmp_path / "lost.pcap", [(1.0, H1, pieces[0]),
                                           (9.0, H1, b"6,8,2000,-;after\n")])
    recs, err = decode_json(cap)
    assert [(r["seq"], r["incomplete"]) for r in recs] == [(7, True), (8, False)]
    assert recs[0]["text"].startswith("B" * 960)
    assert "fragments_incomplete=1" in err      # nothing lost silently


@pytest.mark.parametrize("gap,joined", [(0.05, True), (30.0, False)])
def test_capture_time_drives_the_timeouts(tmp_path, gap, joined):
    # a plain line cut at 1000 bytes: its rest within the timeout joins it;
    # arriving long after (as captured), the first part came out on its own
    first = b"[   12.000000] " + b"C" * (1000 - 15)
    cap = capture(tmp_path / "cut.pcap", [(5.0, H1, first), (5.0 + gap, H1, b"TAIL\n")])
    recs, _ = decode_json(cap)
    if joined:
        assert [r["text"] for r in recs] == ["C" * 985 + "TAIL"]
        assert recs[0]["fragments"] == 2 and not recs[0]["incomplete"]
    else:
        assert len(recs) == 2 and recs[0]["text"] == "C" * 985 and recs[0]["incomplete"]
        assert "TAIL" in recs[1]["text"]


def test_same_host_plain_and_extended_are_labelled(tmp_path):
    cap = capture(tmp_path / "both.pcap", [
        (1.0, H1, 6665, 6666, b"6,1,1000000,-;from extended\n"),
        (1.1, H1, 6665, 6666, b"[    1.000000] from plain\n"),
        (1.2, H2, 6665, 6667, b"[    2.000000] other port\n"),
        (1.3, H2, 6665, 6666, b"[    3.000000] main port\n"),
    ])
    lines, _ = decode(cap)
    assert sorted(lines) == sorted([
        "10.0.0.5 (extended): [    1.000000] from extended",
        "10.0.0.5 (plain): [    1.000000] from plain",
        "10.0.0.6 ->6667: [    2.000000] other port",
        "10.0.0.6 ->6666: [    3.000000] main port"])
    only, _ = decode("--port", "6667", cap)
    assert only == ["[    2.000000] other port"]


def test_ipv6_sender_and_control_characters(tmp_path):
    cap = capture(tmp_path / "v6.pcap", [
        (1.0, "2001:db8::7", b"6,1,1,-;bell\\x07 esc\\x1b[31m tab\\x09end caf\\xc3\\xa9"
                             b" \\xe2\\x80\\xaegnp.exe\n")])
    lines, _ = decode(cap)
    # control characters would drive the terminal, a bidi override would disguise the
    # line: printed escaped; tab and UTF-8 kept
    assert lines == ["[    0.000001] bell\\x07 esc\\x1b[31m tab\tend caf\u00e9"
                     " \\u202egnp.exe"]
    [rec], _ = decode_json(cap)
    assert rec["host"] == "2001:db8::7"


def pcapng(frames_by_iface):
    """A minimal little-endian pcapng with one Ethernet interface per entry."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + \
            struct.pack("<I", 12 + len(body))
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for _ in frames_by_iface:
        out += block(1, struct.pack("<HHI", 1, 0, 0))
    for iface, (ts, frame) in frames_by_iface:
        ticks = int(ts * 1e6)
        out += block(6, struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF,
                                    len(frame), len(frame)) + frame)
    return out


def test_pcapng_input_and_several_files_in_order(tmp_path):
    import io
    raw = io.BytesIO()
    PcapWriter(raw).write(2.0, H1, 6665, COL, 6666, b"6,2,2,-;from pcapng\n")
    frame = raw.getvalue()[24 + 16:]
    ng = tmp_path / "a.pcapng"
    ng.write_bytes(pcapng([(0, (2.0, frame))]))
    first = capture(tmp_path / "a0.pcap", [(1.0, H1, b"6,1,1,-;from pcap\n")])
    lines, _ = decode(first, ng)
    assert lines == ["[    0.000001] from pcap",
                     "[    0.000002] from pcapng"]
    # stdin works too
    res = cli("decode", "-", input_=ng.read_bytes())
    assert res.returncode == 0 and res.stdout.decode() == \
        "[    0.000002] from pcapng\n"


def test_unreadable_and_truncated_inputs(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 64)
    res = cli("decode", junk)
    assert res.returncode == 1
    assert b"junk.pcap: offset 0: not a pcap or pcapng capture" in res.stderr
    assert b"Traceback" not in res.stderr
    res = cli("decode", tmp_path / "nope.pcap")
    assert res.returncode == 1 and b"nope.pcap: cannot read" in res.stderr
    cap = capture(tmp_path / "t.pcap", [(1.0, H1, b"6,1,1,-;kept\n"),
                                        (2.0, H1, b"6,2,2,-;cut off\n")])
    data = cap.read_bytes()
    cap.write_bytes(data[:-5])
    res = cli("decode", cap)
    assert res.returncode == 0
    assert res.stdout.decode() == "[    0.000001] kept\n"
    assert b"warning: " in res.stderr and b"t.pcap: offset" in res.stderr
    assert b"truncated_file=1" in res.stderr


def test_help_lists_both_commands():
    res = cli("--help")
    assert res.returncode == 0
    assert b"decode" in res.stdout and b"replay" in res.stdout


def test_random_payloads_never_break_decode(tmp_path):
    import random
    rnd = random.Random(2024)
    shapes = [lambda: bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 1200))),
              lambda: b"6,%d,%d,%s;%s\n" % (rnd.randrange(50), rnd.randrange(10**7),
                                            rnd.choice([b"-", b"c", b"+", b"x"]),
                                            bytes(rnd.randrange(256) for _ in range(40))),
              lambda: b"4,9,1,-,ncfrag=%d/%d;zz" % (rnd.randrange(-5, 3000),
                                                   rnd.randrange(-5, 3000)),
              lambda: b"[%5d.%06d] %s" % (rnd.randrange(99), rnd.randrange(10**6),
                                          bytes(rnd.randrange(256) for _ in range(30)))]
    items = [(1.0 + i * 0.01, rnd.choice([H1, H2, "2001:db8::9"]), rnd.choice(shapes)())
             for i in range(300)]
    cap = capture(tmp_path / "rnd.pcap", items)
    recs, _ = decode_json(cap)
    assert recs and {r["host"] for r in recs} <= {H1, H2, "2001:db8::9"}
    lines, _ = decode(cap)
    assert lines and all(ln.split(": ", 1)[0] in (H1, H2, "2001:db8::9") or
                         ln.split(" ", 1)[0] in (H1, H2, "2001:db8::9") for ln in lines)
    # no control character (but tab) and no bidi override reaches the terminal
    assert not [ch for ln in lines for ch in ln if ch != "\t" and (
        unicodedata.category(ch) == "Cc" or "\u202a" <= ch <= "\u202e"
        or "\u2066" <= ch <= "\u2069")]


def test_output_into_a_closed_pipe_is_quiet(tmp_path):
    cap = capture(tmp_path / "many.pcap", [(1.0 + i * 0.001, H1, b"6,%d,%d,-;%s\n"
                                            % (i + 1, i, b"m" * 200)) for i in range(2000)])
    proc = subprocess.Popen([PYTHON, "-m", "syslogng_netconsole", "decode", str(cap)],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()             # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert first.startswith(b"[    0.000000] mmm")
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_replay_helpers():
    from syslogng_netconsole.cli.replay import loopback_address, parse_target
    assert [loopback_address(i) for i in (0, 1, 252, 253, 254)] == \
        ["127.0.0.2", "127.0.0.3", "127.0.0.254", "127.0.1.1", "127.0.1.2"]
    assert loopback_address(254 * 300) == "127.1.44.2"    # block 300 = 1.44
    from syslogng_netconsole.cli.replay import loopback_index
    for i in (0, 1, 252, 253, 254, 254 * 300, 100000):
        assert loopback_index(loopback_address(i)) == i
    assert loopback_address(loopback_index("127.0.1.2") + 1) == "127.0.1.3"
    for bad in ("127.0.0.1", "127.0.1.0", "127.0.1.255", "10.0.0.2", "::1", "x"):
        with pytest.raises(ValueError, match="source-base"):
            loopback_index(bad)
    assert parse_target("127.0.0.1:6666") == ("127.0.0.1", 6666)
    assert parse_target("[::1]:6666") == ("::1", 6666)
    assert parse_target("collector.example:514") == ("collector.example", 514)
    for bad in ("127.0.0.1", ":6666", "127.0.0.1:x", "127.0.0.1:70000", "::1:6666"):
        with pytest.raises(ValueError):
            parse_target(bad)
