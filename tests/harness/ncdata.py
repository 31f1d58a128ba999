"""Netconsole datagrams as the kernel builds them (integration tests and benches).

Written from ../shared/docs/netconsole-wire.md (section 4: the kernel's fragmentation
algorithm), independently of the project's decoder.
"""

MAX_PRINT_CHUNK = 1000


def escape(text: bytes) -> bytes:
    """The kernel's extended-format escaping: bytes < 0x20, >= 0x7f and '\\' as \\xNN."""
    out = bytearray()
    for b in text:
        if b < 0x20 or b >= 0x7F or b == 0x5C:
            out += b"\\x%02x" % b
        else:
            out.append(b)
    return bytes(out)


def ext(seq: int, text, level: int = 6, ts_us: int = None, flag: str = "-", header_extra: str = "",
        lines=()) -> bytes:
    """One unfragmented extended datagram: header;escaped text\\n[ KEY=VAL\\n...]."""
    if isinstance(text, str):
        text = text.encode()
    ts = ts_us if ts_us is not None else 1000000 + seq * 1000
    head = b"%d,%d,%d,%s%s;" % (level, seq, ts, flag.encode(), header_extra.encode())
    body = escape(text) + b"\n" + b"".join(b" " + ln.encode() + b"\n" for ln in lines)
    return head + body


def ext_fragments(seq: int, text, level: int = 6, ts_us: int = None, lines=()) -> list:
    """The ncfrag datagrams the kernel sends for a record longer than 1000 bytes."""
    whole = ext(seq, text, level, ts_us, lines=lines)
    header, _, data = whole.partition(b";")
    if len(whole) <= MAX_PRINT_CHUNK:
        return [whole]
    frags, sent = [], 0
    while sent < len(data):
        prefix = header + b",ncfrag=%d/%d;" % (sent, len(data))
        room = MAX_PRINT_CHUNK - len(prefix)
        frags.append(prefix + data[sent:sent + room])
        sent += room
    return frags


def plain(ts_us: int, text: str) -> bytes:
    """One plain-format console line, `[    5.123456] text\\n`."""
    return b"[%5d.%06d] %s\n" % (ts_us // 1000000, ts_us % 1000000, text.encode())


def dmesg_prefix(ts_us: int) -> str:
    return "[%5d.%06d] " % divmod(ts_us, 1000000)
