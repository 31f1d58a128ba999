"""Crash-report detector: handwritten reports of each kind, streaming, timers."""

import textwrap

import pytest

from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.reports import (Detector, DetectorLimits, parse_console_line, severity,
                                         title_to_type)
from syslogng_netconsole.reports.titles import normalize


def rep(s):
    return textwrap.dedent(s).strip("\n").split("\n")


def whole(lines, host="10.0.0.1"):
    d = Detector()
    d.feed(Record(host=host, text="\n".join(lines)), 0.0)
    d.flush(0.0)
    assert d.errors == 0
    return d.incidents()


def streamed(lines, host="10.0.0.1", step=0.01):
    d = Detector()
    now = 0.0
    for line in lines:
        ts, caller, text = parse_console_line(line)
        d.feed(Record(host=host, text=text, ts_us=ts, caller=caller), now)
        d.expire(now)
        now += step
    d.flush(now)
    assert d.errors == 0
    return d.incidents()


# --- handwritten reports -------------------------------------------------------

OOPS_NULL_PANIC = rep("""
    [   50.100000] BUG: kernel NULL pointer dereference, address: 0000000000000000
    [   50.100001] #PF: supervisor read access in kernel mode
    [   50.100002] #PF: error_code(0x0000) - not-present page
    [   50.100003] PGD 0 P4D 0
    [   50.100004] Oops: Oops: 0000 [#1] PREEMPT SMP PTI
    [   50.100005] CPU: 1 UID: 0 PID: 1234 Comm: insmod Tainted: G           O       6.12.0-amd64 #1 Debian 6.12.1-1
    [   50.100006] Tainted: [O]=OOT_MODULE
    [   50.100007] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
    [   50.100008] RIP: 0010:crashme_init+0x15/0x30 [crashme]
    [   50.100009] Code: 90 90 90 90 0f 1f 44 00 00 55 48 89 e5 <8b> 04 25 00 00 00 00 5d c3
    [   50.100010] RSP: 0018:ffffc90000abbc98 EFLAGS: 00010246
    [   50.100011] RAX: 0000000000000000 RBX: ffffffffc0a01000 RCX: 0000000000000000
    [   50.100012] Call Trace:
    [   50.100013]  <TASK>
    [   50.100014]  ? __die+0x23/0x70
    [   50.100015]  ? page_fault_oops+0x171/0x4e0
    [   50.100016]  ? exc_page_fault+0x7f/0x180
    [   50.100017]  ? asm_exc_page_fault+0x26/0x30
    [   50.100018]  ? crashme_init+0x15/0x30 [crashme]
    [   50.100019]  do_one_initcall+0x5b/0x320
    [   50.100020]  do_init_module+0x60/0x240
    [   50.100021]  __do_sys_finit_module+0x2ae/0x310
    [   50.100022]  do_syscall_64+0x82/0x170
    [   50.100023]  entry_SYSCALL_64_after_hwframe+0x76/0x7e
    [   50.100024] RIP: 0033:0x7f0e8b6f3719
    [   50.100025]  </TASK>
    [   50.100026] Modules linked in: crashme(O+) nls_ascii virtio_net
    [   50.100027] CR2: 0000000000000000
    [   50.100028] ---[ end trace 0000000000000000 ]---
    [   50.100029] RIP: 0010:crashme_init+0x15/0x30 [crashme]
    [   50.100030] Code: 90 90 90 90 0f 1f 44 00 00 55 48 89 e5 <8b> 04 25 00 00 00 00 5d c3
    [   50.100031] RSP: 0018:ffffc90000abbc98 EFLAGS: 00010246
    [   50.100032] Kernel panic - not syncing: Fatal exception
    [   50.100033] Kernel Offset: disabled
    [   50.100034] ---[ end Kernel panic - not syncing: Fatal exception ]---
""")

# Same oops without panic_on_oops: end trace, executive summary, normal life.
OOPS_NULL = OOPS_NULL_PANIC[:32] + rep("""
    [   51.000000] systemd-journald[201]: Received SIGTERM
    [   52.000000] e1000: eth0 NIC Link is Up 1000 Mbps Full Duplex
""")

KERNEL_BUG = rep("""
    ------------[ cut here ]------------
    kernel BUG at fs/ext4/inode.c:1234!
    Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
    CPU: 0 UID: 0 PID: 77 Comm: kworker/u8:2 Not tainted 6.12.0 #1 PREEMPT(voluntary)
    Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2 04/01/2014
    Workqueue: writeback wb_workfn (flush-8:0)
    RIP: 0010:ext4_writepages+0x1234/0x1300
    Code: 0f 0b 48 8b 45 00 <0f> 0b
    RSP: 0018:ffffc9000044fb28 EFLAGS: 00010246
    Call Trace:
     <TASK>
     do_writepages+0x7b/0x270
     __writeback_single_inode+0x3d/0x360
     writeback_sb_inodes+0x1f3/0x4b0
     wb_workfn+0x2a5/0x460
     process_one_work+0x17b/0x330
     worker_thread+0x2ce/0x3f0
     kthread+0xd2/0x100
     ret_from_fork+0x34/0x50
     </TASK>
    Modules linked in: ext4 crc16 mbcache jbd2
    ---[ end trace 0000000000000000 ]---
""")

WARNING_CPU = rep("""
    ------------[ cut here ]------------
    WARNING: CPU: 2 PID: 880 at drivers/net/foo/bar.c:321 bar_xmit+0x9c/0xb0 [bar]
    Modules linked in: bar(E)
    CPU: 2 PID: 880 Comm: ping Tainted: G            E      6.1.0-18-amd64 #1  Debian 6.1.76-1
    Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2 04/01/2014
    RIP: 0010:bar_xmit+0x9c/0xb0 [bar]
    Code: 00 00 e8 00 00 00 00 <0f> 0b eb d1
    RSP: 0018:ffffb2a840bbf8d8 EFLAGS: 00010246
    Call Trace:
     <TASK>
     ? __warn+0x7d/0xc0
     ? bar_xmit+0x9c/0xb0 [bar]
     ? report_bug+0xe2/0x150
     dev_hard_start_xmit+0x63/0x1d0
     __dev_queue_xmit+0x26e/0xd80
     ip_finish_output2+0x28d/0x540
     </TASK>
    ---[ end trace 0000000000000000 ]---
""")

# 2025 first-line forms (tip core/bugs): file:line first, optional [condition].
WARNING_2025 = rep("""
    ------------[ cut here ]------------
    WARNING: drivers/net/foo/bar.c:321 at bar_xmit+0x9c/0xb0 [bar], CPU#2: ping/880
    Modules linked in: bar(E)
    CPU: 2 UID: 0 PID: 880 Comm: ping Tainted: G            E      6.18.0 #1 PREEMPT(full)
    RIP: 0010:bar_xmit+0x9c/0xb0 [bar]
    Call Trace:
     <TASK>
     dev_hard_start_xmit+0x63/0x1d0
     __dev_queue_xmit+0x26e/0xd80
     </TASK>
    ---[ end trace 0000000000000000 ]---
""")
WARNING_2026_COND = [WARNING_2025[0], "WARNING: [!skb] drivers/net/foo/bar.c:321 at "
                     "bar_xmit+0x9c/0xb0 [bar], CPU#2: ping/880"] + WARNING_2025[2:]
WARNING_OLD = rep("""
    ------------[ cut here ]------------
    WARNING: at net/sched/sch_generic.c:261 dev_watchdog+0x1f4/0x200()
    Modules linked in: e1000
    Pid: 0, comm: swapper Not tainted 2.6.32-431.el6.x86_64 #1
    Call Trace:
     <IRQ>  [<ffffffff8106e2e7>] ? warn_slowpath_common+0x87/0xc0
     [<ffffffff8106e3d6>] warn_slowpath_fmt+0x46/0x50
     [<ffffffff8146f9f4>] dev_watchdog+0x1f4/0x200
     [<ffffffff81081234>] run_timer_softirq+0x197/0x340
    ---[ end trace a7919e7f17c0a725 ]---
""")

GPF = rep("""
    general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN
    KASAN: null-ptr-deref in range [0x0000000000000018-0x000000000000001f]
    CPU: 0 PID: 13544 Comm: mount Not tainted 6.0.0 #0
    Hardware name: Google Google Compute Engine/Google Compute Engine, BIOS Google 09/22/2022
    RIP: 0010:__lock_acquire+0x1112/0x1f60
    RSP: 0000:ffffc90004cd7828 EFLAGS: 00010006
    Call Trace:
     <TASK>
     lock_acquire+0x182/0x3c0
     _raw_spin_lock+0x2a/0x40
     iput+0x85/0x760
     ntfs_fill_super+0x3af3/0x42a0
     get_tree_bdev+0x400/0x620
     vfs_get_tree+0x88/0x270
     </TASK>
    Modules linked in:
    ---[ end trace 0000000000000000 ]---
""")

KASAN = rep("""
    ==================================================================
    BUG: KASAN: slab-use-after-free in foo_release+0x12/0x40
    Read of size 8 at addr ffff888012345678 by task bar/123

    CPU: 0 PID: 123 Comm: bar Not tainted 6.6.0 #1
    Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
    Call Trace:
     <TASK>
     dump_stack_lvl+0x4a/0x80
     print_report+0xcf/0x630
     kasan_report+0xd8/0x110
     foo_release+0x12/0x40
     __fput+0xfa/0x2c0
     task_work_run+0x59/0x90
     </TASK>

    Allocated by task 120:
     kasan_save_stack+0x20/0x40
     foo_open+0x30/0x90

    Freed by task 121:
     kfree+0x9a/0x1c0
     foo_close+0x22/0x50

    The buggy address belongs to the object at ffff888012345600
    ==================================================================
""")

UBSAN = rep("""
    ================================================================================
    UBSAN: array-index-out-of-bounds in drivers/foo/bar.c:123:45
    index 5 is out of range for type 'int [4]'
    CPU: 1 PID: 1 Comm: swapper/0 Not tainted 6.1.0 #1
    Call Trace:
     <TASK>
     dump_stack_lvl+0x44/0x5c
     ubsan_epilogue+0x5/0x40
     __ubsan_handle_out_of_bounds+0x93/0xb0
     bar_probe+0x1ff/0x220
     really_probe+0xde/0x380
     </TASK>
    ================================================================================
""")

LOCKDEP = rep("""
    ======================================================
    WARNING: possible circular locking dependency detected
    6.1.0 #1 Not tainted
    ------------------------------------------------------
    kworker/0:1/12 is trying to acquire lock:
    ffff888003f0c0b8 (&dev->mutex){+.+.}-{3:3}, at: foo_work+0x20/0x80

    but task is already holding lock:
    ffff888003f0d0b8 (&bar->lock){+.+.}-{3:3}, at: bar_do+0x10/0x50

    which lock already depends on the new lock.

    the existing dependency chain (in reverse order) is:

    -> #1 (&bar->lock){+.+.}-{3:3}:
           lock_acquire+0xc8/0x2a0
           __mutex_lock+0x8c/0x8a0
           bar_do+0x10/0x50

    stack backtrace:
    CPU: 0 PID: 12 Comm: kworker/0:1 Not tainted 6.1.0 #1
    Call Trace:
     <TASK>
     dump_stack_lvl+0x49/0x63
     check_noncircular+0xfe/0x110
     __lock_acquire+0x1218/0x1e80
     lock_acquire+0xc8/0x2a0
     foo_work+0x20/0x80
     process_one_work+0x1c7/0x380
     </TASK>
""")

SOFT_LOCKUP = rep("""
    watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:1234]
    Modules linked in: spin(O)
    CPU: 1 PID: 1234 Comm: spin Tainted: G           O L     6.1.0 #1
    Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
    RIP: 0010:spin_forever+0x10/0x20 [spin]
    Code: 00 00 eb fe
    RSP: 0018:ffffc90000a3fe00 EFLAGS: 00000246
    Call Trace:
     <TASK>
     spin_write+0x30/0x50 [spin]
     vfs_write+0xe0/0x3f0
     ksys_write+0x6b/0xf0
     do_syscall_64+0x58/0xc0
     entry_SYSCALL_64_after_hwframe+0x64/0xce
     </TASK>
""")

HARD_LOCKUP = rep("""
    NMI watchdog: Watchdog detected hard LOCKUP on cpu 2
    Modules linked in: foo
    CPU: 2 PID: 0 Comm: swapper/2 Not tainted 6.1.0 #1
    RIP: 0010:native_queued_spin_lock_slowpath+0x5a/0x1e0
    Call Trace:
     <IRQ>
     _raw_spin_lock+0x2a/0x40
     foo_timer_fn+0x20/0x60 [foo]
     call_timer_fn+0x27/0x130
     __run_timers+0x1e4/0x290
     </IRQ>
""")

HUNG_TASK = rep("""
    INFO: task kworker/u8:1:56 blocked for more than 122 seconds.
          Not tainted 6.1.0 #1
    "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
    task:kworker/u8:1    state:D stack:0     pid:56    ppid:2      flags:0x00004000
    Workqueue: events_unbound foo_worker
    Call Trace:
     <TASK>
     __schedule+0x2a4/0x8a0
     schedule+0x5d/0xe0
     schedule_preempt_disabled+0x14/0x30
     __mutex_lock.constprop.0+0x3a6/0x6a0
     foo_worker+0x25/0x60
     process_one_work+0x1c7/0x380
     </TASK>
""")

RCU_STALL = rep("""
    rcu: INFO: rcu_sched self-detected stall on CPU
    rcu: 	1-....: (21000 ticks this GP) idle=b12/1/0x4000000000000002 softirq=1/1 fqs=5249
    	(t=21000 jiffies g=12345 q=678)
    NMI backtrace for cpu 1
    CPU: 1 PID: 321 Comm: loop Not tainted 5.10.0 #1
    Call Trace:
     <IRQ>
     dump_stack+0x6d/0x88
     nmi_cpu_backtrace.cold+0x30/0x70
     rcu_sched_clock_irq.cold+0x2c1/0x4e9
     update_process_times+0x8c/0xc0
     tick_sched_timer+0x38/0x70
     __hrtimer_run_queues+0x104/0x270
     hrtimer_interrupt+0x101/0x220
     __sysvec_apic_timer_interrupt+0x5c/0xd0
     </IRQ>
     sysvec_apic_timer_interrupt+0x6d/0x90
     asm_sysvec_apic_timer_interrupt+0x12/0x20
    RIP: 0010:loop_forever+0x10/0x20 [loopmod]
    Code: 00 00 eb fe
    RSP: 0018:ffffc90000a3fe00 EFLAGS: 00000246
     loop_write+0x30/0x50 [loopmod]
     vfs_write+0xe0/0x3f0
     ksys_write+0x6b/0xf0
""")

OOM_KILL = rep("""
    stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
    CPU: 0 PID: 999 Comm: stress Not tainted 6.1.0 #1
    Call Trace:
     <TASK>
     dump_stack_lvl+0x44/0x5c
     dump_header+0x4a/0x211
     oom_kill_process.cold+0xb/0x10
     out_of_memory+0x1ed/0x2e0
     </TASK>
    Mem-Info:
    active_anon:1 inactive_anon:2 isolated_anon:0
    Out of memory: Killed process 999 (stress) total-vm:1234kB, anon-rss:1000kB
""")

ARM64_NULL = rep("""
    Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000
    Mem abort info:
      ESR = 0x0000000096000005
      EC = 0x25: DABT (current EL), IL = 32 bits
    Data abort info:
      ISV = 0, ISS = 0x00000005
    [0000000000000000] user address but active_mm is swapper
    Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP
    Modules linked in: crashme(O)
    CPU: 3 PID: 1 Comm: swapper/0 Tainted: G           O       6.1.0 #1
    Hardware name: linux,dummy-virt (DT)
    pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
    pc : crashme_init+0x14/0x30 [crashme]
    lr : do_one_initcall+0x60/0x1e0
    sp : ffff80000a3bbb60
    x29: ffff80000a3bbb60 x28: 0000000000000000 x27: 0000000000000000
    Call trace:
     crashme_init+0x14/0x30 [crashme]
     do_one_initcall+0x60/0x1e0
     do_init_module+0x50/0x1f0
     load_module+0x1d8c/0x2170
    Code: d2800000 d65f03c0 d503233f a9bf7bfd (b9400000)
    ---[ end trace 0000000000000000 ]---
""")

ARM64_INTERNAL = rep("""
    Internal error: synchronous external abort: 0000000096000210 [#1] PREEMPT SMP
    Modules linked in:
    CPU: 0 PID: 100 Comm: cat Not tainted 6.1.0 #1
    pc : regmap_mmio_read32le+0x10/0x30
    lr : regmap_mmio_read+0x44/0x70
    Call trace:
     regmap_mmio_read32le+0x10/0x30
     regmap_mmio_read+0x44/0x70
     _regmap_read+0x6c/0x1a0
     regmap_read+0x44/0x70
    Code: 91002021 8b010001 b9400020 d50331bf (d65f03c0)
    ---[ end trace 0000000000000000 ]---
""")

PANIC_ON_WARN = WARNING_CPU[:-1] + rep("""
    Kernel panic - not syncing: kernel: panic_on_warn set ...
    CPU: 2 PID: 880 Comm: ping Tainted: G            E      6.1.0-18-amd64 #1  Debian 6.1.76-1
    Call Trace:
     <TASK>
     dump_stack_lvl+0x44/0x5c
     panic+0x118/0x2ed
     check_panic_on_warn.cold+0x19/0x19
     __warn+0x7d/0xc0
     bar_xmit+0x9c/0xb0 [bar]
     </TASK>
    Kernel Offset: disabled
    Rebooting in 86400 seconds..
""")

HUNG_TASK_PANIC = HUNG_TASK + rep("""
    NMI backtrace for cpu 0
    Sending NMI from CPU 0 to CPUs 1:
    Kernel panic - not syncing: hung_task: blocked tasks
    CPU: 0 PID: 30 Comm: khungtaskd Not tainted 6.1.0 #1
    Kernel Offset: disabled
    ---[ end Kernel panic - not syncing: hung_task: blocked tasks ]---
""")

SYSRQ_DUMPS = rep("""
    sysrq: Show State
    task:systemd         state:S stack:0     pid:1     ppid:0      flags:0x00000002
    Call Trace:
     <TASK>
     __schedule+0x34d/0x9e0
     schedule+0x5a/0xd0
     schedule_hrtimeout_range_clock+0xa5/0x120
     do_epoll_wait+0x4b5/0x820
     </TASK>
    sysrq: Show backtrace of all active CPUs
    NMI backtrace for cpu 0
    CPU: 0 PID: 0 Comm: swapper/0 Not tainted 6.1.0 #1
    Call Trace:
     <IRQ>
     dump_stack_lvl+0x44/0x5c
     nmi_cpu_backtrace.cold+0x30/0x70
     </IRQ>
    Sending NMI from CPU 0 to CPUs 1:
    NMI backtrace for cpu 1 skipped: idling at default_idle+0xe/0x20
    sysrq: Show Memory
    Mem-Info:
    active_anon:1 inactive_anon:2 isolated_anon:0
    sysrq: Show Blocked State
    task:kworker/0:2     state:D stack:0     pid:99    ppid:2      flags:0x00004000
    Call Trace:
     <TASK>
     __schedule+0x34d/0x9e0
     schedule+0x5a/0xd0
     </TASK>
""")

CASES = [
    # name, lines, title, type, panicked, corrupted
    ("oops-null-panic", OOPS_NULL_PANIC,
     "BUG: unable to handle kernel NULL pointer dereference in crashme_init",
     "NULL-POINTER-DEREFERENCE", True, False),
    ("oops-null", OOPS_NULL,
     "BUG: unable to handle kernel NULL pointer dereference in crashme_init",
     "NULL-POINTER-DEREFERENCE", False, False),
    ("kernel-bug", KERNEL_BUG, "kernel BUG in ext4_writepages", "BUG", False, False),
    ("warning-cpu", WARNING_CPU, "WARNING in bar_xmit", "WARNING", False, False),
    ("warning-2025", WARNING_2025, "WARNING in bar_xmit", "WARNING", False, False),
    ("warning-2026-cond", WARNING_2026_COND, "WARNING in bar_xmit", "WARNING", False, False),
    ("warning-old", WARNING_OLD, "WARNING in dev_watchdog", "WARNING", False, False),
    ("gpf", GPF, "general protection fault in ntfs_fill_super", "DoS", False, False),
    ("kasan", KASAN, "KASAN: slab-use-after-free Read in foo_release",
     "KASAN-USE-AFTER-FREE-READ", False, False),
    ("ubsan", UBSAN, "UBSAN: array-index-out-of-bounds in bar_probe", "MEMORY_SAFETY_UBSAN",
     False, False),
    ("lockdep", LOCKDEP, "possible deadlock in foo_work", "LOCKDEP", False, False),
    ("soft-lockup", SOFT_LOCKUP, "BUG: soft lockup in spin_write", "HANG", False, False),
    ("hard-lockup", HARD_LOCKUP, "BUG: hard lockup in foo_timer_fn", "HANG", False, False),
    ("hung-task", HUNG_TASK, "INFO: task hung in foo_worker", "HANG", False, False),
    ("rcu-stall", RCU_STALL, "INFO: rcu detected stall in loop_write", "HANG", False, False),
    ("oom-kill", OOM_KILL, "out of memory: stress invoked oom-killer", "OOM", False, False),
    ("arm64-null", ARM64_NULL,
     "BUG: unable to handle kernel NULL pointer dereference in crashme_init",
     "NULL-POINTER-DEREFERENCE", False, False),
    ("arm64-internal", ARM64_INTERNAL, "Internal error in regmap_mmio_read32le", "DoS",
     False, False),
    ("panic-on-warn", PANIC_ON_WARN, "WARNING in bar_xmit", "WARNING", True, False),
    ("hung-task-panic", HUNG_TASK_PANIC, "INFO: task hung in foo_worker", "HANG", True, False),
]


@pytest.mark.parametrize("name,lines,title,type_,panicked,corrupted", CASES,
                         ids=[c[0] for c in CASES])
def test_kinds(name, lines, title, type_, panicked, corrupted):
    incs = whole(lines)
    assert [(i.title, i.type, i.panicked, i.corrupted) for i in incs] == \
        [(title, type_, panicked, corrupted)], "\n".join(i.text for i in incs)
    inc = incs[0]
    assert len(inc.title) <= 120
    assert inc.first_line and inc.first_line in inc.text
    assert inc.signature and len(inc.signature) == 20


@pytest.mark.parametrize("name,lines", [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES])
def test_streamed_equals_whole(name, lines):
    def key(incs):
        return [(i.title, i.type, i.panicked, i.corrupted, i.text) for i in incs]
    assert key(streamed(lines)) == key(whole(lines))


def test_sysrq_dumps_are_not_incidents():
    assert whole(SYSRQ_DUMPS) == []
    assert streamed(SYSRQ_DUMPS) == []


def test_benign_lines_are_not_incidents():
    lines = [
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
        "ODEBUG: Out of memory. ODEBUG disabled",
        "traps: a.out[123] general protection fault ip:401136 sp:7ffd error:0 in a.out[401000+1000]",
        "INFO: lockdep is turned off.",
        "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
        "EXT4-fs (sda1): WARNING: mounting fs with errors, running e2fsck is recommended",
        "skbuff: skb_over_panic: text:ffffffff len:1 put:1",
    ]
    assert whole(lines) == []


def test_oops_fields():
    inc = whole(OOPS_NULL_PANIC)[0]
    assert inc.host == "10.0.0.1"
    assert (inc.cpu, inc.pid, inc.comm) == (1, 1234, "insmod")
    assert inc.taint == "GO"
    assert inc.release == "6.12.0-amd64"
    assert inc.hardware.startswith("QEMU Standard PC (i440FX + PIIX, 1996)")
    assert inc.pc == "crashme_init+0x15/0x30 [crashme]"
    assert inc.modules == ["crashme", "nls_ascii", "virtio_net"]
    assert inc.frames[:3] == ["do_one_initcall", "do_init_module", "__do_sys_finit_module"]
    assert "__die" not in inc.frames
    assert inc.first_ts_us == 50100000 and inc.last_ts_us == 50100034
    assert inc.alt_titles == ["bad-access in crashme_init"]
    assert inc.first_line.startswith("BUG: kernel NULL pointer dereference")
    assert inc.text.split("\n")[-1].startswith("---[ end Kernel panic")
    assert severity(inc.type, inc.panicked) == "critical"
    assert severity(whole(OOPS_NULL)[0].type) == "error"
    assert severity("WARNING") == "warning" and severity("OOM") == "info"
    assert severity("UNKNOWN", title="BUG: Bad page state in f") == "error"
    assert severity("UNKNOWN", title="INFO: trying to register non-static key in f") == "warning"


def test_signature_stable_across_hosts_addresses_pids_times():
    a = whole(GPF, host="10.0.0.1")[0]
    other = [ln.replace("13544", "999").replace("0xdffffc0000000003", "0xdffffc0000000007")
             .replace("+0x3af3/0x42a0", "+0x1234/0x5000").replace("ffffc90004cd7828", "ffffc90001111111")
             for ln in GPF]
    b = whole(["[  123.456789] " + ln for ln in other], host="192.168.1.9")[0]
    assert a.signature == b.signature and a.title == b.title
    assert a.id != b.id
    assert a.signature != whole(KASAN)[0].signature


def test_executive_summary_and_panic_after_end_trace_belong_to_the_oops():
    incs = streamed(OOPS_NULL_PANIC)
    assert len(incs) == 1 and incs[0].panicked
    assert "Kernel Offset: disabled" in incs[0].text


def test_timer_ends_a_report_without_end_marker():
    d = Detector()
    now = 100.0
    for line in HUNG_TASK:
        d.feed(Record(host="10.0.0.2", text=line), now)
        now += 0.001
    d.expire(now + 1.0)
    assert d.incidents() == []              # still within the quiet timeout
    deadline = d.next_deadline()
    assert deadline is not None and now < deadline <= now + DetectorLimits().quiet_seconds
    d.expire(deadline)
    incs = d.incidents()
    assert [i.title for i in incs] == ["INFO: task hung in foo_worker"]
    assert d.next_deadline() is None


def test_grace_period_ends_on_the_timer_after_end_trace():
    d = Detector()
    for i, line in enumerate(OOPS_NULL_PANIC[:29]):   # up to and including ---[ end trace
        d.feed(Record(host="10.0.0.3", text=line), 10.0 + i * 0.001)
    last = 10.0 + 28 * 0.001
    grace = DetectorLimits().grace_seconds
    d.expire(last + grace - 0.01)
    assert d.incidents() == []
    # a line that still belongs to the report (the register summary) restarts the grace
    d.feed(Record(host="10.0.0.3", text=OOPS_NULL_PANIC[29]), last + 0.1)
    d.expire(last + grace + 0.01)
    assert d.incidents() == []
    d.expire(last + 0.1 + grace)
    incs = d.incidents()
    assert len(incs) == 1 and not incs[0].panicked and not incs[0].truncated
    assert incs[0].text.endswith("RIP: 0010:crashme_init+0x15/0x30 [crashme]")


def test_new_report_ends_the_previous_one():
    incs = whole(WARNING_CPU + GPF)
    assert [i.title for i in incs] == ["WARNING in bar_xmit",
                                       "general protection fault in ntfs_fill_super"]
    assert incs[0].line_no < incs[1].line_no


def test_line_cap_truncates():
    d = Detector(DetectorLimits(max_lines=20))
    d.feed(Record(host="h", text="\n".join(HUNG_TASK + [" filler+0x1/0x2"] * 50)), 0.0)
    d.flush(1.0)
    incs = d.incidents()
    assert len(incs) == 1 and incs[0].truncated
    assert len(incs[0].text.split("\n")) == 20


def _ext_records(lines, host="10.0.0.9", gap_at=None):
    seq = 100
    out = []
    for i, line in enumerate(lines):
        lost = 0
        if gap_at is not None and i == gap_at:
            seq += 3
            lost = 3
        out.append(Record(host=host, text=line, format=EXTENDED, seq=seq, ts_us=5000000 + i,
                          lost_before=lost, dst_port=6666))
        seq += 1
    return out


def test_extended_records_and_seq_gap_mark_the_incident():
    d = Detector()
    for r in _ext_records(KERNEL_BUG):
        d.feed(r, 1.0)
    d.flush(2.0)
    ok = d.incidents()[0]
    assert not ok.corrupted and not ok.truncated and ok.first_seq == 101 and ok.last_seq == 121
    d = Detector()
    for r in _ext_records(KERNEL_BUG, gap_at=12):
        d.feed(r, 1.0)
    d.flush(2.0)
    bad = d.incidents()[0]
    assert bad.title == ok.title
    assert bad.corrupted and bad.truncated and bad.lost_records == 3


def test_incomplete_record_marks_corrupted():
    d = Detector()
    recs = _ext_records(WARNING_CPU)
    recs[5].incomplete = True
    for r in recs:
        d.feed(r, 1.0)
    d.flush(1.0)
    assert d.incidents()[0].corrupted


def test_reboot_closes_open_reports():
    d = Detector()
    for line in HUNG_TASK:
        d.feed(Record(host="h", text=line, boot=0), 1.0)
    d.feed(Record(host="h", text="Linux version 6.1.0 (gcc)", boot=1), 2.0)
    assert len(d.incidents()) == 1


def test_hundred_hosts_interleaved():
    d = Detector()
    per_host = {}
    for h in range(100):
        per_host["10.1.0.%d" % h] = [ln.replace("Comm: insmod", "Comm: host%d" % h)
                                     for ln in OOPS_NULL_PANIC]
    now = 0.0
    for i in range(len(OOPS_NULL_PANIC)):
        for host, lines in per_host.items():
            ts, caller, text = parse_console_line(lines[i])
            d.feed(Record(host=host, text=text, ts_us=ts, caller=caller), now)
        d.expire(now)
        now += 0.001
    d.flush(now)
    incs = d.incidents()
    assert len(incs) == 100
    assert sorted(i.host for i in incs) == sorted(per_host)
    for inc in incs:
        n = inc.host.rsplit(".", 1)[1]
        assert inc.comm == "host%s" % n
        assert all(("Comm: host" not in ln) or ("Comm: host%s " % n in ln)
                   for ln in inc.text.split("\n"))
        assert inc.title == CASES[0][2] and inc.panicked
    assert len({i.signature for i in incs}) == 1


def test_interleaved_caller_contexts_on_one_host():
    a = ["[   10.%06d][ T100] %s" % (i, ln) for i, ln in enumerate(WARNING_CPU)]
    b = ["[   10.%06d][ T200] %s" % (i, ln) for i, ln in enumerate(GPF)]
    mixed = [x for pair in zip(a, b) for x in pair] + a[len(b):] + b[len(a):]
    titles = sorted(i.title for i in whole(mixed))
    assert titles == ["WARNING in bar_xmit", "general protection fault in ntfs_fill_super"]


def test_bad_input_never_raises():
    d = Detector()
    d.feed(None, 0.0)
    d.feed(Record(host="h", text="\x00\xff" * 5000 + "BUG: \x00\x01" + "A" * 100000), 0.0)
    d.feed(Record(host="h", text="\n" * 1000), 0.0)
    d.expire(1e9)
    d.flush(1e9)
    assert d.errors == 1          # the None record, counted
    for inc in d.incidents():
        assert len(inc.title) <= 120
        assert all(0x20 <= ord(c) < 0x7f for c in inc.title)


def test_title_normalisation():
    assert normalize("WARNING in foo+0x12/0x340 at ffffffff81234567 pid 1234") == \
        "WARNING in foo at ADDR pid NUM"
    assert normalize("BUG: bad in syz-executor.3/12345 on 10.1.2.3") == \
        "BUG: bad in syz-executor on IP"
    assert normalize("kernel BUG at fs/ext4/inode.c:1234!") == "kernel BUG at fs/ext4/inode.c:LINE!"
    assert normalize("x\tpanic\x07 " + "y" * 200) == "x panic " + "y" * 111
    assert normalize("in cfg80211_foo CPU#3") == "in cfg80211_foo CPU"


def test_title_to_type_table():
    assert title_to_type("KASAN: use-after-free Read in f") == "KASAN-USE-AFTER-FREE-READ"
    assert title_to_type("WARNING: refcount bug in f") == "REFCOUNT_WARNING"
    assert title_to_type("possible deadlock in f") == "LOCKDEP"
    assert title_to_type("kernel panic: Fatal exception") == "DoS"
    assert title_to_type("BUG: something new") == "UNKNOWN"
    assert title_to_type("something else") == "UNKNOWN"


@pytest.mark.parametrize("line,expected", [
    ("[   12.345678] BUG: x", (12345678, None, "BUG: x")),
    ("[   12.345678][ T123] BUG: x", (12345678, "T123", "BUG: x")),
    ("[    1.000001][    C1] y", (1000001, "C1", "y")),
    ("<4>[   12.3] WARNING: y", (12300000, None, "WARNING: y")),
    ("<6>plain", (None, None, "plain")),
    ("[    T42] tagged", (None, "T42", "tagged")),
    ("no prefix", (None, None, "no prefix")),
    (" [<ffffffff81000000>] f+0x1/0x2", (None, None, " [<ffffffff81000000>] f+0x1/0x2")),
    ("[<ffffffff81000000>] f+0x1/0x2", (None, None, "[<ffffffff81000000>] f+0x1/0x2")),
    ("syzkaller login: [   10.000000] BUG: x", (10000000, None, "BUG: x")),
    ("[   10.000000] ", (10000000, None, "")),
    ("", (None, None, "")),
])
def test_parse_console_line(line, expected):
    assert parse_console_line(line) == expected


HOSTILE = {
    # repeated header literals inside a report feed multi-line patterns
    "held-lock": ["BUG: held lock freed!"] + ["DEBUG: BUG: held lock freed! " + "[<ffff>]" * 100] * 999,
    "rcu-src": ["INFO: suspicious RCU usage"] +
               ["_INFO: INFO: suspicious RCU usage " + "a/" * 450] * 999,
    "lockdep": ["WARNING: possible circular locking dependency detected"] +
               ["xlog_status: WARNING: possible circular locking dependency detected " +
                "is trying to acquire lock" * 30] * 999,
    "long-line": ["BUG: " + "A" * 200000],
    "warn-at": ["WARNING: " + " at" * 5000],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_reports_take_bounded_time(name):
    import time
    t = time.perf_counter()
    incs = whole(HOSTILE[name])
    # the regex engine backtracks: lines are capped and multi-line patterns bounded
    assert time.perf_counter() - t < 5.0
    assert incs and all(len(i.title) <= 120 for i in incs)


def test_other_tasks_chatter_does_not_keep_a_tagged_report_open():
    d = Detector()
    now = 0.0
    for i, line in enumerate(HUNG_TASK):
        d.feed(Record(host="h", text=line, ts_us=1000 + i, caller="T30"), now)
        now += 0.001
    last = now
    while now < last + 20:
        now += 0.5
        d.feed(Record(host="h", text="eth0: link up", ts_us=int(now * 1e6), caller="T99"), now)
        d.expire(now)
        if d.incidents():
            break
    assert last + DetectorLimits().quiet_seconds <= now < last + DetectorLimits().quiet_seconds + 1


@pytest.mark.parametrize("die_line,title", [
    # 6.10+ prefixes x86 die lines with "Oops: "
    ("Oops: general protection fault, probably for non-canonical address 0xdead000000000122: "
     "0000 [#1] PREEMPT SMP NOPTI", "general protection fault in foo_del"),
    ("Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI", "divide error in foo_del"),
    ("Oops: int3: 0000 [#1] PREEMPT SMP NOPTI", "int3 in foo_del"),
    ("Oops: stack segment: 0000 [#1] PREEMPT SMP NOPTI", "stack segment fault in foo_del"),
])
def test_recent_die_line_forms(die_line, title):
    lines = [die_line] + rep("""
        CPU: 3 UID: 0 PID: 412 Comm: foo Not tainted 6.12.0 #1 PREEMPT(voluntary)
        Tainted: [W]=WARN
        Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2 04/01/2014
        RIP: 0010:foo_del+0x1c/0x40 [foo]
        Call Trace:
         <TASK>
         foo_ioctl+0x5e/0x90 [foo]
         __x64_sys_ioctl+0x94/0xd0
         do_syscall_64+0x82/0x190
         </TASK>
        ---[ end trace 0000000000000000 ]---
    """)
    incs = whole(lines)
    assert [(i.title, i.type) for i in incs] == [(title, "DoS")]
    assert incs[0].cpu == 3 and incs[0].release == "6.12.0"


@pytest.mark.parametrize("mangled,plain", [
    ("_RNvMs0_NtCshgDM7dBCdno_11rust_binder4nodeNtB5_4Node22update_refcount_locked",
     "<rust_binder::node::Node>::update_refcount_locked"),
    ("_RNvCscSpY9Juk0HT_7___rustc17rust_begin_unwind", "__rustc::rust_begin_unwind"),
    ("_RNvXs1b_NtCs9jEwPDbx20M_4core3fmtRNtNtNtB8_5panic10panic_info9PanicInfoNtB6_7Display3fmt",
     "<&core::panic::panic_info::PanicInfo as core::fmt::Display>::fmt"),
    ("_Z8fakeNameiii", "fakeName"),
    ("_ZN3foo3barEv", "foo::bar"),
    ("_RNvB99_3foo", "_RNvB99_3foo"),          # bad backref: unchanged
    ("_Zgarbage", "_Zgarbage"),
    ("do_syscall_64", "do_syscall_64"),
])
def test_demangle(mangled, plain):
    from syslogng_netconsole.reports.demangle import demangle
    assert demangle(mangled) == plain


def test_rust_frames_are_demangled_in_titles():
    lines = rep("""
        rust_kernel: panicked at drivers/android/binder/node.rs:877:13:
        attempt to subtract with overflow
        ------------[ cut here ]------------
        kernel BUG at rust/helpers/bug.c:7!
        Oops: invalid opcode: 0000 [#1] PREEMPT SMP PTI
        CPU: 0 UID: 0 PID: 298 Comm: binder Not tainted 6.12.23 #0
        RIP: 0010:rust_helper_BUG+0x8/0x10
        Call Trace:
         <TASK>
         _RNvCscSpY9Juk0HT_7___rustc17rust_begin_unwind+0x15b/0x160
         _RNvMs0_NtCshgDM7dBCdno_11rust_binder4nodeNtB5_4Node22update_refcount_locked+0x401/0x810
         </TASK>
        ---[ end trace 0000000000000000 ]---
    """)
    incs = whole(lines)
    assert incs[0].title == ("attempt to subtract with overflow in "
                             "<rust_binder::node::Node>::update_refcount_locked")


def test_three_warnings_in_a_row_are_three_incidents():
    incs = whole(WARNING_CPU * 3)
    assert [i.title for i in incs] == ["WARNING in bar_xmit"] * 3
    for inc in incs:
        lines = inc.text.split("\n")
        assert lines[0] == "------------[ cut here ]------------"
        assert lines.count("------------[ cut here ]------------") == 1
        assert lines[-1].startswith("---[ end trace")


def test_open_reports_per_stream_are_bounded():
    d = Detector(DetectorLimits(max_open=8))
    for t in range(50):
        d.feed(Record(host="h", text="INFO: task x:%d blocked for more than 120 seconds." % t,
                      ts_us=t, caller="T%d" % (1000 + t)), 0.0)
    assert d.open_reports() == 8
    closed = d.incidents()
    assert len(closed) == 42 and all(i.truncated for i in closed)


def test_short_fields_are_sanitized():
    lines = [ln.replace("Comm: insmod", "Comm: ev\x1bil\x07") for ln in OOPS_NULL_PANIC]
    lines = [ln.replace("Hardware name: QEMU", "Hardware name: Q\x00EMU") for ln in lines]
    inc = whole(lines)[0]
    assert inc.comm == "ev?il?" and "\x00" not in inc.hardware


try:
    from hypothesis import given, settings, strategies as st
except ImportError:                      # pragma: no cover - python3-hypothesis is a test dep
    given = None

if given is not None:
    SAMPLES = [OOPS_NULL_PANIC, WARNING_CPU * 2 + GPF, KASAN + HUNG_TASK_PANIC, SYSRQ_DUMPS + LOCKDEP,
               ARM64_NULL + RCU_STALL]

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, len(SAMPLES) - 1), st.lists(st.integers(1, 9), min_size=1, max_size=40))
    def test_any_record_chunking_equals_line_by_line(which, sizes):
        """record.text may hold several lines: how lines are grouped must not matter."""
        lines = SAMPLES[which]
        d = Detector()
        i = k = 0
        while i < len(lines):
            n = sizes[k % len(sizes)]
            d.feed(Record(host="h", text="\n".join(lines[i:i + n])), 0.0)
            i += n
            k += 1
        d.flush(0.0)
        got = [(x.title, x.type, x.panicked, x.corrupted, x.text) for x in d.incidents()]
        want = [(x.title, x.type, x.panicked, x.corrupted, x.text) for x in streamed(lines)]
        assert got == want


def test_panic_from_another_context():
    oops = ["[   50.%06d][ T200] %s" % (i, ln) for i, ln in enumerate(OOPS_NULL_PANIC[:29])]
    # the follow-up panic printed by another CPU joins the open oops
    follow = ["[   50.200000][    C1] Kernel panic - not syncing: Fatal exception in interrupt"]
    incs = whole(oops + follow)
    assert [(i.title, i.panicked) for i in incs] == [(CASES[0][2], True)]
    # an unrelated panic in another task is its own incident
    other = ["[   50.200000][    T1] Kernel panic - not syncing: VFS: Unable to mount root fs on "
             "unknown-block(0,0)"]
    incs = whole(oops + other)
    assert sorted((i.title, i.panicked) for i in incs) == [
        (CASES[0][2], False),
        ("kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)", True)]


# A real run (tests/kernel: Debian 6.1.0-56-amd64 in QEMU, nctest module, panic_on_oops,
# serial console), from the line before the report to the reboot.
REAL_61_OOPS_PANIC = rep("""
    [    4.038687] netpoll: netconsole: remote ethernet address 52:55:0a:00:02:02
    [    4.074595] printk: console [netcon0] enabled
    [    4.074909] netconsole: network logging started
    [    4.095023] nctest-init: netconsole mode=plain scenario=oops-panic
    [    4.117425] nctest: loading out-of-tree module taints kernel.
    [    4.121346] nctest: module verification failed: signature and/or required key missing - tainting kernel
    [    4.133301] nctest: scenario=oops
    [    4.138655] nctest: writing to a NULL pointer
    [    4.139780] BUG: kernel NULL pointer dereference, address: 0000000000000000
    [    4.141379] #PF: supervisor write access in kernel mode
    [    4.142152] #PF: error_code(0x0002) - not-present page
    [    4.142536] PGD 17528067 P4D 17528067 PUD 17529067 PMD 0 
    [    4.144385] Oops: 0002 [#1] PREEMPT SMP NOPTI
    [    4.144385] CPU: 0 PID: 107 Comm: insmod Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
    [    4.146710] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
    [    4.146710] RIP: 0010:nctest_null_deref+0x11/0x21 [nctest]
    [    4.146710] Code: 26 c0 89 de e8 4e 2c da f7 8b 15 4b 1e 00 00 39 d3 7c e5 5b c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 f0 61 26 c0 e8 2d 2c da f7 <c7> 04 25 00 00 00 00 2a 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48
    [    4.146710] RSP: 0018:ffffd437803cbda0 EFLAGS: 00000246
    [    4.146710] RAX: 0000000000000021 RBX: 0000000000000000 RCX: c0000000ffff7fff
    [    4.146710] RDX: 0000000000000000 RSI: 00000000ffff7fff RDI: 0000000000000001
    [    4.146710] RBP: ffff8e7adeff1190 R08: 0000000000000000 R09: ffffd437803cbc38
    [    4.146710] R10: 0000000000000003 R11: ffff8e7adfdabfe8 R12: ffffd437803cbdc0
    [    4.146710] R13: 0000000000000000 R14: 0000000000000000 R15: 0000000000000000
    [    4.146710] FS:  00000000255ad3c0(0000) GS:ffff8e7adee00000(0000) knlGS:0000000000000000
    [    4.146710] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
    [    4.146710] CR2: 0000000000000000 CR3: 0000000002600000 CR4: 00000000000006f0
    [    4.146710] Call Trace:
    [    4.156659]  <TASK>
    [    4.156659]  nctest_init+0x50/0x1000 [nctest]
    [    4.156659]  ? 0xffffffffc0270000
    [    4.156659]  do_one_initcall+0x59/0x220
    [    4.156659]  do_init_module+0x4a/0x1f0
    [    4.156659]  __do_sys_finit_module+0xac/0x120
    [    4.156659]  do_syscall_64+0x5d/0xb0
    [    4.162609]  ? exit_to_user_mode_prepare+0x44/0x240
    [    4.162609]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
    [    4.162609] RIP: 0033:0x47fbe9
    [    4.162609] Code: 08 89 e8 5b 5d c3 66 2e 0f 1f 84 00 00 00 00 00 90 48 89 f8 48 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 <48> 3d 01 f0 ff ff 73 01 c3 48 c7 c1 e0 ff ff ff f7 d8 64 89 01 48
    [    4.162609] RSP: 002b:00007ffe7b6962e8 EFLAGS: 00000246 ORIG_RAX: 0000000000000139
    [    4.162609] RAX: ffffffffffffffda RBX: 00000000255b0370 RCX: 000000000047fbe9
    [    4.162609] RDX: 0000000000000000 RSI: 00000000255b0370 RDI: 0000000000000003
    [    4.162609] RBP: 0000000000000003 R08: 0000000000000000 R09: 0000000000000000
    [    4.162609] R10: 000000000000f000 R11: 0000000000000246 R12: 00000000255b09a8
    [    4.162609] R13: 00000000255b09f8 R14: 0000000000000000 R15: 0000000000000000
    [    4.162609]  </TASK>
    [    4.162609] Modules linked in: nctest(OE+) netconsole configfs virtio_net net_failover failover virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev virtio virtio_ring
    [    4.170757] CR2: 0000000000000000
    [    4.172324] ---[ end trace 0000000000000000 ]---
    [    4.172969] RIP: 0010:nctest_null_deref+0x11/0x21 [nctest]
    [    4.173564] Code: 26 c0 89 de e8 4e 2c da f7 8b 15 4b 1e 00 00 39 d3 7c e5 5b c3 cc cc cc cc 0f 1f 44 00 00 48 c7 c7 f0 61 26 c0 e8 2d 2c da f7 <c7> 04 25 00 00 00 00 2a 00 00 00 c3 cc cc cc cc 0f 1f 44 00 00 48
    [    4.174879] RSP: 0018:ffffd437803cbda0 EFLAGS: 00000246
    [    4.175403] RAX: 0000000000000021 RBX: 0000000000000000 RCX: c0000000ffff7fff
    [    4.175957] RDX: 0000000000000000 RSI: 00000000ffff7fff RDI: 0000000000000001
    [    4.176717] RBP: ffff8e7adeff1190 R08: 0000000000000000 R09: ffffd437803cbc38
    [    4.177282] R10: 0000000000000003 R11: ffff8e7adfdabfe8 R12: ffffd437803cbdc0
    [    4.177599] R13: 0000000000000000 R14: 0000000000000000 R15: 0000000000000000
    [    4.177850] FS:  00000000255ad3c0(0000) GS:ffff8e7adee00000(0000) knlGS:0000000000000000
    [    4.178118] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
    [    4.178331] CR2: 0000000000000000 CR3: 0000000002600000 CR4: 00000000000006f0
    [    4.178818] Kernel panic - not syncing: Fatal exception
    [    4.178835] Kernel Offset: 0x36600000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
    [    4.178835] Rebooting in 2 seconds..
""")


def test_real_kernel_oops_panic():
    for incs in (whole(REAL_61_OOPS_PANIC), streamed(REAL_61_OOPS_PANIC)):
        assert len(incs) == 1
        inc = incs[0]
        assert inc.title == "BUG: unable to handle kernel NULL pointer dereference in nctest_null_deref"
        assert (inc.type, inc.panicked, inc.corrupted, inc.truncated) == \
            ("NULL-POINTER-DEREFERENCE", True, False, False)
        assert (inc.release, inc.comm, inc.pid, inc.taint) == ("6.1.0-56-amd64", "insmod", 107, "GOE")
        assert inc.frames[:3] == ["nctest_init", "do_one_initcall", "do_init_module"]
        assert inc.text.split("\n")[-1] == "Rebooting in 2 seconds.."
        assert inc.first_ts_us == 4139780


# A real run: Debian 6.1.0-56-amd64, WARN() with a message (tests/kernel nctest).
REAL_61_WARN = rep("""
    [    4.052704] nctest: scenario=warn
    [    4.061502] ------------[ cut here ]------------
    [    4.062470] nctest: WARN() with a message, value=42
    [    4.063941] WARNING: CPU: 1 PID: 108 at nctest.c:51 nctest_warn+0x16/0x20 [nctest]
    [    4.069131] Modules linked in: nctest(OE+) netconsole configfs virtio_net net_failover failover virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev virtio virtio_ring
    [    4.070667] CPU: 1 PID: 108 Comm: insmod Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2
    [    4.071237] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
    [    4.071746] RIP: 0010:nctest_warn+0x16/0x20 [nctest]
    [    4.072124] Code: d2 0f 8f b8 01 00 00 c3 cc cc cc cc 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 be 2a 00 00 00 48 c7 c7 38 92 31 c0 e8 fa 99 f8 f2 <0f> 0b c3 cc cc cc cc 0f 1f 00 0f 1f 44 00 00 41 57 41 56 49 89 fe
    [    4.077003] RSP: 0018:ffffd16e007dfd00 EFLAGS: 00000282
    [    4.077488] RAX: 0000000000000000 RBX: 0000000000000020 RCX: c0000000ffff7fff
    [    4.077804] RDX: 0000000000000000 RSI: 00000000ffff7fff RDI: 0000000000000001
    [    4.078131] RBP: ffff8e99826de570 R08: 0000000000000000 R09: ffffd16e007dfb78
    [    4.078457] R10: 0000000000000003 R11: ffff8e999fdabfe8 R12: ffffd16e007dfd20
    [    4.078751] R13: 0000000000000000 R14: 0000000000000000 R15: 0000000000000000
    [    4.079113] FS:  000000001173e3c0(0000) GS:ffff8e999ef00000(0000) knlGS:0000000000000000
    [    4.079444] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
    [    4.079681] CR2: 00007fff147d1ff8 CR3: 000000001ee46000 CR4: 00000000000006e0
    [    4.080252] Call Trace:
    [    4.083232]  <TASK>
    [    4.087019]  nctest_init+0x50/0x1000 [nctest]
    [    4.087019]  ? 0xffffffffc02f8000
    [    4.087019]  do_one_initcall+0x59/0x220
    [    4.087019]  do_init_module+0x4a/0x1f0
    [    4.087019]  __do_sys_finit_module+0xac/0x120
    [    4.093138]  do_syscall_64+0x5d/0xb0
    [    4.096959]  ? handle_mm_fault+0xdb/0x2d0
    [    4.096959]  ? do_user_addr_fault+0x1b0/0x570
    [    4.096959]  ? exit_to_user_mode_prepare+0x44/0x240
    [    4.096959]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
    [    4.096959] RIP: 0033:0x47fbe9
    [    4.096959] Code: 08 89 e8 5b 5d c3 66 2e 0f 1f 84 00 00 00 00 00 90 48 89 f8 48 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 <48> 3d 01 f0 ff ff 73 01 c3 48 c7 c1 e0 ff ff ff f7 d8 64 89 01 48
    [    4.096959] RSP: 002b:00007fff147d2248 EFLAGS: 00000246 ORIG_RAX: 0000000000000139
    [    4.096959] RAX: ffffffffffffffda RBX: 0000000011741370 RCX: 000000000047fbe9
    [    4.096959] RDX: 0000000000000000 RSI: 0000000011741370 RDI: 0000000000000003
    [    4.096959] RBP: 0000000000000003 R08: 0000000000000000 R09: 0000000000000000
    [    4.096959] R10: 000000000000f0ff R11: 0000000000000246 R12: 00000000117419a0
    [    4.106860] R13: 00000000117419f8 R14: 0000000000000000 R15: 0000000000000000
    [    4.107174]  </TASK>
    [    4.107174] ---[ end trace 0000000000000000 ]---
    [    4.107174] nctest: scenario warn done
    [    4.130642] nctest-init: scenario warn finished
    [    4.137468] nctest-init: powering off
""")


def test_real_kernel_warning():
    for incs in (whole(REAL_61_WARN), streamed(REAL_61_WARN)):
        assert [(i.title, i.type, i.panicked, i.corrupted) for i in incs] == \
            [("WARNING in nctest_warn", "WARNING", False, False)]
        inc = incs[0]
        assert inc.release == "6.1.0-56-amd64" and inc.pc.startswith("nctest_warn+")
        assert inc.modules[:2] == ["nctest", "netconsole"]
        assert "------------[ cut here ]------------" in inc.text


MORE_KINDS = [
    ("refcount", rep("""
        ------------[ cut here ]------------
        refcount_t: underflow; use-after-free.
        WARNING: CPU: 0 PID: 4321 at lib/refcount.c:28 refcount_warn_saturate+0x13a/0x210
        Modules linked in:
        CPU: 0 PID: 4321 Comm: ip Not tainted 6.1.0 #1
        RIP: 0010:refcount_warn_saturate+0x13a/0x210
        Call Trace:
         <TASK>
         foo_put+0x5a/0x70
         foo_release+0x22/0x40
         __fput+0xfa/0x2c0
         </TASK>
        ---[ end trace 0000000000000000 ]---
     """), "WARNING: refcount bug in foo_put", "REFCOUNT_WARNING"),
    ("list-corruption", rep("""
        list_del corruption. prev->next should be ffff888004a1b2c0, but was ffff888004a1b000. (prev=ffff888004a1b100)
        ------------[ cut here ]------------
        kernel BUG at lib/list_debug.c:62!
        invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
        CPU: 1 PID: 77 Comm: kworker/1:1 Not tainted 6.1.0 #1
        RIP: 0010:__list_del_entry_valid.cold+0x4b/0x6f
        Call Trace:
         <TASK>
         foo_remove+0x2a/0x60
         foo_work+0x51/0x90
         process_one_work+0x1c7/0x380
         </TASK>
        ---[ end trace 0000000000000000 ]---
     """), "BUG: corrupted list in foo_remove", "MEMORY_SAFETY_BUG"),
    ("stack-protector", rep("""
        Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: foo_parse+0x1a2/0x1b0
        CPU: 0 PID: 11 Comm: cat Not tainted 6.1.0 #1
        Call Trace:
         <TASK>
         dump_stack_lvl+0x44/0x5c
         panic+0x118/0x2ed
         __stack_chk_fail+0x10/0x10
         foo_parse+0x1a2/0x1b0
         </TASK>
        Kernel Offset: disabled
        ---[ end Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: foo_parse+0x1a2/0x1b0 ]---
     """), "kernel panic: stack is corrupted in foo_parse", "DoS"),
    ("double-fault", rep("""
        PANIC: double fault, error_code: 0x0
        CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0 #1
        RIP: 0010:deep_recursion+0x10/0x40
        RSP: 0018:ffffc90000007f98 EFLAGS: 00010086
        Kernel panic - not syncing: Fatal exception in interrupt
     """), "PANIC: double fault in deep_recursion", "DoS"),
    ("divide-error", rep("""
        divide error: 0000 [#1] PREEMPT SMP NOPTI
        CPU: 0 PID: 5 Comm: sh Not tainted 6.1.0 #1
        RIP: 0010:foo_ratio+0x17/0x30
        Call Trace:
         <TASK>
         foo_ioctl+0x45/0x80
         </TASK>
        ---[ end trace 0000000000000000 ]---
     """), "divide error in foo_ratio", "DoS"),
    ("bad-page-state", rep("""
        BUG: Bad page state in process sh  pfn:1234a
        page:ffffea000048d280 refcount:0 mapcount:1 mapping:0000000000000000 index:0x0 pfn:0x1234a
        page dumped because: nonzero mapcount
        page last allocated via order 0, migratetype Movable, gfp_mask 0x140dca
         prep_new_page+0x1d/0x80
         get_page_from_freelist+0x9fa/0x1340
         __alloc_pages+0x1c2/0x370
         foo_fill+0x44/0x90
         foo_mmap+0x8a/0x100
        CPU: 0 PID: 9 Comm: sh Tainted: G    B             6.1.0 #1
        Call Trace:
         <TASK>
         dump_stack_lvl+0x44/0x5c
         bad_page.cold+0x63/0x94
         free_pcp_prepare+0x1a3/0x2a0
         </TASK>
     """), "BUG: Bad page state in prep_new_page", "UNKNOWN"),
    ("kcsan", rep("""
        ==================================================================
        BUG: KCSAN: data-race in foo_read / foo_write

        write to 0xffff888007a1b2c0 of 8 bytes by task 123 on cpu 0:
         foo_write+0x1b/0x30
         vfs_write+0x1c4/0x400

        read to 0xffff888007a1b2c0 of 8 bytes by task 124 on cpu 1:
         foo_read+0x1a/0x30
         vfs_read+0x1c4/0x400
        ==================================================================
     """), "KCSAN: data-race in foo_read / foo_write", "KCSAN-DATARACE"),
    ("kmsan", rep("""
        =====================================================
        BUG: KMSAN: uninit-value in foo_check+0x8c/0x1a0
         foo_check+0x8c/0x1a0
         foo_ioctl+0x2f1/0x4a0
         __x64_sys_ioctl+0x1d0/0x2e0

        Uninit was created at:
         __kmalloc+0x11b/0x4a0
         foo_alloc+0x5a/0xa0
        CPU: 0 PID: 12 Comm: t Not tainted 6.1.0 #1
        =====================================================
     """), "KMSAN: uninit-value in foo_check", "KMSAN-UNINIT-VALUE"),
    ("atomic-sleep", rep("""
        BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
        in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 33, name: kworker/0:1
        CPU: 0 PID: 33 Comm: kworker/0:1 Not tainted 6.1.0 #1
        Call Trace:
         <TASK>
         dump_stack_lvl+0x44/0x5c
         __might_resched.cold+0xf4/0x12f
         __mutex_lock+0x4d/0x8a0
         foo_timer_work+0x2e/0x70
         process_one_work+0x1c7/0x380
         </TASK>
     """), "BUG: sleeping function called from invalid context in foo_timer_work", "ATOMIC_SLEEP"),
    ("memory-leak", rep("""
        BUG: memory leak
        unreferenced object 0xffff888011a2b300 (size 64):
          comm "sh", pid 50, jiffies 4294937296 (age 15.120s)
          hex dump (first 32 bytes):
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
          backtrace:
            [<ffffffff81234567>] kmalloc_trace+0x26/0x90
            [<ffffffff82345678>] foo_create+0x3f/0x120
            [<ffffffff82345789>] foo_ioctl+0x1a2/0x2f0
     """), "memory leak in foo_create", "LEAK"),
]


@pytest.mark.parametrize("name,lines,title,type_", MORE_KINDS, ids=[c[0] for c in MORE_KINDS])
def test_more_kinds(name, lines, title, type_):
    for incs in (whole(lines), streamed(lines)):
        assert [(i.title, i.type) for i in incs] == [(title, type_)], \
            "\n".join(i.text for i in incs)


def test_terminal_line_from_another_cpu_ends_the_panicked_report_at_once():
    d = Detector()
    oops = ["[   50.%06d][ T200] %s" % (i, ln) for i, ln in enumerate(OOPS_NULL_PANIC[:29])]
    tail = ["[   50.200000][    C1] Kernel panic - not syncing: Fatal exception in interrupt",
            "[   50.200001][    C1] Kernel Offset: disabled",
            "[   50.200002][    C1] ---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---"]
    for line in oops + tail:
        ts, caller, text = parse_console_line(line)
        d.feed(Record(host="h", text=text, ts_us=ts, caller=caller), 1.0)
    incs = d.incidents()             # no expire(), no flush(): closed by the terminal line
    assert len(incs) == 1 and incs[0].panicked
    assert incs[0].text.split("\n")[-1].startswith("---[ end Kernel panic")
    assert d.open_reports() == 0


if given is not None:
    _PIECES = ["BUG: ", "WARNING: ", "INFO: ", "Kernel panic - not syncing: ", "Call Trace:",
               " foo+0x1/0x2", " ? bar+0x3/0x4", "RIP: 0010:", "---[ end trace 0 ]---",
               "=" * 30, "[   1.000000] ", "[   2.5][ T12] ", "[  3.0][   C1] ", "<4>",
               "at: ", "lib/refcount.c:25 ", "KASAN: ", "Read of size 8", "\x00", "\xff",
               "Rebooting in 5 seconds..", "------------[ cut here ]------------",
               "Linux version 6.1", "kernel BUG at x.c:1!", "invalid opcode: 0000", " ",
               "Internal error: Oops", "pc : f+0x1/0x2", "\t", "_RNvB1_", "_Z3foo"]

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=8), max_size=60),
           st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=5))
    def test_random_input_never_fails_inside(pieces, steps):
        d = Detector()
        now = 0.0
        for i, parts in enumerate(pieces):
            d.feed(Record(host="h%d" % (i % 3), text="".join(parts), boot=i // 40), now)
            now += steps[i % len(steps)]
            d.expire(now)
        d.flush(now)
        assert d.errors == 0
        for inc in d.incidents():
            assert len(inc.title) <= 120 and inc.signature


def test_incident_frames_from_arm_backtrace():
    from syslogng_netconsole.reports.frames import call_trace
    assert call_trace(["Backtrace:",
                       "[<c0a1b2c3>] (foo_bar) from [<c0a1b2c4>] (baz+0x10/0x20)",
                       "[<c0a1b2c4>] (baz) from [<c0a1b2c5>] (qux+0x10/0x20)",
                       "Code: e5933000"]) == ["foo_bar", "baz"]


# The kernel tier's committed fixtures (tests/fixtures/, real Debian kernels in QEMU).
REAL_FIXTURES = [
    ("kernel-6.1-extended-oops-panic", [("NULL-POINTER-DEREFERENCE",
     "BUG: unable to handle kernel NULL pointer dereference in nctest_null_deref", True)]),
    ("kernel-6.1-extended-sysrq-t", []),
    ("kernel-6.12-extended-sysrq-t", []),
    ("kernel-6.1-plain-bug", [("BUG", "kernel BUG in nctest_bug", False)]),
    ("kernel-6.12-configfs-oops", [("NULL-POINTER-DEREFERENCE",
     "BUG: unable to handle kernel NULL pointer dereference in nctest_null_deref", False)]),
    ("kernel-6.12-release-warn", [("WARNING", "WARNING in nctest_warn", False)]),
]


@pytest.mark.parametrize("name,expected", REAL_FIXTURES, ids=[f[0] for f in REAL_FIXTURES])
def test_real_kernel_fixture_consoles(name, expected):
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / (name + ".serial.log")
    if not path.exists():
        pytest.skip("%s is not in this checkout" % path)
    lines = path.read_bytes().decode("utf-8", "replace").replace("\r", "").split("\n")
    for incs in (whole(lines), streamed(lines)):
        assert [(i.type, i.title, i.panicked) for i in incs] == expected
        assert not any(i.corrupted or i.truncated for i in incs)


def test_report_regex_is_bounded_in_time_on_hostile_text():
    # A report pattern runs once per finished report on attacker-shaped text: the
    # `regex` module's timeout ends a runaway match (treated as no match).
    import time
    from syslogng_netconsole.reports import describe, kinds
    pattern = kinds.rx_report(r"(x+x+)+y")
    t0 = time.monotonic()
    assert describe._report_match(pattern, "x" * 5000, 0, 5000) is None
    assert time.monotonic() - t0 < describe.REPORT_TIMEOUT * 4
    assert describe._report_match(pattern, "xxy", 0, 3) is not None
