#!/bin/sh
# Builds the noarch .rpm: packaging/build-rpm.sh [OUTDIR [TARGET...]]
#   OUTDIR   default dist/
#   TARGET   dist:python3_version, default "el9:3.9 el10:3.12 fc42:3.13"
# One rpm per target: the files go to that target's python3 site-packages.
# RPM_GPG_NAME signs them with that gpg key (GNUPGHOME as usual).
# RPM_PACKAGER sets the Packager tag (as ~/.rpmmacros %packager would).
# Plain rpmbuild (Debian's works: apt-get install rpm); BuildRequires cannot be
# checked against Debian's empty rpm database, hence --nodeps.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
[ $# -gt 0 ] && shift
targets=${*:-el9:3.9 el10:3.12 fc42:3.13}
mkdir -p "$out" "$top/build"
out=$(cd "$out" && pwd)

spec="$top/packaging/rpm/syslog-ng-netconsole.spec"
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$top/syslogng_netconsole/__init__.py")
news_version=$(sed -n 's/^## \([^ ]*\) .*/\1/p' "$top/NEWS.md" | head -n 1)
if [ "$version" != "$news_version" ]; then
    echo "build-rpm: __version__ is '$version' but NEWS.md's newest section is '$news_version'" >&2
    exit 1
fi
spec_version=$(sed -n 's/^Version: *//p' "$spec")
if [ "$version" != "$spec_version" ]; then
    echo "build-rpm: __version__ is '$version' but the spec says '$spec_version'" >&2
    exit 1
fi

work=$(mktemp -d "$top/build/rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/SOURCES" "$work/src/syslog-ng-netconsole-$version"
(cd "$top" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - \
    pyproject.toml setup.cfg README.md NEWS.md syslogng_netconsole conf.d docs/man packaging/logrotate.conf \
    packaging/sysctl.conf) |
    tar -C "$work/src/syslog-ng-netconsole-$version" -xf -
tar -C "$work/src" -czf "$work/SOURCES/syslog-ng-netconsole-$version.tar.gz" \
    "syslog-ng-netconsole-$version"

for t in $targets; do
    dist=${t%%:*}
    py=${t#*:}
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 \
        rpmbuild -bb --nodeps --define "_topdir $work" \
        --define "python3_version $py" --define "dist .$dist" \
        --define "packager ${RPM_PACKAGER:-syslogng-netconsole developers <syslogng-netconsole@example.org>}" \
        "$spec" \
        > "$work/build-$dist.log" 2>&1 || {
        tail -n 60 "$work/build-$dist.log" >&2
        echo "build-rpm: rpmbuild failed for $t" >&2
        exit 1
    }
done
if [ -n "${RPM_GPG_NAME:-}" ]; then
    rpmsign --addsign --define "_gpg_name $RPM_GPG_NAME" --define "__gpg $(command -v gpg)" \
        "$work"/RPMS/noarch/*.rpm < /dev/null > "$work/sign.log" 2>&1 || {
        cat "$work/sign.log" >&2
        echo "build-rpm: rpmsign failed" >&2
        exit 1
    }
fi
for f in "$work"/RPMS/noarch/*.rpm; do
    cp "$f" "$out/"
    echo "$out/$(basename "$f")"
done
