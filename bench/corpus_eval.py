#!/usr/bin/python3
"""Run the crash detector over syzkaller's report corpus and print its scores.

Usage: /usr/bin/python3 bench/corpus_eval.py [--failures] [--json] [CORPUS_DIR]

CORPUS_DIR defaults to ../shared/corpus/syzkaller-linux-report beside the
checkout (exit 0 with a message when it is absent). The runs and the scoring
are tests/harness/corpus.py's (the unit tier checks the same figures).
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "tests")]

from harness.corpus import DEFAULT, evaluate  # noqa: E402


def main(argv):
    show_failures = "--failures" in argv
    as_json = "--json" in argv
    args = [a for a in argv if not a.startswith("--")]
    corpus = args[0] if args else DEFAULT
    if not os.path.isdir(corpus):
        print("corpus_eval: %s is not present; nothing to do" % corpus)
        return 0
    res = evaluate(corpus)
    if as_json:
        out = dict(res)
        out["failures"] = [list(f) for f in res["failures"]]
        print(json.dumps(out, indent=1))
        return 0
    print("corpus: %s (%d files, %d lines; %d with a crash, %d without)" % (
        corpus, res["files"], res["lines"], res["positives"], res["negatives"]))
    rows = [
        ("detection", "%d/%d" % (res["detected"], res["positives"]), res["detection_rate"]),
        ("false positives (no-crash files)", "%d/%d" % (res["false_positives"], res["negatives"]),
         None),
        ("title == TITLE", "%d/%d" % (res["title_exact"], res["positives"]), res["title_exact_rate"]),
        ("title == TITLE, non-corrupted", "%d/%d" % (res["noncorrupted_exact"], res["noncorrupted"]),
         res["noncorrupted_exact_rate"]),
        ("title in TITLE+ALT", "%d/%d" % (res["title_or_alt"], res["positives"]),
         res["title_or_alt_rate"]),
        ("alt titles == ALT (whole set)", "%d/%d" % (res.get("alt_set", 0), res["positives"]),
         res.get("alt_set", 0) / max(res["positives"], 1)),
        ("type == TYPE", "%d/%d" % (res["type_ok"], res["positives"]), res["type_rate"]),
        ("corrupted == CORRUPTED", "%d/%d" % (res["corrupted_ok"], res["positives"]),
         res["corrupted_rate"]),
        ("streamed == whole log", "%d/%d" % (res["stream_equal"], res["files"]),
         res["stream_equal_rate"]),
    ]
    rows += [
        ("replayed at kernel time: detection", "%d/%d" % (res["replay_detected"], res["positives"]),
         res["replay_detection_rate"]),
        ("replayed at kernel time: title", "%d/%d" % (res["replay_exact"], res["positives"]),
         res["replay_exact_rate"]),
        ("replayed at kernel time: false pos.", "%d/%d" % (res["replay_fp"], res["negatives"]), None),
        ("no-prefix stream: detection", "%d/%d" % (res["stripped_detected"], res["positives"]),
         res["stripped_detection_rate"]),
        ("no-prefix stream: title == TITLE", "%d/%d" % (res["stripped_exact"], res["positives"]),
         res["stripped_exact_rate"]),
        ("no-prefix stream: false positives", "%d/%d" % (res["stripped_fp"], res["negatives"]), None),
        ("dedup by signature: pair precision", "", res["dedup_precision"]),
        ("dedup by signature: pair recall", "", res["dedup_recall"]),
    ]
    for name, (n, exact, alt) in sorted(res.get("arch", {}).items()):
        rows.append(("%s: title == TITLE" % name, "%d/%d" % (exact, n), exact / max(n, 1)))
    for name, count, rate in rows:
        print("  %-34s %10s %s" % (name, count, "" if rate is None else "%6.1f %%" % (100 * rate)))
    print("  %-34s %10.0f" % ("lines/s whole log (CPU, best of 3)", res["lines_per_s_whole"]))
    print("  %-34s %10.0f" % ("lines/s streamed (CPU, best of 3)", res["lines_per_s_stream"]))
    if show_failures:
        print("\nmismatches:")
        for f in res["failures"]:
            print("  %s %-14s want=%r got=%r" % f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
