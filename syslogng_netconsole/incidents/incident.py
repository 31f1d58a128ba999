"""One kernel report found in one host's stream: what the detector emits and
what the store and the alert channels consume. Pure data."""

import copy
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional


@dataclass
class Incident:
    host: str
    type: str                      # syzkaller crash type: "DoS", "WARNING", "KASAN-READ", "HANG" ...
    title: str                     # syzkaller-style title, <= 120 chars
    signature: str                 # stable across hosts, addresses, PIDs, times
    text: str                      # the full report text, one line per record line
    first_line: str = ""
    alt_titles: List[str] = field(default_factory=list)
    boot: int = 0
    corrupted: bool = False        # no usable frame / garbled report
    truncated: bool = False        # ended by a cap or timeout, or records lost inside
    panicked: bool = False         # the report led to a panic
    release: Optional[str] = None
    taint: Optional[str] = None
    cpu: Optional[int] = None
    pid: Optional[int] = None
    comm: Optional[str] = None
    hardware: Optional[str] = None
    pc: Optional[str] = None       # RIP / PC line
    frames: List[str] = field(default_factory=list)
    modules: List[str] = field(default_factory=list)
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    first_ts_us: Optional[int] = None
    last_ts_us: Optional[int] = None
    first_time: float = 0.0        # caller's clock at the first record
    last_time: float = 0.0         # caller's clock at the last record
    lost_records: int = 0
    line_no: int = 0               # index (1-based) of the first report line in its stream
    hostname: Optional[str] = None  # the host's name, when known (hosts/directory.py)
    labels: Dict[str, str] = field(default_factory=dict)  # the host's labels (rack, role ...)
    # set when stored (incidents/novelty.py): the signature's first incident in this
    # store; and its first on a release while other releases never showed it
    new: bool = False
    new_on_release: bool = False
    # set after storing (symbols/symbolize.py, in the background): every frame's
    # file:line, the guilty file, and its MAINTAINERS entry (symbols/maintainers.py)
    symbols: Dict = field(default_factory=dict)
    guilty_file: Optional[str] = None
    subsystem: Dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable id: the same report of the same host and boot always maps here."""
        import hashlib

        key = "%s|%d|%s|%s|%s" % (self.host, self.boot, self.signature,
                                   self.first_seq, self.first_ts_us)
        return hashlib.sha1(key.encode()).hexdigest()[:20]

    def to_dict(self) -> dict:
        """A JSON-ready copy (what dataclasses.asdict gives, at a fraction of its
        cost: a storm posts a thousand of these through the source's one thread)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        for name in _LISTS:
            d[name] = list(d[name])
        d["labels"] = dict(self.labels)
        for name in _NESTED:
            if d[name]:
                d[name] = copy.deepcopy(d[name])
            else:
                d[name] = {}
        d["id"] = self.id
        return d


_FIELDS = tuple(f.name for f in fields(Incident))
_LISTS = ("alt_titles", "frames", "modules")
_NESTED = ("symbols", "subsystem")
