#!/bin/busybox sh
# /init of the test guest (copied verbatim into every initramfs).
# Reads its instructions from the kernel command line:
#   ncmode=plain|extended|release|configfs|senderconfig   ncport=UDP port on 10.0.2.2
#   ncscen=boot|sysrq-t|sysrq-l|sysrq-m|sysrq-c|oops|oops-panic|bug|warn|warn3|panic|long|burst
#          |clean|clean-off|reboot-f|hang   (clean, clean-off: the lines systemd-shutdown writes to the
#          kernel log, then `reboot -f` / `poweroff -f`, as systemd's last stage does; reboot-f: `reboot
#          -f` alone, no shutdown sequence; hang: wait for the harness to cut the power)
#   nclines=N (burst)   ncbql=raise|kernel   ncsettle=1|0   (see below)
#   nchostname=NAME (configfs only, optional): a third userdata entry, hostname=NAME
#   (absent: the target has exactly the two entries guest and role, as always);
#   senderconfig: the guest's host name, read by the script below
# senderconfig runs /etc/netconsole-target (sender-config's configfs script for this
# guest, added to the initramfs by the test) twice, marking what each run said, and
# then writes /etc/netconsole-selftest (sender-test's record) to /dev/kmsg
# Progress markers go to /dev/kmsg, so that they are kernel records seen by
# both the serial console and netconsole; command output goes to /tmp/init.log
# so that userspace text never mixes into the serial console's kernel lines.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
exec </dev/null >/tmp/init.log 2>&1

mark() { echo "nctest-init: $*" > /dev/kmsg; }
for w in $(cat /proc/cmdline); do
    case "$w" in
    ncmode=*) MODE=${w#*=} ;;
    ncscen=*) SCEN=${w#*=} ;;
    ncport=*) PORT=${w#*=} ;;
    nclines=*) LINES=${w#*=} ;;
    ncbql=*) BQL=${w#*=} ;;
    ncsettle=*) SETTLE=${w#*=} ;;
    nchostname=*) NCHOST=${w#*=} ;;
    esac
done
: "${MODE:=plain}" "${SCEN:=boot}" "${PORT:=6666}" "${LINES:=5000}"

# Wait until the NIC has sent what netconsole queued (its TX counter stops
# moving for 0.3 s; at most 10 s). Loading netconsole replays the whole boot
# log, ~370 datagrams at once; when the virtio ring is full netpoll queues the
# rest for a worker, and a panic before that worker ran loses the queue and
# every panic line behind it (seen on 6.12 under TCG on a busy host).
# ncsettle=0 skips the wait, to reproduce.
settle() {
    [ "$SETTLE" = 0 ] && return
    f=/sys/class/net/eth0/statistics/tx_packets
    last=-1; same=0; n=0
    while [ $n -lt 100 ]; do
        cur=$(cat $f)
        if [ "$cur" = "$last" ]; then
            same=$((same + 1))
            [ $same -ge 3 ] && return
        else
            same=0
        fi
        last=$cur; n=$((n + 1))
        usleep 100000
    done
    mark "the NIC was still sending after 10 s"
}

finish() {
    mark "powering off"
    sleep 1
    poweroff -f
}
trap finish EXIT

echo 1 > /proc/sys/kernel/sysrq
# NIC and netconsole dependencies, in modprobe's load order
for m in $(cat /lib/modules/load.order); do insmod "/lib/modules/$m" || mark "insmod $m failed"; done
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
# ncbql=raise (default): 6.12's virtio_net (byte queue limits since 6.11)
# and netpoll stalled netconsole for good in about 1 run of 3 under TCG on a
# busy host (the NIC stops sending mid-stream); a BQL floor high enough that
# BQL never stops the queue avoided it in every run. ncbql=kernel keeps the
# kernel's default, to reproduce. (6.1's virtio_net has no BQL: no effect.)
if [ "$BQL" != kernel ]; then
    for q in /sys/class/net/eth0/queues/tx-*/byte_queue_limits; do
        echo 100000000 > "$q/limit_min" || mark "cannot set $q/limit_min"
    done
fi

TARGET="6665@10.0.2.15/eth0,$PORT@10.0.2.2/52:55:0a:00:02:02"
case "$MODE" in
plain)    insmod /lib/modules/netconsole.ko "netconsole=$TARGET" ;;
extended) insmod /lib/modules/netconsole.ko "netconsole=+$TARGET" ;;
release)  insmod /lib/modules/netconsole.ko "netconsole=+r$TARGET" ;;
configfs)
    insmod /lib/modules/netconsole.ko
    mount -t configfs none /sys/kernel/config
    T=/sys/kernel/config/netconsole/nctest
    mkdir "$T"
    echo eth0 > "$T/dev_name"
    echo 10.0.2.15 > "$T/local_ip"
    echo 10.0.2.2 > "$T/remote_ip"
    echo "$PORT" > "$T/remote_port"
    echo 52:55:0a:00:02:02 > "$T/remote_mac"
    echo 1 > "$T/extended"
    mkdir "$T/userdata/guest" "$T/userdata/role"
    echo nctest-guest > "$T/userdata/guest/value"
    echo kernel-tier > "$T/userdata/role/value"
    if [ -n "$NCHOST" ]; then
        mkdir "$T/userdata/hostname" && echo "$NCHOST" > "$T/userdata/hostname/value" \
            || mark "cannot set userdata hostname=$NCHOST"
    fi
    echo 1 > "$T/enabled"
    ;;
senderconfig)
    insmod /lib/modules/netconsole.ko
    [ -z "$NCHOST" ] || hostname "$NCHOST"
    mark "netconsole-target: $(sh /etc/netconsole-target 2>&1)"
    mark "netconsole-target again:$(sh /etc/netconsole-target 2>&1)"
    ;;
*) mark "unknown ncmode $MODE" ;;
esac
settle
if [ "$MODE" = senderconfig ] && [ -f /etc/netconsole-selftest ]; then
    cat /etc/netconsole-selftest > /dev/kmsg
fi
mark "netconsole mode=$MODE scenario=$SCEN"

case "$SCEN" in
boot) ;;
clean|clean-off)
    # the guest has no systemd: its shutdown sequence, as systemd-shutdown writes it
    last=Rebooting.; [ "$SCEN" = clean-off ] && last="Powering off."
    for l in "Syncing filesystems and block devices." \
             "Sending SIGTERM to remaining processes..." "$last"; do
        echo "systemd-shutdown[1]: $l" > /dev/kmsg
    done
    sleep 1
    if [ "$SCEN" = clean ]; then reboot -f; else poweroff -f; fi ;;
reboot-f)
    mark "rebooting with reboot -f"
    sleep 1
    reboot -f ;;
hang)
    mark "waiting for the reset"
    sleep 600 ;;
sysrq-[tlmc]) echo "${SCEN#sysrq-}" > /proc/sysrq-trigger ;;
oops-panic)
    echo 1 > /proc/sys/kernel/panic_on_oops
    insmod /lib/modules/nctest.ko scenario=oops ;;
burst) insmod /lib/modules/nctest.ko scenario=burst "lines=$LINES" ;;
*) insmod /lib/modules/nctest.ko "scenario=$SCEN" ;;
esac
mark "scenario $SCEN finished"
