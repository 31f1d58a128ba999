"""The one external tool: binutils' ``addr2line`` (and ``readelf`` for the source
roots), behind a small interface so tests and other tools can stand in.

Why addr2line rather than llvm-symbolizer: binutils is on every Debian machine
(and a dependency of the kernel's own scripts/faddr2line and decode_stacktrace.sh);
``-j SECTION`` takes section-relative addresses, which is exactly what a module's
``func+0xOFF`` gives, with no relocation arithmetic of our own; ``-i`` prints the
inlined frames. llvm-symbolizer needs the llvm package (hundreds of MB).

Output of ``addr2line -a -f -i -e FILE [-j SEC] ADDR...``: for each address a line
``0x...``, then (function, file:line) pairs, innermost inlined frame first, the
function containing the address last.
"""

import re
import shutil
import subprocess
from typing import Dict, List, NamedTuple, Optional

_DISCRIMINATOR = re.compile(r"\s+\(discriminator \d+\)$")


class Location(NamedTuple):
    func: str
    file: str       # "" when unknown
    line: int       # 0 when unknown


class ToolError(Exception):
    pass


def parse_output(text: str) -> Dict[int, List[Location]]:
    out: Dict[int, List[Location]] = {}
    cur: Optional[List[Location]] = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if ln.startswith("0x") and re.match(r"^0x[0-9a-fA-F]+$", ln):
            cur = out.setdefault(int(ln, 16), [])
            i += 1
            continue
        if cur is None or i + 1 >= len(lines):
            i += 1
            continue
        func, where = ln, _DISCRIMINATOR.sub("", lines[i + 1].strip())
        path, _, num = where.rpartition(":")
        if path in ("??", "") or not num.isdigit():
            path, num = "", "0"
        cur.append(Location(func if func != "??" else "", path, int(num)))
        i += 2
    return out


def parse_roots(text: str) -> List[str]:
    """Prefixes source paths are shown without, longest first: the compilation
    directories; the kernel tree of an out-of-tree build (Debian builds in
    TREE/debian/build/build_FLAVOUR: its C files are named "debian/build/
    build_FLAVOUR/init/main.c" and its assembly files TREE/arch/...), so that
    both read init/main.c and arch/...; and the directory of each absolute
    compilation unit name outside such a tree (an out-of-tree module's source
    folder)."""
    dirs, names = set(), []
    for ln in text.splitlines():
        if "DW_AT_comp_dir" not in ln and "DW_AT_name" not in ln:
            continue
        value = ln.rsplit("): ", 1)[-1] if "): " in ln else ln.split(":", 1)[-1]
        value = value.strip()
        if not value.startswith("/"):
            continue
        if "DW_AT_comp_dir" in ln:
            dirs.add(value.rstrip("/"))
        elif value.endswith((".c", ".S", ".rs")):
            names.append(value)
    roots = set(dirs)
    trees = set()
    for d in dirs:
        tree, sep, build = d.partition("/debian/build/")
        if sep and tree:
            trees.add(tree)
            roots.update((tree, "debian/build/" + build))
    for name in names:
        if not any(name.startswith(t + "/") for t in trees):
            roots.add(name.rsplit("/", 1)[0])
    return sorted(roots, key=len, reverse=True)


class Addr2line:
    def __init__(self, binary: str = "addr2line", readelf: str = "readelf",
                 timeout: float = 60.0):
        self.binary, self.readelf, self.timeout = binary, readelf, timeout
        self._found = False

    def available(self) -> bool:
        # asked per incident: a PATH search each time showed in a storm's profile;
        # once found it is kept (a tool removed later fails its run: ToolError)
        if not self._found:
            self._found = shutil.which(self.binary) is not None
        return self._found

    def _run(self, argv: List[str], timeout: Optional[float]) -> str:
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, timeout=timeout or self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError("%s: %s" % (argv[0], exc)) from exc
        if proc.returncode != 0:
            raise ToolError("%s exited %d: %s" % (argv[0], proc.returncode,
                                                 proc.stderr.decode(errors="replace")[:200]))
        return proc.stdout.decode("utf-8", "replace")

    def lookup(self, path: str, section: str, addrs: List[int],
               timeout: Optional[float] = None) -> Dict[int, List[Location]]:
        """{address: locations, innermost first}; section "" for absolute addresses."""
        argv = [self.binary, "-a", "-f", "-i", "-e", path]
        if section:
            argv += ["-j", section]
        argv += ["0x%x" % a for a in addrs]
        return parse_output(self._run(argv, timeout))

    def roots(self, path: str, timeout: Optional[float] = None) -> List[str]:
        out = self._run([self.readelf, "--debug-dump=info", "--dwarf-depth=1", "-W", path],
                        timeout)
        return parse_roots(out)
