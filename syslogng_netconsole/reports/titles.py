"""Title normalisation: what varies between hosts and runs becomes a token.

The replacement table follows syzkaller's report.go dynamicTitleReplacement
and sanitizeTitle (google/syzkaller, Apache License 2.0): executor PIDs,
addresses (ADDR), IPv4 (IP), file line numbers (LINE), func+0x1/0x2 offsets,
CPU numbers, decimal numbers (NUM); then control characters dropped, spaces
collapsed, at most 120 characters.
"""

import re

MAX_TITLE = 120

# Each is applied until the string stops changing (matches can overlap).
REPLACEMENTS = (
    (re.compile(r"syz-executor\.?[0-9]+((/|:)[0-9]+)?"), "syz-executor"),
    (re.compile(r"syzkaller[0-9]+((/|:)[0-9]+)?"), "syzkaller"),
    (re.compile(r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}"), r"\1ADDR"),
    (re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})"), "IP"),
    (re.compile(r"(\.\w+)(:[0-9]+)+", re.ASCII), r"\1:LINE"),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+"), r"\1"),
    (re.compile(r"CPU#[0-9]+"), "CPU"),
    (re.compile(r"(\W)(\d+)(\W|$)", re.ASCII), r"\1NUM\3"),
    # digits inside names stay (cfg80211), very long runs do not
    (re.compile(r"\d{7,}", re.ASCII), "NUM"),
)

_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\U0010ffff]")
_SPACES = re.compile(r"  +")


# Raw titles can be a whole (hostile) line; Python's regex engine backtracks,
# so only a bounded head is normalised (the result is cut at 120 anyway).
MAX_RAW = 400


def replace_dynamic(title: str) -> str:
    title = title[:MAX_RAW]
    for pattern, repl in REPLACEMENTS:
        while True:
            new = pattern.sub(repl, title)
            if new == title:
                break
            title = new
    return title


def sanitize(title: str) -> str:
    # syzkaller works on bytes: the 120 limit counts bytes before dropping.
    raw = title.encode("utf-8", "replace")[:MAX_TITLE].decode("utf-8", "ignore")
    raw = raw.replace("\t", " ")
    raw = _CTRL.sub("", raw)
    raw = _SPACES.sub(" ", raw)
    return raw.strip()


def normalize(title: str) -> str:
    return sanitize(replace_dynamic(title))
