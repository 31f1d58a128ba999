"""Demangle Rust (v0) and simple C++ frame names, without parameters.

Kernel Rust symbols are v0-mangled (``_RNvMs0_NtCs9jEwPDbx20M_11rust_binder...``)
and carry crate hashes that change between builds: a title or signature
built on them would not be stable. ``demangle("_RNvCs..._7___rustc17rust_begin_unwind")``
gives ``__rustc::rust_begin_unwind``; ``<T as Trait>::f`` and ``<T>::f`` for
impls, as syzkaller's titles (demangle.Filter with NoParams) print them.
Anything not understood is returned unchanged.
"""

from functools import lru_cache

_BASIC = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
    "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128",
    "s": "i16", "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!",
    "p": "_",
}


class _Bad(Exception):
    pass


class _Rust:
    def __init__(self, s: str):
        self.s = s          # the part after "_R"
        self.i = 0
        self.depth = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self) -> str:
        if self.i >= len(self.s):
            raise _Bad()
        c = self.s[self.i]
        self.i += 1
        return c

    def b62(self) -> int:
        if self.peek() == "_":
            self.i += 1
            return 0
        n = 0
        while True:
            c = self.take()
            if c == "_":
                return n + 1
            if c.isdigit():
                d = ord(c) - 48
            elif "a" <= c <= "z":
                d = ord(c) - 87
            elif "A" <= c <= "Z":
                d = ord(c) - 29
            else:
                raise _Bad()
            n = n * 62 + d

    def disambiguator(self) -> None:
        if self.peek() == "s":
            self.i += 1
            self.b62()

    def decimal(self) -> int:
        start = self.i
        while self.peek().isdigit():
            self.i += 1
        if start == self.i:
            raise _Bad()
        return int(self.s[start:self.i])

    def ident(self) -> str:
        self.disambiguator()
        if self.peek() == "u":
            raise _Bad()    # punycode: not worth it here
        n = self.decimal()
        if self.peek() == "_":
            self.i += 1
        name = self.s[self.i:self.i + n]
        if len(name) != n:
            raise _Bad()
        self.i += n
        return name

    def backref(self, fn):
        pos = self.b62()
        if pos >= self.i or self.depth > 50:
            raise _Bad()
        saved = self.i
        self.i = pos
        self.depth += 1
        try:
            return fn()
        finally:
            self.depth -= 1
            self.i = saved

    def path(self) -> str:
        c = self.take()
        if c == "C":
            return self.ident()
        if c == "M":
            self.disambiguator()
            self.path()
            return "<%s>" % self.type_()
        if c == "X":
            self.disambiguator()
            self.path()
            t = self.type_()
            return "<%s as %s>" % (t, self.path())
        if c == "Y":
            t = self.type_()
            return "<%s as %s>" % (t, self.path())
        if c == "N":
            ns = self.take()
            prefix = self.path()
            name = self.ident()
            if ns.islower():
                return "%s::%s" % (prefix, name)
            kind = {"C": "closure", "S": "shim"}.get(ns, ns)
            return "%s::{%s%s}" % (prefix, kind, "#" + name if name else "")
        if c == "I":
            p = self.path()
            args = []
            while self.peek() != "E":
                args.append(self.generic_arg())
            self.i += 1
            return "%s::<%s>" % (p, ", ".join(args))
        if c == "B":
            return self.backref(self.path)
        raise _Bad()

    def generic_arg(self) -> str:
        c = self.peek()
        if c == "L":
            self.i += 1
            self.b62()
            return "'_"
        if c == "K":
            self.i += 1
            return self.const()
        return self.type_()

    def const(self) -> str:
        c = self.take()
        if c == "p":
            return "_"
        if c == "B":
            return self.backref(self.const)
        # <type letter> [n] hex "_"
        if self.peek() == "n":
            self.i += 1
        start = self.i
        while self.peek() and self.peek() != "_":
            self.i += 1
        hexpart = self.s[start:self.i]
        self.take()
        try:
            return str(int(hexpart, 16)) if hexpart else "0"
        except ValueError:
            raise _Bad()

    def type_(self) -> str:
        c = self.peek()
        if c in _BASIC:
            self.i += 1
            return _BASIC[c]
        if c in "CMXYNI":
            return self.path()
        self.i += 1
        if c == "B":
            return self.backref(self.type_)
        if c == "R" or c == "Q":
            if self.peek() == "L":
                self.i += 1
                self.b62()
            return ("&" if c == "R" else "&mut ") + self.type_()
        if c == "P" or c == "O":
            return ("*const " if c == "P" else "*mut ") + self.type_()
        if c == "A":
            t = self.type_()
            return "[%s; %s]" % (t, self.const())
        if c == "S":
            return "[%s]" % self.type_()
        if c == "T":
            items = []
            while self.peek() != "E":
                items.append(self.type_())
            self.i += 1
            return "(%s)" % ", ".join(items)
        raise _Bad()    # fn pointers and dyn types: not in frame names we title


def _cxx(s: str) -> str:
    """_Z<name>... -> name (nested source-names only)."""
    i = 2
    nested = i < len(s) and s[i] == "N"
    if nested:
        i += 1
        while i < len(s) and s[i] in "rVKL":   # cv-qualifiers
            i += 1
    parts = []
    while i < len(s) and s[i].isdigit():
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        n = int(s[i:j])
        if n <= 0 or j + n > len(s):
            raise _Bad()
        parts.append(s[j:j + n])
        i = j + n
        if not nested:
            break
    if not parts or (nested and (i >= len(s) or s[i] != "E")):
        raise _Bad()
    return "::".join(parts)


@lru_cache(maxsize=4096)
def demangle(name: str) -> str:
    try:
        if name.startswith("_R"):
            d = _Rust(name[2:])
            if d.peek().isdigit():
                d.decimal()     # encoding version
            return d.path()
        if name.startswith("_Z"):
            return _cxx(name)
    except (_Bad, IndexError, ValueError, RecursionError):
        pass
    return name
