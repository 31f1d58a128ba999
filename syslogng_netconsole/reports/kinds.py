"""The report-kind table: start markers, suppressions, title formats, types.

Derived from syzkaller's pkg/report (linux.go, report.go, crash/title_to_type.go,
google/syzkaller, Apache License 2.0, Copyright 2016-2025 syzkaller project
authors). The regular expressions and title formats below are a Python
re-expression of that table so that our titles match syzkaller's; the code
around them is ours.

How a report is found and titled:
  * ``KINDS`` is ordered. A line starts a report when it contains a kind's
    ``header`` (substring anywhere) and matches none of its ``suppressions``.
  * When the report is over, every ``Format`` of that kind is tried on the
    report text; the one whose ``title`` regex matches earliest wins (ties:
    table order). ``report`` (optional) supplies the capture groups; the
    ``stack`` recipe appends one extracted frame per stack part. ``fmt`` and
    ``alt`` are ``str.format`` templates over captures + frames.

Types follow syzkaller's crash types (``TITLE_TO_TYPE``, first prefix wins);
``UNKNOWN`` when no prefix matches. Severity for alerting (``severity()``):

  =========  ==============================================================
  critical   the report led to a panic (``Incident.panicked``)
  error      Oops-class faults: DoS (GPF, invalid opcode, kernel panic:,
             arm Internal error ...), BUG, NULL-POINTER-DEREFERENCE,
             MEMORY_SAFETY_*, KASAN-*, KFENCE-*, KMSAN-*, HANG (soft/hard
             lockup, RCU stall, hung task), HARDWARE (machine check)
             and UNKNOWN when the title is a "BUG:" (bad page state ...)
  warning    WARNING, REFCOUNT_WARNING, LOCKDEP, ATOMIC_SLEEP, UBSAN, LEAK,
             KCSAN-*, REBOOT, SYZ_FAILURE, other UNKNOWN (INFO:, WARNING: ...)
  info       OOM (an OOM kill: carries a stack but is not a kernel bug)
  =========  ==============================================================
"""

import re

try:
    import regex as _regex
except ImportError:  # declared dependency; degrade to re if absent
    _regex = None
from typing import List, NamedTuple, Optional, Sequence, Tuple

# Placeholders shared by the patterns (same meaning as syzkaller's).
_PLACEHOLDERS = (
    ("{{ADDR}}", r"0x[0-9a-f]+"),
    ("{{PC}}", r"\[\<?(?:0x)?[0-9a-f]+\>?\]"),
    ("{{FUNC}}", r"([a-zA-Z0-9_]+)(?:\.|\+)"),
    ("{{SRC}}", r"([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)"),
)


def expand(pattern: str) -> str:
    for key, value in _PLACEHOLDERS:
        pattern = pattern.replace(key, value)
    return pattern


def rx(pattern: str):
    return re.compile(expand(pattern))


def rx_report(pattern: str):
    """A multi-line report pattern: run once per finished report, on text an
    attacker can shape, so it is compiled with `regex`, whose matching takes a
    timeout (see describe.py). Without `regex`, the line window alone bounds it."""
    if _regex is None:
        return re.compile(expand(pattern))
    return _regex.compile(expand(pattern), _regex.V0)


# Sentinel part: "parse a stack trace from here".
PARSE = None

RIP_FRAME_SRC = expand(
    r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}"
    r"|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)"
    r"|[0-9]+: +\(null\))")
RIP_FRAME = re.compile(RIP_FRAME_SRC)
CALL_TRACE = rx(r"(?:Call (?:T|t)race:)|(?:Backtrace:)")
RISCV_STACK_START = re.compile(
    r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}")

# Lines that start a stack trace (stackStartRes).
STACK_START = [
    re.compile(r"Call (?:T|t)race"),
    re.compile(r"Allocated:"),
    re.compile(r"Allocated by task [0-9]+:"),
    re.compile(r"Freed:"),
    re.compile(r"Freed by task [0-9]+:"),
    # "backtrace:" but not "stack backtrace:"; kmemleak adds a crc.
    re.compile(r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:"),
    re.compile(r"Backtrace:"),
    re.compile(r"Uninit was stored to memory at"),
    RISCV_STACK_START,
]
# One combined search for the hot path.
STACK_START_ANY = re.compile("|".join("(?:%s)" % r.pattern for r in STACK_START))

# Lines holding a frame; group(s) capture function names.
FRAME_RES = [
    rx(r"^ *(?:{{PC}} ){0,2}{{FUNC}}"),
    # arm: "[<pc>] (func) from [<pc>] (caller+0x...": both names.
    rx(r"^ *{{PC}} \(([a-zA-Z0-9_.]+)\) from {{PC}} \({{FUNC}}"),
]

# Frames that never name the guilty function.
SKIP_PATTERNS = [
    "__sanitizer", "__asan", "kasan", "hwasan", "__msan", "kmsan",
    "kcsan_setup_watchpoint", "check_memory_region", "check_heap_object",
    "check_object", "read_word_at_a_time", "(read|write)_once_.*nocheck",
    "print_address_description", "panic", "invalid_op", "report_bug",
    "fixup_bug", "print_report", "print_usage_bug", "do_error",
    "_trap$|do_trap", "show_stack", "dump_stack", "walk_stack",
    "dump_backtrace", "warn_slowpath", "warn_alloc", "warn_bogus", "__warn",
    "alloc_page", "k?v?(?:m|z|c)alloc", "krealloc", "kmem_cache",
    "allocate_slab", "__alloc_frozen_pages_noprof", "folio_(?:alloc|unlock)",
    "filemap_alloc_folio", "__filemap_get_folio", "find_or_create_page",
    "do_read_cache_folio", "read_cache_page", "pagecache_get_page",
    "grab_cache_page_write_begin", "slab_", "debug_object",
    "timer_is_static_object", "work_is_static_object", "__might_fault",
    "print_unlock", "imbalance_bug", "lockdep", "bh_enable", "bh_disable",
    "perf_trace", "lock_acquire", "lock_release", "lock_class", "mark_lock",
    "(reacquire|mark)_held_locks", "raw_spin_rq", "spin_lock", "spin_trylock",
    "spin_unlock", "read_lock", "read_trylock", "write_lock", "write_trylock",
    "read_unlock", "write_unlock", "^down$", "down_read", "down_write",
    "down_read_trylock", "down_write_trylock", "down_trylock", "up_read",
    "up_write", "^mutex_", "^__mutex_", "^rt_mutex_", "owner_on_cpu",
    "osq_lock", "osq_unlock",
    "atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    "(set|clear|change|test)_bit", "__wake_up", "^refcount_", "^kref_",
    "ref_tracker", "seqprop_assert", "memcpy", "memcmp", "memset", "memchr",
    "memmove", "memdup", "strcmp", "strncmp", "strcpy", "strlcpy", "strncpy",
    "strscpy", "strlen", "strstr", "strnstr", "strnlen", "strchr", "strdup",
    "strndup", "copy_to_user", "copy_from_user", "copy_to_iter",
    "copy_from_iter", "copy_page_to_iter", "copy_page_from_iter",
    "copy_folio_to_iter", "^copyin$", "^copyout$", "put_user", "get_user",
    "might_fault", "might_sleep", "list_add", "list_del", "list_replace",
    "list_move", "list_splice", "^rb_", "^__rb_", "_indirect_thunk_",
    "string", "pointer", "snprintf", "scnprintf", "kasprintf", "kvasprintf",
    "printk", "va_format", "dev_info", "dev_notice", "dev_warn", "dev_err",
    "dev_alert", "dev_crit", "dev_emerg", "program_check_exception",
    "program_check_common", "del_timer", "flush_work", "__cancel_work_timer",
    "cancel_work_sync", "try_to_grab_pending", "flush_workqueue",
    "drain_workqueue", "destroy_workqueue", "queue_work", "finish_wait",
    "kthread_stop", "kobject_", "add_uevent_var", "get_device_parent",
    "device_add", "device_del", "device_unregister", "device_destroy",
    "device_release", "devres_release_all", "hwrng_unregister",
    "i2c_del_adapter", "__unregister_client", "device_for_each_child",
    "rollback_registered", "unregister_netdev", "sysfs_remove",
    "device_remove_file", "tty_unregister_device", "dummy_urb_enqueue",
    "usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg",
    "usb_hcd_submit_urb", "usb_submit_urb", "^complete$",
    "wait_for_completion", "^kv?free$", "kfree_skb", "readb$", "readw$",
    "readl$", "readq$", "writeb$", "writew$", "writel$", "writeq$",
    "logic_in", "logic_out", r"^crc\d+", "crc_itu_t", "__might_resched",
    "assertfail", "^iput$", "^iput_final$", "^ihold$", "hex_dump_to_buffer",
    "print_hex_dump", "^klist_", "(trace|lockdep)_(hard|soft)irq",
    "^(un)?lock_page", "stack_trace_consume_entry", "arch_stack_walk",
    "stack_trace_save", "insert_work", "__queue_delayed_work",
    "queue_delayed_work_on", "ida_free",
    # arm64 translation fault path
    "do_(kernel|translation)_fault", "do_mem_abort", "el1_abort",
    "el1h_64_sync(?:_handler)?", "print_tainted", "xas_(?:start|load|find)",
    "find_lock_entries", "truncate_inode_pages_range", "__phys_addr",
    "__fortify_report", "cleanup_srcu_struct", "rhashtable_lookup",
    "extract_(user|iter)_to_sg", "drop_nlink", "^get_taint$", "^put_device$",
    "lock_timer_base", "__timer_delete_sync", "sk_stop_timer_sync",
    "__mod_timer", "fast_dput", "dput",
    # ours: the generic buffer-head helper WARNs for its caller's bug
    "^mark_buffer_dirty$",
]

# A frame line like this (fault injection) makes the report corrupted.
CORRUPTED_LINES = [
    re.compile(r"^( \[\<?(?:0x)?[0-9a-f]+\>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),
]

# Syscall-wrapper prefixes stripped from frames (shortest result wins).
STRIP_FRAME_PREFIXES = [
    "SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_",
    "___sys_", "__sys_", "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_",
    "compat_SyS_", "ksys_",
]


class Stack(NamedTuple):
    parts: Tuple                    # regexes or PARSE, matched in sequence
    parts2: Tuple = ()              # fallback sequence
    skip: Tuple = ()                # extra skip patterns for this format
    extractor: Optional[str] = None  # "stall" or "hang"


class Format(NamedTuple):
    title: "re.Pattern"
    fmt: str
    report: Optional["re.Pattern"] = None
    alt: Tuple = ()
    stack: Optional[Stack] = None
    no_stack: bool = False           # do not require a stack trace
    corrupted: bool = False          # this format always means a garbled report


class Kind(NamedTuple):
    header: str
    formats: Tuple
    suppressions: Tuple = ()


def F(title, fmt, report=None, alt=(), stack=None, no_stack=False, corrupted=False):
    return Format(rx(title), fmt, rx_report(report) if report else None, tuple(alt),
                  stack, no_stack, corrupted)


def S(*parts, parts2=(), skip=(), extractor=None):
    return Stack(tuple(parts), tuple(parts2), tuple(skip), extractor)


def warning_stack(*skip):
    # x86 WARNINGs trap: the frame is on the RIP line; ppc64 prints
    # "--- interrupt:"; older kernels only print a Call Trace.
    return S(re.compile("(?:" + RIP_FRAME_SRC + "|" +
                        expand(r"--- interrupt: [0-9]+ at {{FUNC}}") + ")"),
             PARSE, parts2=(CALL_TRACE, PARSE), skip=skip)


RIP_STACK = (RIP_FRAME, CALL_TRACE, PARSE)
CT_STACK = (CALL_TRACE, PARSE)
_AT_FUNC = r"at: (?:{{PC}} +)?{{FUNC}}"
# syzkaller's "(?:.*\n)+?" (any number of lines) is bounded here: Python's
# backtracking engine makes the unbounded form quadratic on hostile text.
MULTI_MAX = 60
_MULTI = r"(?:.*\n){1,%d}?" % MULTI_MAX

KINDS: List[Kind] = [
    Kind("BUG:", (
        F("BUG: KASAN:", "KASAN: {0} {2} in {3}",
          report=r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}" + _MULTI +
          r".*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)",
          alt=("bad-access in {3}",),
          stack=S(rx(r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}"), CALL_TRACE, PARSE,
                  skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"))),
        F("BUG: KASAN:", "KASAN: invalid-free in {1}",
          report=r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}",
          alt=("invalid-free in {1}",),
          stack=S(rx(r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}"),
                  CALL_TRACE, PARSE, skip=("slab_", "kfree", "vunmap", "vfree"))),
        F(r"BUG: KASAN: ([a-z\-]+) on address" + _MULTI + r".*(Read|Write) of size ([0-9]+)",
          "KASAN: {0} {1}"),
        F(r"BUG: KASAN: (.*)", "KASAN: {0}", corrupted=True),
        F("BUG: KMSAN: kernel-usb-infoleak", "KMSAN: kernel-usb-infoleak in {1}",
          report=r"BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}",
          alt=("KMSAN origin in {2}",),
          stack=S(PARSE, rx(r"(Local variable .* created at:|Uninit was created at:)"), PARSE,
                  skip=("alloc_skb", "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                        "usb_interrupt_msg", "usb_control_msg")),
          no_stack=True),
        F("BUG: KMSAN:", "KMSAN: {0} in {2}",
          report=r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}",
          alt=("bad-access in {2}",),
          stack=S(PARSE, rx(r"(Local variable .* created at:|Uninit was created at:)"), PARSE,
                  skip=("alloc_skb", "netlink_ack", "netlink_rcv_skb", "_encrypt$",
                        "^(?:crypto|cipher|drbg|rng)_")),
          no_stack=True),
        F("BUG: KCSAN: data-race", "KCSAN: {0}", report=r"BUG: KCSAN: (.*)", no_stack=True),
        F("BUG: KCSAN:", "KCSAN: {0}", report=r"BUG: KCSAN: (.*)", no_stack=True),
        F(r"BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}",
          "KFENCE: {0} {1} in {3}", alt=("bad-access in {3}",),
          stack=S(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE)),
        F(r"BUG: KFENCE: invalid free in {{FUNC}}", "KFENCE: invalid free in {1}",
          alt=("invalid-free in {1}",), no_stack=True,
          stack=S(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE)),
        F(r"BUG: KFENCE: invalid (read|write) in {{FUNC}}", "KFENCE: invalid {0} in {2}",
          alt=("bad-access in {2}",),
          stack=S(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE)),
        F(r"BUG: KFENCE: memory corruption in {{FUNC}}", "KFENCE: memory corruption in {1}",
          no_stack=True, stack=S(rx(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), PARSE)),
        F(r"BUG: (?:unable to handle kernel paging request|unable to handle page fault for address"
          r"|Unable to handle kernel data access)",
          "BUG: unable to handle kernel paging request in {0}", alt=("bad-access in {0}",),
          stack=S(*RIP_STACK)),
        F(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference"
          r"|Kernel NULL pointer dereference)",
          "BUG: unable to handle kernel NULL pointer dereference in {0}",
          alt=("bad-access in {0}",), stack=S(*RIP_STACK)),
        # The second half of the header is a separate printk and can be lost.
        F(r"BUG: (?:unable to handle kernel|Unable to handle kernel)",
          "BUG: unable to handle kernel", corrupted=True),
        F(r"BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion"
          r"|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
          "BUG: {0} {1} in {2}", stack=S(*CT_STACK, skip=("spin_", "_lock", "_unlock"))),
        F("BUG: soft lockup", "BUG: soft lockup in {0}", alt=("stall in {0}",),
          stack=S(*RIP_STACK, extractor="stall")),
        F(r"BUG: .*still has locks held!", "BUG: still has locks held in {0}",
          report=r"BUG: .*still has locks held!" + _MULTI + r".*{{PC}} +{{FUNC}}"),
        F("BUG: scheduling while atomic", "BUG: scheduling while atomic in {0}",
          stack=S(*CT_STACK, skip=("schedule",))),
        F("BUG: lock held when returning to user space",
          "BUG: lock held when returning to user space in {0}",
          report=r"BUG: lock held when returning to user space" + _MULTI +
          r".*leaving the kernel with locks still held" + _MULTI + r".*" + _AT_FUNC,
          no_stack=True),
        F("BUG: bad unlock balance detected!", "BUG: bad unlock balance in {0}",
          stack=S(rx(r"{{PC}} +{{FUNC}}"), CALL_TRACE, PARSE)),
        F("BUG: held lock freed!", "BUG: held lock freed in {0}",
          report=r"BUG: held lock freed!" + _MULTI + r".*{{PC}} +{{FUNC}}"),
        F("BUG: Bad rss-counter state", "BUG: Bad rss-counter state", no_stack=True),
        F("BUG: non-zero nr_ptes on freeing mm", "BUG: non-zero nr_ptes on freeing mm",
          no_stack=True),
        F("BUG: non-zero nr_pmds on freeing mm", "BUG: non-zero nr_pmds on freeing mm",
          no_stack=True),
        # Block device and fs type are left out of the title on purpose (loop0/1/2).
        F(r"BUG: Dentry .* still in use", "BUG: Dentry still in use in {0}",
          report=r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]",
          alt=("BUG: Dentry still in use [{0} of {1}]",)),
        F(r"BUG: Bad page (state|cache)", "BUG: Bad page {0} in {1}",
          stack=S(rx("page last allocated"), PARSE,
                  skip=("(free|put|get|update|release)_page", "free_unref", "^_*folio",
                        "truncate_inode_pages", "page_frag_free", "alloc", "vmap",
                        "page_owner"))),
        F("BUG: Bad page map", "BUG: Bad page map"),
        F("BUG: workqueue lockup", "BUG: workqueue lockup", no_stack=True),
        F(r"BUG: sleeping function called from invalid context at (.*)",
          "BUG: sleeping function called from invalid context in {1}", stack=S(*CT_STACK)),
        F(r"BUG: using ([a-z_]+)\(\) in preemptible", "BUG: using {0}() in preemptible code in {1}",
          stack=S(*CT_STACK, skip=("dump_stack", "preemption", "preempt", "debug_",
                                   "processor_id", "this_cpu"))),
        F("BUG: workqueue leaked lock or atomic", "BUG: workqueue leaked lock or atomic in {0}",
          report=r"BUG: workqueue leaked lock or atomic" + _MULTI +
          r".*last function: ([a-zA-Z0-9_]+)\n", no_stack=True),
        F("BUG: memory leak", "memory leak in {0}",
          stack=S(rx(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:"), PARSE,
                  skip=("kmemleak", "mmap", "kmem", "slab", "alloc", "create_object",
                        "idr_get", "list_lru_init", "kasprintf", "kvasprintf",
                        "pcpu_create", "strdup", "strndup", "memdup"))),
        F(r"BUG: .*stack guard page was hit at", "BUG: stack guard page was hit in {0}",
          alt=("stack-overflow in {0}",), stack=S(*RIP_STACK, extractor="stall")),
        # arm/arm64 print this; amd64 prints a lockdep WARNING: same title.
        F("BUG: Invalid wait context", "WARNING: locking bug in {0}",
          stack=S(*CT_STACK, skip=("lock_sock", "release_sock"))),
        F(r"BUG:\s*(?:\n|$)", "BUG: corrupted", corrupted=True),
    ), (rx("ODEBUG:"), rx("Boot_DEBUG:"), rx("xlog_status:"), rx("DEBUG:"),
        rx("BUG: no syscalls can create resource"))),

    Kind("WARNING:", (
        F(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
          "WARNING: ODEBUG bug in {0}",
          stack=warning_stack("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_",
                              "vunmap", "vfree", "__free_", "debug_check", "kobject_")),
        F(r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)", "WARNING: bad usercopy in {0}",
          stack=warning_stack("usercopy", "__check")),
        F(r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)", "WARNING: kobject bug in {0}",
          stack=warning_stack("kobject_")),
        F(r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
          "WARNING: proc registration bug in {0}", stack=warning_stack("proc_")),
        F(r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)", "WARNING: refcount bug in {0}",
          stack=warning_stack("refcount", "kobject_")),
        F(r"WARNING: .*kernel/locking/lockdep\.c.*lock_", "WARNING: locking bug in {0}",
          stack=warning_stack("lock_sock", "release_sock")),
        F(r"WARNING: .*still has locks held!", "WARNING: still has locks held in {0}",
          report=r"WARNING: .*still has locks held!" + _MULTI + r".*at: {{FUNC}}"),
        F("WARNING: Nested lock was not taken", "WARNING: nested lock was not taken in {0}",
          stack=warning_stack()),
        F("WARNING: lock held when returning to user space",
          "WARNING: lock held when returning to user space in {0}",
          report=r"WARNING: lock held when returning to user space" + _MULTI +
          r".*leaving the kernel with locks still held" + _MULTI + r".*" + _AT_FUNC,
          no_stack=True),
        F(r"WARNING: .*mm/.*\.c.* k?.?malloc", "WARNING: kmalloc bug in {0}",
          stack=warning_stack("kmalloc", "krealloc", "slab", "kmem")),
        F(r"WARNING: .*mm/vmalloc.c.*__vmalloc_node", "WARNING: zero-size vmalloc in {0}",
          stack=warning_stack()),
        F(r"WARNING: .* usb_submit_urb", "WARNING in {0}/usb_submit_urb",
          stack=warning_stack("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg",
                              "usb_interrupt_msg", "usb_control_msg")),
        # 2025 form with a raw caller: "WARNING: lib/x.c:615 at 0x0, CPU#1: comm/pid"
        F(r"WARNING: {{SRC}} at 0x\d+, CPU#\d+", "WARNING in {1}", stack=warning_stack()),
        # "WARNING: CPU: 0 PID: 1 at fs/x.c:12 func+0x1/0x2" and "WARNING: at fs/x.c:12 func()"
        F(r"WARNING: .* at {{SRC}} {{FUNC}}", "WARNING in {2}", stack=warning_stack()),
        # 2025 form: "WARNING: fs/x.c:12 at func+0x1/0x2, CPU#0: comm/123"
        F(r"WARNING: {{SRC}} at {{FUNC}}", "WARNING in {2}", stack=warning_stack()),
        # 2026 form with the condition: "WARNING: [cond] fs/x.c:12 at func+0x1/0x2, ..."
        F(r"WARNING: \[.*\] {{SRC}} at {{FUNC}}.*", "WARNING in {2}", stack=warning_stack()),
        F("WARNING: possible circular locking dependency detected", "possible deadlock in {0}",
          report=r"WARNING: possible circular locking dependency detected" + _MULTI +
          r".*is trying to acquire lock",
          stack=S(rx(_AT_FUNC), rx(_AT_FUNC), PARSE,
                  skip=("process_one_work", "flush_workqueue", "drain_workqueue",
                        "destroy_workqueue"))),
        F("WARNING: possible irq lock inversion dependency detected", "possible deadlock in {0}",
          report=r"WARNING: possible irq lock inversion dependency detected" + _MULTI +
          r".*just changed the state of lock" + _MULTI + r".*" + _AT_FUNC),
        F(r"WARNING: .*-safe -> .*-unsafe lock order detected", "possible deadlock in {0}",
          stack=S(rx(r"which became (?:.*) at:"), PARSE)),
        F("WARNING: possible recursive locking detected", "possible deadlock in {0}",
          report=r"WARNING: possible recursive locking detected" + _MULTI +
          r".*is trying to acquire lock" + _MULTI + r".*" + _AT_FUNC),
        F("WARNING: inconsistent lock state", "inconsistent lock state in {1}",
          report=r"WARNING: inconsistent lock state" + _MULTI + r".*takes" + _MULTI +
          r".*" + _AT_FUNC,
          stack=S(*CT_STACK)),
        F("WARNING: suspicious RCU usage", "WARNING: suspicious RCU usage in {1}",
          report=r"WARNING: suspicious RCU usage" + _MULTI + r".*?{{SRC}}",
          stack=S(*CT_STACK, skip=("rcu", "kmem", "slab"))),
        F(r"WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
          "WARNING: kernel stack regs has bad '{0}' value", no_stack=True),
        F(r"WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
          "WARNING: kernel stack frame pointer has bad value", no_stack=True),
        F("WARNING: bad unlock balance detected!", "WARNING: bad unlock balance in {0}",
          stack=S(rx(r"{{PC}} +{{FUNC}}"), CALL_TRACE, PARSE)),
        F("WARNING: held lock freed!", "WARNING: held lock freed in {0}",
          report=r"WARNING: held lock freed!" + _MULTI + r".*at:(?: {{PC}})? +{{FUNC}}"),
        F(r"WARNING: kernel stack regs .* has bad 'bp' value",
          "WARNING: kernel stack regs has bad value", no_stack=True),
        F(r"WARNING: kernel stack frame pointer .* has bad value",
          "WARNING: kernel stack regs has bad value", no_stack=True),
        # ours: the pre-3.11 form "WARNING: at fs/x.c:12 func+0x1/0x2()" (func() on 2.6)
        F(r"WARNING: at {{SRC}} ([a-zA-Z0-9_]+)", "WARNING in {2}", stack=warning_stack()),
        F(r"WARNING:\s*(?:\n|$)", "WARNING: corrupted", corrupted=True),
    ), (rx("WARNING: /etc/ssh/moduli does not exist, using fixed modulus"),
        rx("WARNING: workqueue cpumask: online intersect > possible intersect"),
        rx("WARNING: [Tt]he mand mount option"),
        rx(r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1"),
        rx("WARNING: Unprivileged eBPF is enabled with eIBRS"),
        rx(r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size"),
        rx(r"WARNING: See https.* for mitigation options."),
        rx(r"WARNING: kernel not compiled with CPU_SRSO"),
        rx(r"EXT4-[Ff][Ss](?: \(.*\))?:"),
        rx(r"(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)"),
        rx(r"XFS \(\w+\): WARNING"))),

    Kind("INFO:", (
        F("INFO: possible circular locking dependency detected", "possible deadlock in {0}",
          report=r"INFO: possible circular locking dependency detected \]" + _MULTI +
          r".*is trying to acquire lock" + _MULTI + r".*at: {{PC}} +{{FUNC}}"),
        F("INFO: possible irq lock inversion dependency detected", "possible deadlock in {0}",
          report=r"INFO: possible irq lock inversion dependency detected \]" + _MULTI +
          r".*just changed the state of lock" + _MULTI + r".*at: {{PC}} +{{FUNC}}"),
        F("INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "possible deadlock in {0}",
          report=r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \]" + _MULTI +
          r".*is trying to acquire" + _MULTI + r".*at: {{PC}} +{{FUNC}}"),
        F("INFO: possible recursive locking detected", "possible deadlock in {0}",
          report=r"INFO: possible recursive locking detected \]" + _MULTI +
          r".*is trying to acquire lock" + _MULTI + r".*at: {{PC}} +{{FUNC}}"),
        F("INFO: inconsistent lock state", "inconsistent lock state in {0}",
          report=r"INFO: inconsistent lock state \]" + _MULTI + r".*takes" + _MULTI +
          r".*at: {{PC}} +{{FUNC}}"),
        F(r"INFO: rcu_(?:preempt|sched|bh|tasks) (?:self-)?detected(?: expedited)? stall",
          "INFO: rcu detected stall in {0}", alt=("stall in {0}",),
          stack=S(rx("apic_timer_interrupt"), RIP_FRAME, PARSE,
                  parts2=(rx("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"), PARSE),
                  skip=("apic_timer_interrupt", "rcu"), extractor="stall")),
        F("INFO: trying to register non-static key", "INFO: trying to register non-static key in {0}",
          stack=S(*CT_STACK, skip=("stack", "lock", "IRQ"))),
        F("INFO: suspicious RCU usage", "INFO: suspicious RCU usage in {1}",
          report=r"INFO: suspicious RCU usage" + _MULTI + r".*?{{SRC}}",
          stack=S(*CT_STACK, skip=("rcu", "kmem", "slab"))),
        # (a comm holding a newline splits the first line)
        F(r"INFO: task (?:.*\n)?.* blocked for more than [0-9]+ seconds", "INFO: task hung in {0}",
          alt=("hang in {0}",), stack=S(*CT_STACK, extractor="hang")),
        F(r"INFO: task .* can't die for more than .* seconds", "INFO: task can't die in {0}",
          alt=("hang in {0}",), stack=S(*CT_STACK, skip=("schedule",))),
        # Corrupted old-style KASAN reports.
        F(r"INFO: (Freed|Allocated) in (.*)", "INFO: {0} in {1}", corrupted=True),
        F(r"INFO:\s*(?:\n|$)", "INFO: corrupted", corrupted=True),
    ), (rx("INFO: lockdep is turned off"), rx("INFO: Stall ended before state dump start"),
        rx("INFO: NMI handler"), rx("INFO: recovery required on readonly filesystem"),
        rx("(handler|interrupt).*took too long"), rx("INFO: sys_.* is not present in /proc/kallsyms"),
        rx("INFO: no syscalls can create resource"), rx("rmt_storage:INFO:"), rx("_INFO:"))),

    Kind("Unable to handle kernel", (
        F(r"Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)",
          "BUG: unable to handle kernel {0} in {1}", alt=("bad-access in {1}",),
          stack=S(*RIP_STACK)),
    )),
    Kind("general protection fault", (
        F("general protection fault.*:", "general protection fault in {0}",
          alt=("bad-access in {0}",), stack=S(*RIP_STACK)),
    ), (rx(r"general protection fault .* error:\d+ in "),)),
    Kind("stack segment: ", (
        F("stack segment: ", "stack segment fault in {0}", stack=S(*RIP_STACK)),
    )),
    Kind("Kernel panic", (
        # The stack may be too corrupted to symbolize the function.
        F("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {0}",
          report=r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}",
          no_stack=True),
        F("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {0}",
          report=r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+",
          stack=S(*CT_STACK, skip=("stack_chk",))),
        F("Kernel panic - not syncing: corrupted stack end", "kernel panic: corrupted stack end in {0}",
          report=r"Kernel panic - not syncing: corrupted stack end detected inside scheduler",
          alt=("stack-overflow in {0}",),
          stack=S(*CT_STACK, skip=("schedule", "retint_kernel"), extractor="stall")),
        F("Kernel panic - not syncing: kernel stack overflow", "kernel stack overflow in {0}",
          alt=("stack-overflow in {0}",),
          stack=S(*CT_STACK, skip=("bad_stack",), extractor="stall")),
        F("Kernel panic - not syncing: Attempted to kill init!", "kernel panic: Attempted to kill init!"),
        F(r"Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
          "kernel panic: Couldn't open N_TTY ldisc"),
        # These follow a real report: alone, they mean its header was lost.
        F("Kernel panic - not syncing: Fatal exception", "kernel panic: Fatal exception",
          corrupted=True),
        F("Kernel panic - not syncing: panic_on_warn set", "kernel panic: panic_on_warn set",
          corrupted=True),
        F("Kernel panic - not syncing: hung_task: blocked tasks",
          "kernel panic: hung_task: blocked tasks", corrupted=True),
        F(r"Kernel panic - not syncing: (.*)", "kernel panic: {0}"),
    )),
    Kind("PANIC: double fault", (
        F("PANIC: double fault", "PANIC: double fault in {0}", stack=S(RIP_FRAME)),
    )),
    Kind("rust_kernel: panicked", (
        F("rust_kernel: panicked", "{0} in {1}", report=r"rust_kernel: panicked at [^\n]*?\n(.+?)\n",
          stack=S(*CT_STACK, skip=(re.escape("__rustc::rust_begin_unwind"),))),
    )),
    Kind("kernel BUG", (
        F("kernel BUG at mm/usercopy.c", "BUG: bad usercopy in {0}",
          stack=S(*CT_STACK, skip=("usercopy", "__check"))),
        F("kernel BUG at lib/list_debug.c", "BUG: corrupted list in {0}",
          alt=("bad-access in {0}",), stack=S(*CT_STACK)),
        # Many skb wrappers BUG_ON, but the bug is in the caller.
        F("kernel BUG at (.*)", "kernel BUG in {1}", stack=S(*RIP_STACK, skip=("^skb_",))),
    )),
    Kind("Kernel BUG", (F("Kernel BUG (.*)", "kernel BUG {0}"),)),
    Kind("BUG kmalloc-", (F("BUG kmalloc-.*: Object already free", "BUG: Object already free"),)),
    Kind("divide error:", (F("divide error: ", "divide error in {0}", stack=S(RIP_FRAME)),)),
    # A misspelling of the above (x86 IDTENTRY conversion).
    Kind("divide_error:", (F("divide_error: ", "divide error in {0}", stack=S(RIP_FRAME)),)),
    Kind("invalid opcode:", (F("invalid opcode: ", "invalid opcode in {0}", stack=S(RIP_FRAME)),)),
    Kind("int3:", (F("int3: ", "int3 in {0}", stack=S(*RIP_STACK)),)),
    Kind("UBSAN:", (
        F("UBSAN:", "UBSAN: undefined-behaviour in {0}", report="UBSAN: Undefined behaviour in",
          stack=S(*CT_STACK, skip=("ubsan", "overflow"))),
        F("UBSAN: array-index-out-of-bounds in", "UBSAN: array-index-out-of-bounds in {0}",
          alt=("bad-access in {0}",), stack=S(*CT_STACK, skip=("ubsan", "overflow"))),
        F("UBSAN:", "UBSAN: {0} in {1}", report="UBSAN: (.*?) in",
          stack=S(*CT_STACK, skip=("ubsan", "overflow"))),
    )),
    Kind("Booting the kernel.", (
        F("^Booting the kernel", "unexpected kernel reboot", no_stack=True),
    ), (rx("Parsing ELF|Decompressing Linux|Unknown parameter '"),)),
    Kind("unregister_netdevice: waiting for", (
        F("unregister_netdevice: waiting for (?:.*) to become free",
          "unregister_netdevice: waiting for DEV to become free", no_stack=True),
    )),
    Kind("VFS: Close: file count is 0", (
        F("VFS: Close: file count is 0", "VFS: Close: file count is zero (use-after-free)",
          no_stack=True),
    )),
    Kind("VFS: Busy inodes after unmount", (
        F("VFS: Busy inodes after unmount", "VFS: Busy inodes after unmount (use-after-free)",
          no_stack=True),
    )),
    # arm64 "Internal error: synchronous external abort" is arm's paging request.
    Kind("Internal error:", (
        F("Internal error:", "Internal error in {0}", alt=("bad-access in {0}",),
          stack=S(*RIP_STACK)),
    )),
    # arm shows x86's NULL-deref GPF as "Unhandled fault: page domain fault".
    Kind("Unhandled fault:", (
        F("Unhandled fault:", "Unhandled fault in {0}", alt=("bad-access in {0}",),
          stack=S(*RIP_STACK)),
    )),
    Kind("Alignment trap:", (
        F("Alignment trap:", "Alignment trap in {0}", stack=S(*RIP_STACK)),
    )),
    Kind("trusty: panic", (
        F("trusty: panic.* ASSERT FAILED", "trusty: ASSERT FAILED: {0}",
          report=r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)", no_stack=True),
        F("trusty: panic.* ASSERT FAILED.*: *(.*)", "trusty: ASSERT FAILED: {0}", corrupted=True),
        F("trusty: panic", "trusty: panic: {0}", report=r"trusty: panic \(.*?\): (.+)",
          no_stack=True),
    )),
    Kind("fatal error:", (F("fatal error:", "go runtime error", no_stack=True),),
         (rx("ALSA"), rx("fatal error: cannot create timer"))),
    # syzkaller's own markers (also Go programs' panics).
    Kind("SYZFAIL:", (F("SYZFAIL:(.*)", "SYZFAIL:{0}", no_stack=True),)),
    Kind("SYZFATAL:", (F("SYZFATAL:(.*)()", "SYZFATAL:{0}", alt=("SYZFATAL{1}",), no_stack=True),)),
    Kind("panic:", (
        F("panic: Sentry detected .* stuck task", "panic: Sentry detected stuck tasks", no_stack=True),
        F("panic:(.*)", "panic:{0}", no_stack=True),
    ), (rx("_panic:"), rx("xlog_status:"), rx(r"ddb\.onpanic:"), rx("evtlog_status:"))),

    # --- Our additions (not in syzkaller's table) ---
    # "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1" (not bare "NMI watchdog:").
    Kind("Watchdog detected hard LOCKUP", (
        F("Watchdog detected hard LOCKUP", "BUG: hard lockup in {0}", alt=("stall in {0}",),
          stack=S(*RIP_STACK, extractor="stall")),
    )),
    # Hardware, not a kernel bug; one MCE prints many such lines.
    Kind("Machine Check Exception:", (
        F("Machine Check Exception:", "hardware error: machine check exception", no_stack=True),
    )),
    Kind("[Hardware Error]:", (
        F(r"\[Hardware Error\]:", "hardware error: machine check exception", no_stack=True),
    )),
    # An OOM kill: informational (it carries a stack that can intermix with an oops).
    Kind("invoked oom-killer:", (
        F(r"(\S+) invoked oom-killer:", "out of memory: {0} invoked oom-killer", no_stack=True),
    )),
]

# Headers that do not start a new report when a report is already open:
# they are part of it (panic after an oops, x86 BUG's ud2 die line, ...).
REPORT_START_IGNORES = [
    re.compile(r"invalid opcode: 0000"),
    re.compile(r"Kernel panic - not syncing"),
    re.compile(r"unregister_netdevice: waiting for"),
    re.compile(r"PANIC: double fault"),
    re.compile(r"Internal error:"),
    re.compile(r"Machine Check Exception:|\[Hardware Error\]:"),
    # ours: an OOM kill is info-only; it must not cut the report it interrupts
    re.compile(r"invoked oom-killer:"),
    # ours: the BUG() that the Rust panic handler calls after "rust_kernel: panicked"
    re.compile(r"kernel BUG at rust/helpers/bug\.c"),
]
START_IGNORES_ANY = re.compile("|".join(r.pattern for r in REPORT_START_IGNORES))

# Not bugs themselves but they print a stack: they end a report without
# a printk-caller context (its lines would otherwise mix in).
INFO_WITH_STACK = ("vmalloc: allocation failure:", "FAULT_INJECTION: forcing a failure",
                   "FAULT_FLAG_ALLOW_RETRY missing")

# The one cheap check per line: does it contain any header at all?
HEADER_ANY = re.compile("|".join(re.escape(k.header) for k in KINDS))

# Types: first matching title prefix wins (syzkaller crash.TitleToType).
TITLE_TO_TYPE: Sequence[Tuple[Tuple[str, ...], str]] = (
    (("KFENCE: use-after-free write",), "KFENCE-USE-AFTER-FREE-WRITE"),
    (("KFENCE: use-after-free read", "KFENCE: use-after-free"), "KFENCE-USE-AFTER-FREE-READ"),
    (("KFENCE: invalid write", "KFENCE: out-of-bounds write"), "KFENCE-WRITE"),
    (("KFENCE: invalid read", "KFENCE: out-of-bounds read", "KFENCE: out-of-bounds"), "KFENCE-READ"),
    (("KFENCE: memory corruption",), "KFENCE-MEMORY-CORRUPTION"),
    (("KFENCE: invalid free",), "KFENCE-INVALID-FREE"),
    (("KMSAN: uninit-value",), "KMSAN-UNINIT-VALUE"),
    (("KMSAN: kernel-infoleak-after-free", "KMSAN: kernel-usb-infoleak-after-free",
      "KMSAN: use-after-free"), "KMSAN-USE-AFTER-FREE-READ"),
    (("KMSAN: kernel-infoleak", "KMSAN: kernel-usb-infoleak"), "KMSAN-INFO-LEAK"),
    (("KASAN: null-ptr-deref Write",), "KASAN-NULL-POINTER-DEREFERENCE-WRITE"),
    (("KASAN: null-ptr-deref Read",), "KASAN-NULL-POINTER-DEREFERENCE-READ"),
    (("BUG: unable to handle kernel NULL pointer dereference in",), "NULL-POINTER-DEREFERENCE"),
    (("KASAN: global-out-of-bounds Write", "KASAN: out-of-bounds Write",
      "KASAN: slab-out-of-bounds Write", "KASAN: stack-out-of-bounds Write",
      "KASAN: user-memory-access Write", "KASAN: vmalloc-out-of-bounds Write",
      "KASAN: wild-memory-access Write"), "KASAN-WRITE"),
    (("KASAN: global-out-of-bounds Read", "KASAN: invalid-access Read", "KASAN: out-of-bounds Read",
      "KASAN: slab-out-of-bounds Read", "KASAN: slab-out-of-bounds",
      "KASAN: stack-out-of-bounds Read", "KASAN: stack-out-of-bounds", "KASAN: unknown-crash Read",
      "KASAN: user-memory-access Read", "KASAN: vmalloc-out-of-bounds Read",
      "KASAN: wild-memory-access Read", "KASAN: wild-memory-access"), "KASAN-READ"),
    (("KASAN: double-free or invalid-free", "KASAN: invalid-free"), "KASAN-INVALID-FREE"),
    (("KASAN: slab-use-after-free Write", "KASAN: use-after-free Write"), "KASAN-USE-AFTER-FREE-WRITE"),
    (("KASAN: slab-use-after-free Read", "KASAN: use-after-free Read", "KASAN: use-after-free"),
     "KASAN-USE-AFTER-FREE-READ"),
    (("BUG: corrupted list", "BUG: unable to handle kernel paging request"), "MEMORY_SAFETY_BUG"),
    (("WARNING: refcount bug",), "REFCOUNT_WARNING"),
    (("UBSAN: array-index-out-of-bounds",), "MEMORY_SAFETY_UBSAN"),
    (("KCSAN: data-race",), "KCSAN-DATARACE"),
    (("KCSAN: assert: race in",), "KCSAN-ASSERT"),
    (("BUG: bad unlock balance in", "BUG: held lock freed in", "BUG: rwlock", "BUG: spinlock",
      "BUG: still has locks held in", "BUG: using", "WARNING: bad unlock balance in",
      "WARNING: held lock freed in", "WARNING: lock held", "WARNING: locking bug in",
      "WARNING: nested lock was not taken in", "WARNING: still has locks held in",
      "WARNING: suspicious RCU usage in", "inconsistent lock state in", "possible deadlock in"),
     "LOCKDEP"),
    (("BUG: scheduling while atomic in", "BUG: sleeping function called from invalid context in"),
     "ATOMIC_SLEEP"),
    (("memory leak in",), "LEAK"),
    (("BUG: bad usercopy in", "kernel BUG"), "BUG"),
    (("WARNING in",), "WARNING"),
    (("BUG: stack guard page was hit in", "WARNING: corrupted",
      "WARNING: kernel stack frame pointer has bad value", "WARNING: kernel stack regs has bad"),
     "UNKNOWN"),
    (("BUG: soft lockup in", "INFO: rcu detected stall in", "INFO: task can't die in",
      "INFO: task hung in", "BUG: hard lockup in"), "HANG"),
    (("Alignment trap in", "BUG: Object already free", "Internal error in", "PANIC: double fault",
      "Unhandled fault in", "VFS: Busy inodes after unmount (use-after-free)",
      "VFS: Close: file count is zero (use-after-free)", "divide error in",
      "general protection fault in", "go runtime error", "invalid opcode in", "int3 in",
      "kernel panic:", "kernel stack overflow", "panic:", "rust_kernel panicked",
      "stack segment fault in", "trusty:", "unregister_netdevice: waiting for DEV to become free"),
     "DoS"),
    (("unexpected kernel reboot",), "REBOOT"),
    (("SYZFAIL", "SYZFATAL:"), "SYZ_FAILURE"),
    (("hardware error:",), "HARDWARE"),
    (("out of memory:",), "OOM"),
    # defaults
    (("WARNING:",), "WARNING"),
    (("BUG:",), "UNKNOWN"),
    (("INFO:",), "UNKNOWN"),
    (("KASAN:",), "KASAN-UNKNOWN"),
    (("KFENCE:",), "KFENCE-UNKNOWN"),
    (("KMSAN:",), "KMSAN-UNKNOWN"),
    (("UBSAN:",), "UBSAN"),
    (("KCSAN:",), "KCSAN-UNKNOWN"),
)


def title_to_type(title: str) -> str:
    for prefixes, typ in TITLE_TO_TYPE:
        if title.startswith(prefixes):
            return typ
    return "UNKNOWN"


_ERROR_TYPES = ("DoS", "BUG", "NULL-POINTER-DEREFERENCE", "HANG", "HARDWARE")
_ERROR_PREFIXES = ("MEMORY_SAFETY_", "KASAN-", "KFENCE-", "KMSAN-")
INFO_TYPES = ("OOM",)
# every type title_to_type() can return
CRASH_TYPES = frozenset(t for _, t in TITLE_TO_TYPE) | {"UNKNOWN"}

# Types from other producers (alert tests, older stores): keywords of the same
# vocabulary, searched in the lower-cased type, first match wins; else error.
KEYWORD_SEVERITY = tuple((re.compile(p), s) for p, s in (
    (r"panic", "critical"),
    (r"warn", "warning"),
    (r"reboot", "warning"),      # hosts/reboots.py: a lost crash, a low default
    (r"soft.?lockup|hung.?task|rcu|stall|oom|out.of.memory|lockdep|possible.*deadlock", "warning"),
    (r"oops|bug|gpf|general.protection|kasan|kmsan|kcsan|ubsan|fault|divide|invalid.opcode"
     r"|stack.?protector|corrupt|bad.page|refcount|internal.error|unable.to.handle|null"
     r"|paging|hard.?lockup|lockup", "error"),
))


def severity(type_: str, panicked: bool = False, title: str = "") -> str:
    """critical / error / warning / info (see the module docstring). An UNKNOWN
    type whose title is a "BUG:" (bad page state, stack guard page ...) is an error.
    A type outside CRASH_TYPES is mapped by KEYWORD_SEVERITY."""
    if panicked:
        return "critical"
    if type_ not in CRASH_TYPES:
        t = (type_ or "").lower()
        for pattern, sev in KEYWORD_SEVERITY:
            if pattern.search(t):
                return sev
        return "error"
    if type_ in INFO_TYPES:
        return "info"
    if type_ in _ERROR_TYPES or type_.startswith(_ERROR_PREFIXES):
        return "error"
    if type_ == "UNKNOWN" and title.startswith("BUG:"):
        return "error"
    return "warning"
