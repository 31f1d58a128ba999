"""sng/messages.py is the one list of posted pairs: the SCL file must agree with it."""

import pathlib
import re

from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.sng import messages

SCL = pathlib.Path(__file__).resolve().parents[2] / "syslogng_netconsole" / "scl" / "netconsole.conf"


def _dest_value_pairs_keys():
    text = SCL.read_text()
    block = text[text.index("block destination netconsole_incidents("):]
    vp = block[block.index("value-pairs("):]
    vp = vp[:vp.index("\n        )")]
    return tuple(re.findall(r'key\("([^"]+)"\)', vp))


def test_scl_value_pairs_are_what_the_destination_reads():
    assert _dest_value_pairs_keys() == messages.DEST_KEYS


def test_every_read_back_pair_is_posted():
    rec = Record(host="10.0.0.1", text="x", format=EXTENDED, seq=1, ts_us=2, caller="T1",
                 release="6.1", src_port=6665, dst_port=6666, lost_before=3, boot=1)
    posted = {n for n, _ in messages.message_pairs(rec)}
    assert set(messages.DEST_FIELDS) <= posted


def test_round_trip_keeps_the_stream_key():
    rec = Record(host="10.0.0.1", text="hello", format=EXTENDED, seq=7, ts_us=5, caller="C0",
                 src_port=6665, dst_port=6667, incomplete=True)
    msg = {"HOST": rec.host.encode(), "MESSAGE": rec.text.encode()}
    msg.update({messages.PREFIX + n: v.encode() for n, v in messages.message_pairs(rec)})
    back = messages.record_from_message(msg, 1.0)
    assert back.stream == rec.stream
    assert (back.seq, back.ts_us, back.caller, back.incomplete, back.format) == (7, 5, "C0", True, EXTENDED)
