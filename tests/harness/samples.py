"""Kernel report texts shared by every tier (unit, integration, alerts), and dmesg().

They follow real Debian 6.1 x86_64 output (QEMU, a test module doing a NULL
dereference / WARN).
"""


OOPS_LINES = """\
BUG: kernel NULL pointer dereference, address: 0000000000000000
#PF: supervisor write access in kernel mode
#PF: error_code(0x0002) - not-present page
PGD 0 P4D 0 
Oops: 0002 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 95 Comm: insmod Tainted: G           OE      6.1.0-27-amd64 #1  Debian 6.1.115-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:nctest_init+0x15/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
RDX: 0000000000000000 RSI: ffffffffa1f3a1e0 RDI: 0000000000000000
RBP: ffffffffc0357000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: ffff8f5a41c0e0c0
R13: 0000000000000000 R14: ffffb5c9c03c7e88 R15: 0000000000000000
FS:  00007f2f8b2ec740(0000) GS:ffff8f5a7ed00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 0000000000000000 CR3: 0000000001a2e000 CR4: 00000000000006e0
Call Trace:
 <TASK>
 ? __die_body.cold+0x1a/0x1f
 ? page_fault_oops+0xd2/0x2b0
 ? exc_page_fault+0x70/0x170
 ? asm_exc_page_fault+0x22/0x30
 ? nctest_init+0x15/0x1000 [nctest]
 do_one_initcall+0x56/0x220
 do_init_module+0x4a/0x1f0
 __do_sys_finit_module+0xac/0x120
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
RIP: 0033:0x7f2f8b40e5a9
Code: 08 89 e8 5b 5d c3 66 2e 0f 1f 84 00 00 00 00 00 90 48 89 f8 48 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 <48> 3d 01 f0 ff ff 73 01 c3 48 8b 0d 37 08 0d 00 f7 d8 64 89 01 48
RSP: 002b:00007ffd2d7b0f78 EFLAGS: 00000246 ORIG_RAX: 0000000000000139
RAX: ffffffffffffffda RBX: 0000000000000000 RCX: 00007f2f8b40e5a9
RDX: 0000000000000000 RSI: 0000000000c7e2a0 RDI: 0000000000000003
RBP: 0000000000000000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000003 R11: 0000000000000246 R12: 0000000000c7e2a0
R13: 0000000000000000 R14: 0000000000000000 R15: 0000000000000000
 </TASK>
Modules linked in: nctest(OE+) netconsole virtio_net net_failover failover
CR2: 0000000000000000
---[ end trace 0000000000000000 ]---
RIP: 0010:nctest_init+0x15/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
RDX: 0000000000000000 RSI: ffffffffa1f3a1e0 RDI: 0000000000000000
RBP: ffffffffc0357000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: ffff8f5a41c0e0c0
R13: 0000000000000000 R14: ffffb5c9c03c7e88 R15: 0000000000000000
FS:  00007f2f8b2ec740(0000) GS:ffff8f5a7ed00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 0000000000000000 CR3: 0000000001a2e000 CR4: 00000000000006e0
""".splitlines()

PANIC_LINES = """\
Kernel panic - not syncing: Fatal exception
Kernel Offset: 0x1f000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
Rebooting in 2 seconds..""".splitlines()

WARN_LINES = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 97 at /tmp/nctest/nctest.c:41 nctest_init+0x2a/0x1000 [nctest]
Modules linked in: nctest(OE+) netconsole virtio_net net_failover failover
CPU: 0 PID: 97 Comm: insmod Tainted: G           OE      6.1.0-27-amd64 #1  Debian 6.1.115-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:nctest_init+0x2a/0x1000 [nctest]
Code: Unable to access opcode bytes at 0xffffffffc0356feb.
RSP: 0018:ffffb5c9c03c7c48 EFLAGS: 00010246
RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
Call Trace:
 <TASK>
 ? __warn+0x7d/0xc0
 ? nctest_init+0x2a/0x1000 [nctest]
 ? report_bug+0xe2/0x150
 ? handle_bug+0x41/0x70
 ? exc_invalid_op+0x13/0x60
 ? asm_exc_invalid_op+0x16/0x20
 do_one_initcall+0x56/0x220
 do_init_module+0x4a/0x1f0
 __do_sys_finit_module+0xac/0x120
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
---[ end trace 0000000000000000 ]---""".splitlines()

# sysrq-t: stack dumps of every task; not a crash
SYSRQ_LINES = """\
sysrq: Show State
task:systemd         state:S stack:0     pid:1     ppid:0      flags:0x00000002
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 schedule_hrtimeout_range_clock+0x9f/0x110
 do_epoll_wait+0x4bc/0x620
 __x64_sys_epoll_wait+0x6f/0x110
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
task:kthreadd        state:S stack:0     pid:2     ppid:0      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 kthreadd+0x1e3/0x210
 ret_from_fork+0x22/0x30
 </TASK>
Sched Debug Version: v0.11, 6.1.0-27-amd64 #1
ktime                                   : 100123.456789
sysrq: Show Blocked State
task:jbd2/vda-8      state:D stack:0     pid:150   ppid:2      flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 io_schedule+0x42/0x70
 bit_wait_io+0xd/0x60
 __wait_on_bit+0x42/0x110
 out_of_line_wait_on_bit+0x8c/0xb0
 jbd2_journal_commit_transaction+0x163e/0x1a40 [jbd2]
 kjournald2+0xab/0x270 [jbd2]
 kthread+0xda/0x100
 ret_from_fork+0x22/0x30
 </TASK>""".splitlines()

BOOT_LINES = """\
Linux version 6.1.0-27-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)
Command line: console=ttyS0,115200 loglevel=7 panic=2
x86/fpu: x87 FPU will use FXSAVE
signal: max sigframe size: 1440
BIOS-provided physical RAM map:
netpoll: netconsole: local port 6665
netconsole: network logging started""".splitlines()


def dmesg(lines, start_us=12_345_678, step_us=97, caller=None):
    """Lines with dmesg `[sec.usec]` prefixes (and an optional [Tnn] caller tag)."""
    out = []
    for i, line in enumerate(lines):
        sec, usec = divmod(start_us + i * step_us, 1_000_000)
        tag = "[%6s] " % caller if caller else ""
        out.append("[%5d.%06d] %s%s" % (sec, usec, tag, line))
    return out
