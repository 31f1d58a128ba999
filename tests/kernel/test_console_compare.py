"""The comparison the kernel tier relies on must itself catch every kind of error."""

from harness import console_compare as cc

MARK = cc.END_MARKER


def L(*texts, ts=1000):
    return [cc.Line(ts + i, t) for i, t in enumerate(texts)]


def test_identical_streams_agree_and_teardown_is_counted():
    console = L("Linux version x", "a", "b", MARK, "reboot: Power down", "late")
    decoded = console[:4] + console[5:]
    ag = cc.compare(console, decoded)
    assert ag.ok and ag.matched == ag.strict_total == 4
    assert (ag.teardown_total, ag.teardown_lost) == (2, 1)
    assert ag.percent == 100.0


def test_a_missing_line_before_power_off_fails():
    console = L("Linux version x", "a", "b", "c", MARK)
    decoded = [console[0], console[1], console[3], console[4]]
    ag = cc.compare(console, decoded)
    assert not ag.ok and ag.missing == 1 and ag.matched == 4
    assert "'b'" in ag.problems[0]


def test_a_duplicate_or_unknown_line_fails():
    console = L("Linux version x", "a", "b", MARK)
    dup = [console[0], console[1], console[1], console[2], console[3]]
    ag = cc.compare(console, dup)
    assert not ag.ok and ag.extra == 1
    junk = console[:2] + [cc.Line(5, "not printed")] + console[2:]
    assert cc.compare(console, junk).extra == 1


def test_wrong_text_fails():
    console = L("Linux version x", "abc", MARK)
    decoded = L("Linux version x", "abd", MARK)
    ag = cc.compare(console, decoded)
    assert not ag.ok and ag.missing == 1 and ag.extra == 1


def test_reordered_lines_fail():
    console = L("Linux version x", "a", "b", "c", MARK)
    decoded = [console[0], console[2], console[1], console[3], console[4]]
    assert not cc.compare(console, decoded).ok


def test_timestamps_are_compared():
    console = L("Linux version x", "a", MARK)
    decoded = [console[0], cc.Line(7, "a"), console[2]]
    ag = cc.compare(console, decoded)
    assert ag.ok and ag.ts_mismatch == 1


def test_nothing_decoded_fails():
    ag = cc.compare(L("Linux version x", MARK), [])
    assert not ag.ok and ag.missing == 2


def test_continuation_pieces_joined_into_one_line_fail():
    # the console prints each 'c' record on its own line: a joined line is a defect
    console = L("Linux version x", "Sched Debug", "ktime : 1", "", "next", MARK)
    decoded = [console[0], cc.Line(1001, "Sched Debugktime : 1"), console[4], console[5]]
    for extended in (True, False):
        ag = cc.compare(console, decoded, extended=extended)
        assert not ag.ok and ag.missing >= 2
    # an empty 'c' record is an empty console line: it must be in the log too
    ag = cc.compare(console, [c for c in console if c.text != ""], extended=True)
    assert not ag.ok and ag.missing == 1
    assert cc.compare(console, list(console), extended=True).ok


def test_kernel_truncation_is_accepted_only_when_over_the_cap():
    big = "escapes: " + "\\\t\u00e9" * 300          # ~4.8 KiB once escaped
    console = L("Linux version x", big, MARK)
    cut = big[:500] + "\\x"                          # cut inside an escape
    decoded = [console[0], cc.Line(1001, cut), console[2]]
    ag = cc.compare(console, decoded, extended=True, ext_max=2048)
    assert ag.ok and ag.kernel_truncated == 1
    assert not cc.compare(console, decoded, extended=True, ext_max=None).ok
    assert not cc.compare(console, decoded, extended=False).ok
    small = "short line " * 5
    console2 = L("Linux version x", small, MARK)
    assert not cc.compare(console2, [console2[0], cc.Line(1001, small[:20]), console2[2]],
                          extended=True, ext_max=2048).ok


def test_console_truncation_of_a_long_multiline_record():
    lines = ["multiline: line %d %s" % (i, "x" * 120) for i in range(1, 9)]
    rec = [cc.Line(5000, t) for t in lines]
    console = L("Linux version x") + rec[:7] + [cc.Line(6000, MARK)]
    decoded = L("Linux version x") + rec + [cc.Line(6000, MARK)]
    ag = cc.compare(console, decoded, extended=True, console_max=1024)
    assert ag.ok and ag.console_truncated == 1
    assert not cc.compare(console, decoded, extended=True, console_max=None).ok


def test_window_starts_at_the_first_decoded_line_with_its_timestamp():
    console = [cc.Line(1, "boot"), cc.Line(2, "netconsole: network logging started"),
               cc.Line(3, "netpoll: setup"), cc.Line(4, "netconsole: network logging started"),
               cc.Line(5, "x"), cc.Line(6, MARK)]
    ag = cc.compare(console, console[3:])
    assert ag.ok and ag.window_start == 3


def test_console_parsing_strips_cr_and_keeps_leading_spaces():
    raw = (b"[    0.000000] Linux version x\r\n[    1.500000]  <TASK>\r\n"
           b"userspace noise\r\n[   12.000001] caf\xc3\xa9 \xff\r\n")
    lines, other = cc.console_lines(raw)
    assert [(x.ts_us, x.text) for x in lines] == [
        (0, "Linux version x"), (1500000, " <TASK>"), (12000001, "caf\u00e9 \\xff")]
    assert other == 1
