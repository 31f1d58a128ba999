"""The records the detector could still need after a crash (of the detection worker,
or of syslog-ng itself): per stream, those from its oldest open report on
(worker/protocol.py says how `needed_from` is worked out). The worker engine sends
them again to a new worker; the journal (journal.py) rewrites them at compaction.

Items are (idx, record tuple, now): `idx` numbers the records in the order they were
handed to the detector. Pure.
"""

import collections
from typing import List

MAX_KEPT_BYTES = 512 << 10    # kept text per stream (the detector's own report cap)


class KeptRecords:
    def __init__(self, counters: collections.Counter):
        self.counters = counters
        self.by_stream = collections.OrderedDict()   # stream key -> deque of items
        self.nbytes = collections.Counter()

    def __bool__(self) -> bool:
        return bool(self.by_stream)

    def __len__(self) -> int:
        return len(self.by_stream)

    def add(self, key, item) -> None:
        q = self.by_stream.get(key)
        if q is None:
            q = self.by_stream[key] = collections.deque()
        q.append(item)
        self.nbytes[key] += len(item[1][1])
        while self.nbytes[key] > MAX_KEPT_BYTES and len(q) > 1:
            self.nbytes[key] -= len(q.popleft()[1][1])
            self.counters["kept_dropped"] += 1

    def keep(self, key, item, tracker) -> None:
        """Keep `item` of stream `key`, then drop what `tracker` (protocol.Tracker,
        whose pool was just fed the item) says no report needs any more."""
        self.add(key, item)
        acks = {}
        tracker.fed(key, item[0], acks)
        self.trim_all(acks)

    def trim_all(self, acks: dict) -> None:
        for key, needed in acks.items():
            self.trim(key, needed)

    def trim(self, key, needed: int) -> None:
        """Drop the stream's items below idx `needed`."""
        q = self.by_stream.get(key)
        if q is None:
            return
        while q and q[0][0] < needed:
            self.nbytes[key] -= len(q.popleft()[1][1])
        if not q:
            del self.by_stream[key]
            del self.nbytes[key]

    def in_order(self) -> List[tuple]:
        """Every kept item of every stream, in the order they were handed over."""
        return sorted((item for q in self.by_stream.values() for item in q),
                      key=lambda i: i[0])

    def count(self) -> int:
        return sum(len(q) for q in self.by_stream.values())

    def text_bytes(self) -> int:
        return sum(self.nbytes.values())
