"""The kernel's MAINTAINERS file: which subsystem, list and maintainers a source
file belongs to (as scripts/get_maintainer.pl reads it, simplified).

An entry is a title line followed by ``X:\\tvalue`` lines: ``M:`` maintainer, ``L:``
mailing list, ``S:`` status, ``F:`` file pattern (a trailing ``/`` is a whole
directory tree, ``*`` and ``?`` are globs), ``X:`` excluded pattern. A file's entry is
the one with the most specific matching ``F:`` pattern (longest, directories
counted by depth), exclusions honoured.
"""

import fnmatch
from typing import List, Optional


def _matches(pattern: str, path: str) -> bool:
    if pattern.endswith("/"):
        return path.startswith(pattern)
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return path == pattern or path.startswith(pattern.rstrip("/") + "/")


class Maintainers:
    def __init__(self, text: str):
        self.entries: List[dict] = []
        cur = None
        for raw in text.splitlines():
            line = raw.rstrip()
            if len(line) > 2 and line[1] == ":" and line[0].isalpha() and cur is not None:
                tag, value = line[0], line[2:].strip()
                cur.setdefault(tag, []).append(value)
            elif line and not line.startswith((" ", "\t")):
                cur = {"name": line.strip()}
                self.entries.append(cur)
            elif not line:
                cur = None
        self.entries = [e for e in self.entries if e.get("F")]

    def lookup(self, path: Optional[str]) -> dict:
        """{"name", "lists", "maintainers", "status"} of the best entry, or {}."""
        if not path:
            return {}
        best, best_score = None, -1
        for e in self.entries:
            if any(_matches(x, path) for x in e.get("X", [])):
                continue
            for pat in e["F"]:
                if _matches(pat, path):
                    score = pat.count("/") * 1000 + len(pat)
                    if score > best_score:
                        best, best_score = e, score
        if best is None:
            return {}
        return {"name": best["name"][:200], "lists": best.get("L", [])[:8],
                "maintainers": best.get("M", [])[:8], "status": (best.get("S") or [""])[0]}


def load(path: str) -> Maintainers:
    with open(path, encoding="utf-8", errors="replace") as f:
        return Maintainers(f.read(8 << 20))
