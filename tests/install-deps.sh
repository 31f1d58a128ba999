#!/bin/sh
# Installs everything the test suite needs (Debian 12, as root). Idempotent:
# a package already present is not fetched again. Each tier adds its packages here.
set -eu
PKGS="
syslog-ng-core syslog-ng-mod-python syslog-ng-mod-http python3-regex
python3-pytest python3-hypothesis python3-prometheus-client
python3-aiosmtpd python3-trustme prometheus-alertmanager
qemu-system-x86 linux-image-amd64 linux-headers-amd64
linux-image-6.12-amd64 linux-headers-6.12-amd64
busybox-static cpio make gcc kmod zstd xz-utils
debootstrap tcpdump python3-setuptools python3-dpkt
debhelper dh-python python3-all pybuild-plugin-pyproject fakeroot lintian
python3-build python3-installer python3-wheel rpm rpmlint rpm2cpio dpkg-dev gnupg iproute2 util-linux
groff-base man-db mandoc
binutils debuginfod elfutils
"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
fi
# Debian's syslog-ng package enables its service; tests run their own instances.
if [ -d /run/systemd/system ] && systemctl is-active -q syslog-ng 2>/dev/null; then
    systemctl stop syslog-ng || true
fi
