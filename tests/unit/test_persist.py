"""sng/persist.py: records saved at a stop come back at the next start, on the
monotonic clock of the new process; a reload only removes the file."""

import json

from syslogng_netconsole import __version__
from syslogng_netconsole.ingest.reassembly import Reassembler
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.sng import persist
from syslogng_netconsole.sng.endpoint import Held


def _saved(tmp_path):
    held = Held()
    held.append(Record(host="10.0.0.1", text="whole", format=EXTENDED, seq=1, recv_time=100.0,
                       fields={"SUBSYSTEM": "usb"}))
    core = Reassembler()
    core.process(b"cut plain line", "10.0.0.1", 6665, 6666, 101.0)  # no newline: waits
    path = persist.pending_path(str(tmp_path / "state"), 6666)
    persist.save_pending(path, held, core, 102.0, 1000.0)
    assert core.pending_bytes > 0 and not core.records()   # the live state is untouched
    return path


def test_a_restart_gets_the_saved_records_back(tmp_path):
    path = _saved(tmp_path)
    lines = [json.loads(line) for line in open(path)]
    assert [d["recv_time"] for d in lines] == [1100.0, 1101.0]   # wall clock on disk
    saved = persist.take_saved(path, True, 500.0)
    # the held record went to the detector when drained; the cut line never did
    assert [seen for _, seen in saved] == [True, False]
    recs = [r for r, _ in saved]
    assert [r.text for r in recs] == ["whole", "cut plain line"]
    assert recs[0].fields == {"SUBSYSTEM": "usb"} and recs[0].recv_time == 600.0
    assert recs[1].src_port == 6665 and recs[1].dst_port == 6666
    assert not (tmp_path / "state" / "source-6666.pending.jsonl").exists()


def test_a_file_of_an_earlier_release_counts_as_not_seen_by_the_detector(tmp_path):
    path = str(tmp_path / "source-1.pending.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"host": "10.0.0.2", "text": "old", "format": EXTENDED}) + "\n")
    [(rec, seen)] = persist.take_saved(path, True, 0.0)
    assert rec.text == "old" and seen is False


def test_a_reload_only_removes_the_file(tmp_path):
    path = _saved(tmp_path)
    assert persist.take_saved(path, False, 0.0) == []
    assert persist.take_saved(path, True, 0.0) == []       # gone: nothing twice
    assert persist.take_saved(None, True, 0.0) == []       # no state_dir


def test_an_unreadable_file_is_set_aside_once(tmp_path):
    path = str(tmp_path / "source-1.pending.jsonl")
    with open(path, "w") as f:
        f.write("{not json\n")
    try:
        persist.take_saved(path, True, 0.0)
        raise AssertionError("expected an error")
    except ValueError:
        pass
    assert (tmp_path / "source-1.pending.jsonl.bad").exists()
    assert persist.take_saved(path, True, 0.0) == []


def test_counters_file(tmp_path):
    persist.write_counters(str(tmp_path / "s"), 6666, ("127.0.0.1",), {"source.datagrams": 3}, 5.0)
    doc = json.loads(open(persist.counters_path(str(tmp_path / "s"), 6666)).read())
    assert doc == {"time": 5.0, "port": 6666, "ip": ["127.0.0.1"], "counters": {"source.datagrams": 3},
                   "version": __version__}
