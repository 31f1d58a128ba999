"""wire.py: table-driven from netconsole-wire.md sections 2, 3.4, 4.2 and 10."""

import pytest

from syslogng_netconsole.ingest import console, wire
from syslogng_netconsole.ingest.wire import ExtPiece

# --- extended headers (netconsole-wire.md 3.4) ------------------------------
# payload -> (release, level, seq, ts_us, flag, caller, frag_off, frag_total, body)
EXT_HEADERS = [
    (b"6,416,1758426,-;netconsole: network logging started\n",
     (None, 6, 416, 1758426, "-", None, None, None,
      b"netconsole: network logging started\n")),
    (b"6,339,5140900,-;e1000e 0000:00:19.0 eth0: NIC Link is Up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n",
     (None, 6, 339, 5140900, "-", None, None, None,
      b"e1000e 0000:00:19.0 eth0: NIC Link is Up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n")),
    (b"4,1234,987654321,-,caller=T123;foo\n",
     (None, 4, 1234, 987654321, "-", "T123", None, None, b"foo\n")),
    (b"4,1235,987654400,c,caller=T123; bar\n",
     (None, 4, 1235, 987654400, "c", "T123", None, None, b" bar\n")),
    (b"4,77,1000,-;path a\\x5cb caf\\xc3\\xa9\n",
     (None, 4, 77, 1000, "-", None, None, None, b"path a\\x5cb caf\\xc3\\xa9\n")),
    (b"12,607,22085407756,-;This is a message\n foo=bar\n qux=baz\n",
     (None, 12, 607, 22085407756, "-", None, None, None, b"This is a message\n foo=bar\n qux=baz\n")),
    (b"6.4.0,6,444,501151268,-;netconsole: network logging started\n",
     ("6.4.0", 6, 444, 501151268, "-", None, None, None, b"netconsole: network logging started\n")),
    (b"6.11.1-0_fbk0_rc13_509_g30d75cea12f7,13,1822,115075213798,-;netconsole selftest: netcons_gtJHM\n key=value\n",
     ("6.11.1-0_fbk0_rc13_509_g30d75cea12f7", 13, 1822, 115075213798, "-", None, None, None,
      b"netconsole selftest: netcons_gtJHM\n key=value\n")),
    (b"13,434,54928466,-;This is message #1\n msgid=1\n",
     (None, 13, 434, 54928466, "-", None, None, None, b"This is message #1\n msgid=1\n")),
    # 4.2 worked examples
    (b"6,416,1758426,-,ncfrag=0/31;the first chunk,",
     (None, 6, 416, 1758426, "-", None, 0, 31, b"the first chunk,")),
    (b"6,416,1758426,-,ncfrag=16/31; the 2nd chunk.",
     (None, 6, 416, 1758426, "-", None, 16, 31, b" the 2nd chunk.")),
    (b"6.12.0,4,1023,52430118,-,ncfrag=0/1530;" + b"y" * 961,
     ("6.12.0", 4, 1023, 52430118, "-", None, 0, 1530, b"y" * 961)),
    (b"6,2041,98765432,-,ncfrag=968/1002;" + b"x" * 12 + b"\n host=web01\n role=db\n",
     (None, 6, 2041, 98765432, "-", None, 968, 1002, b"x" * 12 + b"\n host=web01\n role=db\n")),
    # 10.11: caller before ncfrag, unknown future fields ignored, C callers
    (b"4,5,6,-,caller=C3,ncfrag=0/3;abc",
     (None, 4, 5, 6, "-", "C3", 0, 3, b"abc")),
    (b"4,5,6,+,future=1,other;x\n", (None, 4, 5, 6, "+", None, None, None, b"x\n")),
    # 10.14: empty text; text containing ; = ,
    (b"6,1,2,-;\n", (None, 6, 1, 2, "-", None, None, None, b"\n")),
    (b"6,1,2,-;a;b=c,d\n", (None, 6, 1, 2, "-", None, None, None, b"a;b=c,d\n")),
    (b"30,9,10,-;systemd[1]: started\n", (None, 30, 9, 10, "-", None, None, None,
                                         b"systemd[1]: started\n")),
]


@pytest.mark.parametrize("payload,want", EXT_HEADERS)
def test_extended_header(payload, want):
    p = wire.parse_extended(payload)
    assert isinstance(p, ExtPiece)
    got = (p.release, p.level, p.seq, p.ts_us, p.flag, p.caller, p.frag_off, p.frag_total, p.body)
    assert got == want


# --- bad ncfrag / header: a reason, never an exception (section 10.6) ---------
BAD = [
    (b"6,1,2,-,ncfrag=5/5;x", "bad_ncfrag"),          # off >= total
    (b"6,1,2,-,ncfrag=3/5;xyz", "bad_ncfrag"),        # off + len > total
    (b"6,1,2,-,ncfrag=0/0;", "bad_ncfrag"),
    (b"6,1,2,-,ncfrag=0/4,ncfrag=0/4;abcd", "bad_ncfrag"),   # repeated
    (b"6,1,2,-,ncfrag=a/4;abcd", "bad_ncfrag"),
    (b"6,1,2,-,ncfrag=0;abcd", "bad_ncfrag"),
    (b"6,1,2,-,ncfrag=-1/4;abcd", "bad_ncfrag"),
    (b"6,1,2,-,ncfrag=0/99999999999;abcd", "bad_ncfrag"),
    (b"6,99999999999999999999,2,-;x\n", "bad_header"),
]


@pytest.mark.parametrize("payload,reason", BAD)
def test_bad_extended(payload, reason):
    assert wire.parse_extended(payload) == reason


# Not extended: plain lines and garbage that only looks close.
NOT_EXT = [
    b"[   12.345678] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex\n",
    b"<6>[   12.345678] e1000e: eth0 NIC Link is Up\n",
    b"** 3 printk messages dropped **\n[  101.000001] next message\n",
    b"6,1,2,x;bad flag\n",
    b"6,1,-;too few\n",
    b"6,1,2,-no semicolon\n",
    b"hello, world; 1,2,3,-;x\n",
    b"",
]


@pytest.mark.parametrize("payload", NOT_EXT)
def test_not_extended(payload):
    assert wire.parse_extended(payload) is None


# --- unescaping (3.2, 10.7, 10.10) --------------------------------------------
UNESCAPE = [
    (b"path a\\x5cb caf\\xc3\\xa9", b"path a\\b caf\xc3\xa9"),
    (b"a\\x0ab", b"a\nb"),
    (b"\\x5cx41", b"\\x41"),           # escaped backslash stays literal: one pass only
    (b"no escapes", b"no escapes"),
    (b"bad \\xZZ and \\x4", b"bad \\xZZ and \\x4"),
    (b"\\xFF\\xfe", b"\xff\xfe"),
    (b"\\x", b"\\x"),
]


@pytest.mark.parametrize("raw,want", UNESCAPE)
def test_unescape(raw, want):
    assert wire.unescape(raw) == want


TO_TEXT = [
    (b"caf\xc3\xa9", "caf\u00e9"),
    (b"bad \xff byte", "bad \\xff byte"),       # invalid UTF-8 kept visibly
    (b"nul\x00here", "nul\\x00here"),           # control bytes visible, not dropped
    (b"esc\x1b[0m", "esc\\x1b[0m"),
    (b"tab\tand\nnewline", "tab\tand\nnewline"),
    (b"\x7f", "\\x7f"),
]


@pytest.mark.parametrize("raw,want", TO_TEXT)
def test_to_text(raw, want):
    assert wire.to_text(raw) == want


# --- extended body: text + dictionary/userdata/sysdata (3.2, 5, 10.14) -------
BODIES = [
    (b"netconsole: network logging started\n", "netconsole: network logging started", {}),
    (b"e1000e 0000:00:19.0 eth0: NIC Link is Up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n",
     "e1000e 0000:00:19.0 eth0: NIC Link is Up",
     {"subsystem": "pci", "device": "+pci:0000:00:19.0"}),
    (b"path a\\x5cb caf\\xc3\\xa9\n", "path a\\b caf\u00e9", {}),
    (b"This is a message\n foo=bar\n qux=baz\n", "This is a message",
     {"userdata.foo": "bar", "userdata.qux": "baz"}),
    (b"This is message #1\n msgid=1\n", "This is message #1", {"msgid": "1"}),
    (b"m\n cpu=1\n cpu=42\n", "m", {"cpu": "42", "userdata.cpu": "1"}),
    (b"m\n cpu=3\n taskname=kworker/0:1\n release=6.17.0\n msgid=7\n", "m",
     {"cpu": "3", "taskname": "kworker/0:1", "release": "6.17.0", "msgid": "7"}),
    # taskname is raw (not escaped): odd bytes kept visibly, \x sequences not decoded
    (b"m\n taskname=a\xffb\\x41\n", "m", {"taskname": "a\\xffb\\x41"}),
    (b"multi\\x0aline\\x0atext\n", "multi\nline\ntext", {}),
    (b"\n", "", {}),
    (b"", "", {}),
    (b"no newline at end", "no newline at end", {}),
    (b"x\n DEVICE=b8:0\n SUBSYSTEM=blo\\x5cck\n", "x", {"device": "b8:0", "subsystem": "blo\\ck"}),
    (b"x\n we ird/key=v\n", "x", {"userdata.we_ird_key": "v"}),
    (b"x\nstray line\n", "x\nstray line", {}),
    (b"x\n a=b=c\n", "x", {"userdata.a": "b=c"}),
]


@pytest.mark.parametrize("body,text,fields", BODIES)
def test_ext_body(body, text, fields):
    assert wire.decode_ext_body(body) == (text, fields)


# --- plain lines (section 2) -------------------------------------------------
# line -> (text, level, ts_us, caller, dropped)
PLAIN = [
    (b"[   12.345678] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex",
     ("e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex", None, 12345678, None, 0)),
    (b"<6>[   12.345678] e1000e: eth0 NIC Link is Up",
     ("e1000e: eth0 NIC Link is Up", 6, 12345678, None, 0)),
    (b"[    3.771531][    T1] pci 0000:3e:08.1: [8086:3246] type 00",
     ("pci 0000:3e:08.1: [8086:3246] type 00", None, 3771531, "T1", 0)),
    (b"[    3.771531][     C0] x", ("x", None, 3771531, "C0", 0)),
    (b"** 3 printk messages dropped **", ("** 3 printk messages dropped **", None, None, None, 3)),
    (b"[  101.000001] next message", ("next message", None, 101000001, None, 0)),
    (b"no prefix at all", ("no prefix at all", None, None, None, 0)),
    (b"<4>no time", ("no time", 4, None, None, 0)),
    (b"[12345.000000] big", ("big", None, 12345000000, None, 0)),
    (b"[not a ts] text", ("[not a ts] text", None, None, None, 0)),
    (b"raw \xff\x00 bytes", ("raw \\xff\\x00 bytes", None, None, None, 0)),
    (b"** replaying previous printk message **",
     ("** replaying previous printk message **", None, None, None, 0)),
]


@pytest.mark.parametrize("line,want", PLAIN)
def test_plain_line(line, want):
    assert wire.parse_plain_line(line) == want


def test_starts_plain_record():
    assert console.starts_record(b"[    1.000000] x")
    assert console.starts_record(b"<6>[    1.000000] x")
    assert console.starts_record(b"** 2 printk messages dropped **")
    assert not console.starts_record(b"continuation of a line")
    assert not console.starts_record(b"")


def test_fields_capped_rest_kept_in_text():
    body = b"t\n" + b"".join(b" k%d=v%d\n" % (i, i) for i in range(100))
    text, fields = wire.decode_ext_body(body)
    assert len(fields) == wire.MAX_FIELDS
    assert fields["userdata.k0"] == "v0" and "userdata.k64" not in fields
    assert text.split("\n")[0] == "t" and text.split("\n")[1] == " k64=v64"
    assert len(text.split("\n")) == 1 + 100 - wire.MAX_FIELDS
