"""Incident signature: the same bug on any host, at any address, PID or time.

Titles are already normalised (ADDR, NUM, LINE, syz-executor ...), so a
non-corrupted report's signature is a hash of its type and title. A corrupted
title ("... in corrupted", a raw header line) groups too much; there the top
reliable call-trace frames (function names only) are mixed in.
"""

import hashlib
from typing import Sequence

TOP_FRAMES = 6


def signature(type_: str, title: str, corrupted: bool = False,
              frames: Sequence[str] = ()) -> str:
    key = "%s|%s" % (type_, title)
    if corrupted and frames:
        key += "|" + ",".join(_base(f) for f in list(frames)[:TOP_FRAMES])
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:20]


def _base(frame: str) -> str:
    # "foo.isra.3" / "foo.cold" -> "foo": compiler suffixes vary between builds
    return frame.split(".", 1)[0]
