"""The operator's inventory: an address or network -> a host name and labels.

Two formats, told apart by the first character that is not blank:
  CSV   a header line ``address,name[,<label>...]``, then one host or network per line
        (``10.1.2.3`` or ``10.1.3.0/24``); empty cells are "not set"; lines starting
        with ``#`` and blank lines are skipped; further columns are labels named by the
        header.
  JSON  an object ``{"10.1.2.3": {"name": "db-17", "labels": {"rack": "r12"}}, ...}``
        or a list ``[{"address": "10.1.3.0/24", "name": ..., "labels": {...}}, ...]``.
A bad entry is skipped and reported with its line number; the others apply. The most
specific network wins (a /32 over its /24). Names follow names.py's rule, labels
labels.py's. ``InventoryFile`` notices a changed file (stat, no clock: the caller
decides how often to look). Pure otherwise: text in, table out.
"""

import csv
import ipaddress
import json
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from . import labels as hostlabels
from .names import valid_name

MAX_ENTRIES = 100000
MAX_BYTES = 16 * 1024 * 1024


class Entry(NamedTuple):
    name: Optional[str]
    labels: Dict[str, str]


class Inventory:
    def __init__(self, entries=(), errors=()):
        # (version, prefix length) -> {network as int >> host bits: Entry}
        self._nets: Dict[Tuple[int, int], Dict[int, Entry]] = {}
        self.errors: List[str] = list(errors)
        self.size = 0
        for net, entry in entries:
            self._nets.setdefault((net.version, net.prefixlen), {})[
                int(net.network_address) >> (net.max_prefixlen - net.prefixlen)] = entry
            self.size += 1
        # most specific first, per version
        self._order = {v: sorted((p for (ver, p) in self._nets if ver == v), reverse=True)
                       for v in (4, 6)}

    def lookup(self, address: str) -> Optional[Entry]:
        if not self.size:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        value, bits = int(ip), ip.max_prefixlen
        for plen in self._order[ip.version]:
            got = self._nets[(ip.version, plen)].get(value >> (bits - plen))
            if got is not None:
                return got
        return None


def parse(text: str, where: str = "inventory") -> Inventory:
    """Inventory text -> Inventory; its ``errors`` say '<where>:<line>: what'."""
    body = text.lstrip("\ufeff")
    start = body.lstrip()[:1]
    rows, errors = (_json_rows if start in ("{", "[") else _csv_rows)(body)
    entries, seen = [], {}
    for line, address, name, raw_labels in rows:
        try:
            entry, net = _entry(address, name, raw_labels)
        except ValueError as e:
            errors.append((line, str(e)))
            continue
        if net in seen:
            errors.append((line, "%s is already given on line %d; this one is ignored"
                           % (net, seen[net])))
            continue
        if len(entries) >= MAX_ENTRIES:
            errors.append((line, "more than %d entries; the rest are ignored" % MAX_ENTRIES))
            break
        seen[net] = line
        entries.append((net, entry))
    return Inventory(entries, ["%s:%d: %s" % (where, line, e) for line, e in sorted(errors)])


def _entry(address, name, raw_labels):
    try:
        net = ipaddress.ip_network(str(address).strip(), strict=False)
    except ValueError:
        raise ValueError("%r is not an address or network" % (str(address)[:80],)) from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped \
            and net.prefixlen >= 96:    # senders are named by their IPv4 address
        net = ipaddress.ip_network("%s/%d" % (net.network_address.ipv4_mapped,
                                              net.prefixlen - 96))
    name = (str(name).strip() or None) if name is not None else None
    if name is not None and not valid_name(name):
        raise ValueError("name %r: only letters, digits, '.', '_' and '-', at most 64"
                         % (name[:80],))
    if not isinstance(raw_labels, dict):
        raise ValueError("labels must be an object")
    return Entry(name, hostlabels.clean(raw_labels.items())), net


def _csv_rows(text):
    rows, errors, header = [], [], None
    # "\n" only: splitlines() would also cut at U+2028, \x1c ... inside a cell
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    for n, line in lines:
        try:
            cells = next(csv.reader([line]))
        except csv.Error as e:
            errors.append((n, "bad CSV: %s" % e))
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            if not cells or cells[0].lower() != "address":
                errors.append((n, "the first line must be a header starting with "
                                  "'address' (address,name,<label>...)"))
                return rows, errors
            header = [c.lower() for c in cells]
            continue
        if len(cells) > len(header):
            errors.append((n, "%d cells, the header has %d" % (len(cells), len(header))))
            continue
        row = dict(zip(header, cells))
        extra = [(k, v) for k, v in row.items() if k not in ("address", "name") and v]
        rows.append((n, row.get("address", ""), row.get("name") or None, dict(extra)))
    return rows, errors


def _json_rows(text):
    try:
        doc = json.loads(text)
    except ValueError as e:
        return [], [(getattr(e, "lineno", 1), "bad JSON: %s" % getattr(e, "msg", e))]
    if isinstance(doc, dict):
        items = [dict(v, address=k) if isinstance(v, dict) else {"address": k, "bad": v}
                 for k, v in doc.items()]
    elif isinstance(doc, list):
        items = doc
    else:
        return [], [(1, "expected an object or a list")]
    rows, errors, pos = [], [], 0
    for item in items:
        address = item.get("address") if isinstance(item, dict) else None
        # JSON has no line numbers after parsing: the entry's line is where its
        # address first occurs after the previous entry's
        n, pos = _line_of(text, address, pos)
        if not isinstance(item, dict) or "bad" in item or not isinstance(address, str):
            errors.append((n, "an entry must be an object with an address"))
            continue
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            errors.append((n, "name must be a string"))
            continue
        rows.append((n, address, name, item.get("labels") or {}))
    return rows, errors


def _line_of(text, address, pos):
    if isinstance(address, str):
        at = text.find(json.dumps(address), pos)
        if at >= 0:
            return text.count("\n", 0, at) + 1, at + 1
    return text.count("\n", 0, pos) + 1, pos


class InventoryFile:
    """One inventory file, re-read when its size, mtime or inode changes."""

    def __init__(self, path: str):
        self.path = path
        self._stamp = None

    def poll(self) -> Tuple[Optional[Inventory], Optional[str]]:
        """(a new Inventory, None) when the file changed and was read; (None, why)
        when it changed but cannot be read (keep the previous table); (None, None)
        when nothing changed."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError as e:
            stamp = ("missing", e.errno)
            if stamp == self._stamp:
                return None, None
            self._stamp = stamp
            return None, "cannot read %s: %s" % (self.path, e.strerror or e)
        if stamp == self._stamp:
            return None, None
        self._stamp = stamp
        if st.st_size > MAX_BYTES:
            return None, "%s is larger than %d bytes" % (self.path, MAX_BYTES)
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_BYTES + 1)
        except OSError as e:
            return None, "cannot read %s: %s" % (self.path, e.strerror or e)
        return parse(text, self.path), None
