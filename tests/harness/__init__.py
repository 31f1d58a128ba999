"""What the test tiers and benches share (import as ``harness.X``; tests/ on sys.path):
sng (a real syslog-ng, socket drops, wait_drained), chroot (Debian chroots), shared
(checkout and ../shared paths), samples (kernel report texts), ncdata (netconsole
datagram builders), guest_build / guest_run (QEMU guests), console_compare (decoded
log vs serial console), corpus (detector scores over syzkaller's corpus).
"""
