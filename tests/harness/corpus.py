"""The crash detector scored over syzkaller's report corpus (bench/corpus_eval.py
prints it, tests/unit/test_reports_corpus.py holds it to the issue's floors).

Every file is run several ways: the whole log as one record; streamed one record
per line (built with parse_console_line, ``now`` advancing 1 ms per line, expire()
after each); replayed at its kernel timestamps; without prefixes. Scoring follows
the corpus README: the first incident (by position) is compared with TITLE / ALT /
TYPE / CORRUPTED. Info-only incidents (OOM kills), which syzkaller does not report,
are left out of the comparison. ``evaluate(corpus_dir) -> dict`` of counts and rates.
"""

import os
import time

from syslogng_netconsole.ingest.records import Record
from syslogng_netconsole.reports import INFO_TYPES, Detector, parse_console_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(os.path.dirname(REPO), "shared", "corpus", "syzkaller-linux-report")


def load(path):
    """(header dict, log lines) of one corpus file."""
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace").replace("\r", "")
    head, _, log = data.partition("\n\n")
    if data.startswith("\n"):
        head, log = "", data[1:]
    cut = log.find("\n\nREPORT:\n")
    if cut >= 0:
        log = log[:cut + 1]
    hdr = {"ALT": []}
    for line in head.split("\n"):
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "ALT":
            hdr["ALT"].append(value)
        else:
            hdr[key] = value
    return hdr, log.split("\n")


def run_whole(lines):
    d = Detector()
    d.feed(Record(host="10.0.0.1", text="\n".join(lines)), 0.0)
    d.flush(0.0)
    return d.incidents()


def run_stream(lines, step=0.001):
    d = Detector()
    now = 0.0
    for line in lines:
        ts, caller, text = parse_console_line(line)
        d.feed(Record(host="10.0.0.1", text=text, ts_us=ts, caller=caller), now)
        d.expire(now)
        now += step
    d.flush(now)
    return d.incidents()


def run_replay(lines):
    """Lines fed at their kernel timestamps (the clock a live collector would see),
    expire() as a timer would: grace periods and quiet timeouts really fire."""
    d = Detector()
    now = 0.0
    for line in lines:
        ts, caller, text = parse_console_line(line)
        if ts is not None:
            now = max(now, ts / 1e6)
        deadline = d.next_deadline()
        if deadline is not None and deadline <= now:
            d.expire(now)
        d.feed(Record(host="10.0.0.1", text=text, ts_us=ts, caller=caller), now)
    d.flush(now)
    return d.incidents()


def run_stripped(lines):
    """Netconsole without printk.time: no timestamps, no caller tags."""
    d = Detector()
    for line in lines:
        d.feed(Record(host="10.0.0.1", text=parse_console_line(line)[2]), 0.0)
    d.flush(0.0)
    return d.incidents()


def arch(lines):
    """Rough architecture of a log (the doc's per-arch breakdown)."""
    text = "\n".join(lines)
    if "RIP: " in text or "EIP: " in text:
        return "x86"
    if "pc : " in text or "PC is at " in text or "Internal error:" in text or "Call trace:" in text:
        return "arm"
    return "no-RIP-or-pc"


def first(incidents):
    real = [i for i in incidents if i.type not in INFO_TYPES]
    return min(real, key=lambda i: i.line_no) if real else None


def key(incidents):
    return sorted((i.line_no, i.title, i.type, i.corrupted, i.panicked) for i in incidents)


def throughput(logs, repeat=3):
    """Best-of-``repeat`` lines/s (CPU time of this process) for both modes."""
    n = sum(len(lines) for lines in logs)
    best = {}
    for mode in (run_whole, run_stream):
        times = []
        for _ in range(repeat):
            t0 = time.process_time()
            for lines in logs:
                mode(lines)
            times.append(time.process_time() - t0)
        best[mode.__name__] = n / max(min(times), 1e-9)
    return best["run_whole"], best["run_stream"]


def _score_positive(res, name, hdr, lines, inc, want, pairs):
    """Count one crash file's first incident against its TITLE/ALT/TYPE/CORRUPTED."""
    res["positives"] += 1
    a = res.setdefault("arch", {}).setdefault(arch(lines), [0, 0, 0])
    a[0] += 1
    a[1] += inc is not None and inc.title == want
    a[2] += inc is not None and (inc.title == want or inc.title in hdr["ALT"])
    want_corrupted = hdr.get("CORRUPTED", "N") == "Y"
    if not want_corrupted:
        res["noncorrupted"] += 1
    if inc is None:
        res["failures"].append((name, "missed", want, ""))
        return
    res["detected"] += 1
    pairs.append((want, inc.signature))
    if inc.title == want:
        res["title_exact"] += 1
        if not want_corrupted:
            res["noncorrupted_exact"] += 1
    else:
        res["failures"].append((name, "title", want, inc.title))
    if inc.title == want or inc.title in hdr["ALT"]:
        res["title_or_alt"] += 1
    if sorted(inc.alt_titles) == sorted(hdr["ALT"]):
        res["alt_set"] = res.get("alt_set", 0) + 1
    want_type = hdr.get("TYPE", "") or "UNKNOWN"
    if inc.type == want_type:
        res["type_ok"] += 1
    else:
        res["failures"].append((name, "type", want_type, inc.type))
    if inc.corrupted == want_corrupted:
        res["corrupted_ok"] += 1
    else:
        res["failures"].append((name, "corrupted", str(want_corrupted), str(inc.corrupted)))


def _add_rates(res, pairs):
    """Signature dedup precision/recall over the detected pairs, and the rates."""
    same_title = same_sig = both = 0
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            t = pairs[i][0] == pairs[j][0]
            g = pairs[i][1] == pairs[j][1]
            same_title += t
            same_sig += g
            both += t and g
    res["dedup_precision"] = both / max(same_sig, 1)
    res["dedup_recall"] = both / max(same_title, 1)
    p = max(res["positives"], 1)
    res["stripped_detection_rate"] = res["stripped_detected"] / p
    res["replay_detection_rate"] = res["replay_detected"] / p
    res["replay_exact_rate"] = res["replay_exact"] / p
    res["stripped_exact_rate"] = res["stripped_exact"] / p
    res["detection_rate"] = res["detected"] / p
    res["title_exact_rate"] = res["title_exact"] / p
    res["noncorrupted_exact_rate"] = res["noncorrupted_exact"] / max(res["noncorrupted"], 1)
    res["title_or_alt_rate"] = res["title_or_alt"] / p
    res["type_rate"] = res["type_ok"] / p
    res["corrupted_rate"] = res["corrupted_ok"] / p
    res["stream_equal_rate"] = res["stream_equal"] / max(res["files"], 1)


def evaluate(corpus, repeat=3):
    names = sorted((n for n in os.listdir(corpus) if n.isdigit()), key=int)
    logs = []
    res = {"files": 0, "lines": 0, "positives": 0, "negatives": 0, "detected": 0,
           "false_positives": 0, "title_exact": 0, "title_or_alt": 0, "type_ok": 0,
           "corrupted_ok": 0, "noncorrupted": 0, "noncorrupted_exact": 0,
           "stream_equal": 0, "t_whole": 0.0, "t_stream": 0.0, "failures": [],
           "stripped_detected": 0, "stripped_exact": 0, "stripped_fp": 0,
           "replay_detected": 0, "replay_exact": 0, "replay_fp": 0}
    pairs = []      # (expected title, our signature) of each detected positive
    for name in names:
        hdr, lines = load(os.path.join(corpus, name))
        logs.append(lines)
        res["files"] += 1
        res["lines"] += len(lines)
        # CPU time of this process: other load on the machine does not count
        t0 = time.process_time()
        whole = run_whole(lines)
        t1 = time.process_time()
        streamed = run_stream(lines)
        t2 = time.process_time()
        res["t_whole"] += t1 - t0
        res["t_stream"] += t2 - t1
        if key(whole) == key(streamed):
            res["stream_equal"] += 1
        else:
            res["failures"].append((name, "stream!=whole", str(key(whole)), str(key(streamed))))
        inc = first(whole)
        want = hdr.get("TITLE", "")
        replay = first(run_replay(lines))
        if want and replay is not None:
            res["replay_detected"] += 1
            res["replay_exact"] += replay.title == want
        elif not want and replay is not None:
            res["replay_fp"] += 1
        bare = first(run_stripped(lines))
        if want and bare is not None:
            res["stripped_detected"] += 1
            res["stripped_exact"] += bare.title == want
        elif not want and bare is not None:
            res["stripped_fp"] += 1
        if not want:
            res["negatives"] += 1
            if inc is not None:
                res["false_positives"] += 1
                res["failures"].append((name, "false positive", "", inc.title))
            continue
        _score_positive(res, name, hdr, lines, inc, want, pairs)
    _add_rates(res, pairs)
    res["lines_per_s_whole"], res["lines_per_s_stream"] = throughput(logs, repeat)
    return res
