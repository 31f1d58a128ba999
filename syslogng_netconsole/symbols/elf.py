"""A small ELF reader: section headers, the symbol table and the GNU build-id.

Enough for kernel debug files: ``vmlinux`` (ET_EXEC: symbol values are addresses)
and modules (``.ko``, ET_REL: a symbol's value is an offset in its section). Reads
32- and 64-bit files of either byte order. Untrusted input: a short or garbled file
raises ElfError, never anything else.
"""

import struct
from typing import Dict, List, NamedTuple, Optional

ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
SHT_SYMTAB, SHT_NOTE = 2, 7
STT_NOTYPE = 0
STT_FUNC = 2
NT_GNU_BUILD_ID = 3
MAX_SECTIONS = 100000


class ElfError(Exception):
    pass


class Section(NamedTuple):
    name: str
    type: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class Symbol(NamedTuple):
    name: str
    value: int
    size: int
    section: str            # name of the section it is defined in ("" if none)
    is_func: bool


class Elf:
    """One ELF file's headers, read on demand from `data` (bytes or mmap)."""

    def __init__(self, data):
        self.data = data
        if len(data) < 52 or data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        cls, enc = data[4], data[5]
        if cls not in (1, 2) or enc not in (1, 2):
            raise ElfError("unknown ELF class or byte order")
        self.bits = 64 if cls == 2 else 32
        self.end = "<" if enc == 1 else ">"
        if self.bits == 64:
            hdr = self._unpack("HHIQQQIHHHHHH", 16)
        else:
            hdr = self._unpack("HHIIIIIHHHHHH", 16)
        self.type = hdr[0]
        shoff, shentsize, shnum, shstrndx = hdr[5], hdr[10], hdr[11], hdr[12]
        if shnum > MAX_SECTIONS or (shnum and shentsize < (64 if self.bits == 64 else 40)):
            raise ElfError("bad section header table")
        self.sections: List[Section] = []
        raw = []
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.bits == 64:
                f = self._unpack("IIQQQQIIQQ", off)
            else:
                f = self._unpack("IIIIIIIIII", off)
            raw.append(f)
        names = raw[shstrndx] if 0 <= shstrndx < len(raw) else None
        for f in raw:
            name = self._string(names[4], names[5], f[0]) if names else ""
            self.sections.append(Section(name, f[1], f[3], f[4], f[5], f[6], f[9]))

    def _unpack(self, fmt, off):
        fmt = self.end + fmt
        size = struct.calcsize(fmt)
        if off < 0 or off + size > len(self.data):
            raise ElfError("truncated ELF file")
        return struct.unpack_from(fmt, self.data, off)

    def _string(self, tab_off, tab_size, idx) -> str:
        if idx >= tab_size or tab_off + idx >= len(self.data):
            return ""
        start = tab_off + idx
        stop = self.data.find(b"\0", start, tab_off + tab_size)
        if stop < 0:
            stop = min(tab_off + tab_size, len(self.data))
        return bytes(self.data[start:stop]).decode("utf-8", "replace")

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def has_dwarf(self) -> bool:
        """Line tables present (a stripped module or vmlinux has none)."""
        s = self.section(".debug_line")
        return s is not None and s.size > 0 and s.type != 8      # SHT_NOBITS

    def build_id(self) -> Optional[str]:
        """The GNU build-id note as lowercase hex, or None."""
        for s in self.sections:
            if s.type != SHT_NOTE:
                continue
            off, stop = s.offset, s.offset + s.size
            while off + 12 <= stop:
                namesz, descsz, ntype = self._unpack("III", off)
                name_at = off + 12
                desc_at = name_at + ((namesz + 3) & ~3)
                nxt = desc_at + ((descsz + 3) & ~3)
                if nxt > stop or nxt > len(self.data):
                    break
                if ntype == NT_GNU_BUILD_ID and bytes(self.data[name_at:name_at + namesz]) \
                        .rstrip(b"\0") == b"GNU" and 0 < descsz <= 64:
                    return bytes(self.data[desc_at:desc_at + descsz]).hex()
                off = nxt
        return None

    def symbols(self, funcs_only: bool = True) -> Dict[str, List[Symbol]]:
        """name -> symbols of that name (static functions repeat across files)."""
        out: Dict[str, List[Symbol]] = {}
        for s in self.sections:
            if s.type != SHT_SYMTAB:
                continue
            if not 0 <= s.link < len(self.sections):
                raise ElfError("bad symbol string table link")
            strtab = self.sections[s.link]
            ent = 24 if self.bits == 64 else 16
            if s.offset + s.size > len(self.data):
                raise ElfError("truncated symbol table")
            fmt = self.end + ("IBBHQQ" if self.bits == 64 else "IIIBBH")
            for off in range(s.offset, s.offset + s.size - ent + 1, ent):
                f = struct.unpack_from(fmt, self.data, off)
                if self.bits == 64:
                    name_i, info, _, shndx, value, size = f
                else:
                    name_i, value, size, info, _, shndx = f
                kind = info & 0xF
                is_func = kind == STT_FUNC
                # assembly entry points are labels without a type (e.g.
                # entry_SYSCALL_64_after_hwframe): defined ones count as code
                if funcs_only and not (is_func or (kind == STT_NOTYPE and shndx)):
                    continue
                name = self._string(strtab.offset, strtab.size, name_i)
                if not name:
                    continue
                sec = self.sections[shndx].name if 0 < shndx < len(self.sections) else ""
                out.setdefault(name, []).append(Symbol(name, value, size, sec, is_func))
        return out


def read_file(path: str, limit: int = 4 << 30) -> Elf:
    """Elf of a file on disk (mapped, not read: a vmlinux is hundreds of MB)."""
    import mmap

    with open(path, "rb") as f:
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:           # empty file
            raise ElfError(str(exc)) from exc
    if len(data) > limit:
        raise ElfError("file too big")
    return Elf(data)
