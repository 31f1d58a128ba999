"""Stack-frame extraction: which function a title names.

Modelled on syzkaller's pkg/report (report.go extractStackFrame, linux.go
stall/hang extractors; google/syzkaller, Apache License 2.0). A ``Stack``
recipe is a sequence of parts matched line by line: a regex part consumes the
first line it matches (its capture groups are frames), ``PARSE`` reads frame
lines until the next stack starts. Helper functions (skip lists) never name
the bug; syscall-wrapper prefixes are stripped.
"""

import re
from functools import lru_cache
from typing import List, Tuple

from . import kinds
from .demangle import demangle
from .kinds import PARSE

# Stalls loop somewhere random: take the frame just above one of these
# dispatch points instead (the syscall, the work item, the timer ...).
STALL_ANCHORS = re.compile("|".join([
    "process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch",
    "tracesys_phase2", "el0_svc_handler", "invoke_syscall", "ret_fast_syscall",
    "netif_receive_skb", "do_softirq", "call_timer_fn", "_run_timers",
    "run_timer_softirq", "hrtimer_run", "run_ksoftirqd", "smpboot_thread_fn",
    "^kthread$", "start_secondary", "cpu_startup_entry", "ret_from_fork",
    "vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read",
    "do_iter_write", "call_read_iter", "call_write_iter", "new_sync_read",
    "new_sync_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl",
    "compat_sys_ioctl", "blkdev_driver_ioctl", "blkdev_ioctl", "^call_read_iter",
    "^call_write_iter", "do_iter_readv_writev", "^call_mmap", "mmap_region",
    "do_mmap", "do_dentry_open", "vfs_open", "^sock_sendmsg", "^sock_recvmsg",
    "^sock_release", "^__sock_release", "^setsockopt$", "kernel_setsockopt",
    "sock_common_setsockopt", "^listen$", "kernel_listen", "sk_common_release",
    "^sock_mmap", "^accept$", "kernel_accept", "^sock_do_ioctl", "^sock_ioctl",
    "^compat_sock_ioctl", "^nfnetlink_rcv_msg", "^rtnetlink_rcv_msg",
    "^netlink_dump", "^(sys_)?(socketpair|connect|ioctl)", "__do_fault",
    "do_page_fault", "^page_fault$", "__fput", "task_work_run",
    "exit_to_usermode", "smp_call_function", "tasklet_action",
    "tasklet_hi_action",
]))

# Hung tasks: group the two big buckets, else skip scheduler/lock plumbing.
_HANG_ANCHORS = (("rtnl_lock", ""), ("synchronize_rcu", "synchronize_rcu"),
                 ("synchronize_srcu", "synchronize_rcu"), ("synchronize_net", "synchronize_rcu"),
                 ("synchronize_sched", "synchronize_rcu"))
_HANG_SKIP = ("sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread",
              "wait", "synchronize", "context_switch", "__switch_to", "cancel_delayed_work",
              "rcu_barrier")


def stall_extractor(frames: List[str]) -> Tuple[str, int]:
    prev, prev_idx = frames[0], 0
    for i, frame in enumerate(frames):
        if STALL_ANCHORS.search(frame):
            if "smp_call_function" in frame:
                return "smp_call_function", i
            return prev, prev_idx
        prev, prev_idx = frame, i
    return "", -1


def hang_extractor(frames: List[str]) -> Tuple[str, int]:
    # Go iterates a map here: the first anchor found in a frame wins.
    for i, frame in enumerate(frames):
        for anchor, replacement in _HANG_ANCHORS:
            if anchor in frame:
                return (replacement or frame), i
    for i, frame in enumerate(frames):
        if not any(s in frame for s in _HANG_SKIP):
            return frame, i
    return "", -1


EXTRACTORS = {"stall": stall_extractor, "hang": hang_extractor}


_STRIP_TUPLE = tuple(kinds.STRIP_FRAME_PREFIXES)


def strip_frame(frame: str) -> str:
    if not frame.startswith(_STRIP_TUPLE):
        return frame
    best = frame
    for prefix in kinds.STRIP_FRAME_PREFIXES:
        if frame.startswith(prefix) and len(frame) - len(prefix) < len(best):
            best = frame[len(prefix):]
    return best


class _Skip:
    """The skip regex of one format, with a memo: frame names repeat a lot."""

    def __init__(self, extra: Tuple[str, ...]):
        self.re = re.compile("|".join(list(kinds.SKIP_PATTERNS) + list(extra)))
        self.memo = {}

    def __call__(self, frame: str) -> bool:
        hit = self.memo.get(frame)
        if hit is None:
            if len(self.memo) > 20000:
                self.memo.clear()
            hit = self.memo[frame] = self.re.search(frame) is not None
        return hit


@lru_cache(maxsize=None)
def skip_re(extra: Tuple[str, ...]) -> _Skip:
    return _Skip(extra)


def _append(frames: List[str], match, skip) -> None:
    if match is None:
        return
    for g in match.groups():
        if g is None:
            continue
        if g[:2] in ("_R", "_Z"):
            g = demangle(g)     # Rust v0 / C++: hashes out, as syzkaller's titles
        if not skip(g):
            frames.append(g)


def _corrupted_line(line: str) -> bool:
    if "should_fail" not in line:
        return False
    for r in kinds.CORRUPTED_LINES:
        if r.search(line):
            return True
    return False


_FRAME0, _FRAME_ARM = kinds.FRAME_RES


def _first_frame(line: str):
    # both patterns are anchored at the start of the line
    return _FRAME0.match(line) or (_FRAME_ARM.match(line) if " from " in line else None)


def _extract_impl(lines: List[str], skip, parts, pick,
                  first_only: bool) -> Tuple[List[Tuple[str, str]], bool]:
    raw: List[str] = []
    results: List[Tuple[str, str]] = []
    ok = True
    n_stacks = 0
    pos = 0
    n = len(lines)
    idx = 0
    while True:
        if idx == len(parts) or (parts[idx] is PARSE and n_stacks > 0):
            key = pick(raw)
            if not key[0]:
                key, ok = ("corrupted", "corrupted"), False
            results.append(key)
            raw = []
        if idx == len(parts):
            break
        part = parts[idx]
        parse = part is PARSE
        if parse:
            n_stacks += 1
            nxt = parts[idx + 1] if idx + 1 < len(parts) else None
        while pos < n:
            ln = lines[pos]
            pos += 1
            if _corrupted_line(ln):
                ok = False
                break
            if not parse:
                m = part.search(ln)
                if m:
                    _append(raw, m, skip)
                    break
                continue
            if kinds.STACK_START_ANY.search(ln):
                break
            if nxt is not None:
                m = nxt.search(ln)
                if m:
                    _append(raw, m, skip)
                    idx += 1
                    break
            if first_only and raw:
                continue  # only raw[0] will be used
            _append(raw, _first_frame(ln), skip)
        idx += 1
    return results, ok


def extract_stack_frames(stack, text: str) -> Tuple[List[Tuple[str, str]], bool]:
    """Frames (canonical, raw) for each stack part group, and whether all were found."""
    skip = skip_re(stack.skip)
    extractor = EXTRACTORS.get(stack.extractor) if stack.extractor else None

    def pick(raw: List[str]) -> Tuple[str, str]:
        if not raw:
            return ("", "")
        stripped = [strip_frame(f) for f in raw]
        if extractor is None:
            return (stripped[0], raw[0])
        frame, i = extractor(stripped)
        if frame:
            return (frame, raw[i])
        return ("", "")

    lines = text.split("\n")
    first_only = extractor is None
    frames, ok = _extract_impl(lines, skip, stack.parts, pick, first_only)
    if ok or not stack.parts2:
        return frames, ok
    return _extract_impl(lines, skip, stack.parts2, pick, first_only)


# --- frames for the incident record (not for titles) ---

_FRAME_LINE = re.compile(
    kinds.expand(r"^\s*(?:{{PC}} ){0,2}([a-zA-Z0-9_.]+)\+0x[0-9a-f]+/0x[0-9a-f]+"))
# arm: "[<c0..>] (func) from [<c0..>] (caller+0x1c/0x30)" names func
_ARM_FRAME_LINE = re.compile(kinds.expand(r"^\s*{{PC}} \(([a-zA-Z0-9_.]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?\)"))


def call_trace(lines: List[str], limit: int = 64) -> List[str]:
    """Function names of the first call trace (questionable '? ' frames excluded)."""
    out: List[str] = []
    started = False
    for ln in lines:
        if not started:
            if kinds.CALL_TRACE.search(ln):  # "Call Trace:", "Call trace:", "Backtrace:"
                started = True
            continue
        if " ? " in ln or ln.lstrip().startswith("? "):
            continue
        m = _FRAME_LINE.match(ln) or _ARM_FRAME_LINE.match(ln)
        if m:
            out.append(m.group(1))
            if len(out) >= limit:
                break
            continue
        s = ln.strip()
        if s.startswith("<") or s.startswith("---") or s.startswith("RIP: 0033") or not s \
                or s.startswith(("RSP:", "RAX:", "RDX:", "RBP:", "R10:", "R13:", "Code:")):
            continue
        if out:
            break
    return out
