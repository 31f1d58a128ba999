"""The committed real-kernel fixtures still decode to their serial consoles.

No QEMU here: each pcap under tests/fixtures/ (made by make_fixtures.py from
a real guest) goes through ``syslogng-netconsole decode --json`` and must
agree with the serial log of the same run, like the live test does.
"""

import json
import pathlib
import re

import pytest

from harness import console_compare as cc
from harness.console_compare import cli_decode, records_to_lines
from harness.guest_run import EXPECT

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = FIXTURES / "kernel-fixtures.json"


def _manifest():
    if not MANIFEST.exists():
        return {}
    return json.loads(MANIFEST.read_text())


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_fixture_pcap_decodes_to_its_console(name):
    meta = _manifest()[name]
    console, _ = cc.console_lines((FIXTURES / (name + ".serial.log")).read_bytes())
    records = cli_decode(FIXTURES / (name + ".pcap"))
    for source, lines in (("pcap", records_to_lines(records)),
                          ("collector log", cc.decoded_lines(
                              (FIXTURES / (name + ".decoded.log")).read_text()))):
        ag = cc.compare_run(meta["kernel"], meta["mode"], console, lines)
        assert ag.ok and ag.ts_mismatch == 0, "%s: %s\n%s" % (source, ag.summary(),
                                                              "\n".join(ag.problems))
        for pattern, n in EXPECT[meta["scenario"]]:
            assert sum(1 for x in lines if re.search(pattern, x.text)) >= n, (source, pattern)


def test_fixtures_are_listed_and_small():
    manifest = _manifest()
    assert len(manifest) >= 3, "run make kernel-fixtures"
    for name in manifest:
        for suffix in (".pcap", ".serial.log", ".decoded.log"):
            path = FIXTURES / (name + suffix)
            assert path.exists(), path
            assert path.stat().st_size < 512 * 1024, path
