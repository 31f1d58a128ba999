"""Reusable test harnesses: sng (a real syslog-ng), chroot (Debian chroots)."""
