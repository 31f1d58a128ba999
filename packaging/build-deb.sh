#!/bin/sh
# Builds the .deb: packaging/build-deb.sh [OUTDIR]  (default: dist/)
# Copies the files the package is made of into a private directory under build/,
# puts packaging/debian/ there as debian/ and runs dpkg-buildpackage -b with a PATH
# that has no pyenv, so pybuild uses Debian's python3.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
mkdir -p "$out" "$top/build"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$top/syslogng_netconsole/__init__.py")
news_version=$(sed -n 's/^## \([^ ]*\) .*/\1/p' "$top/NEWS.md" | head -n 1)
if [ "$version" != "$news_version" ]; then
    echo "build-deb: __version__ is '$version' but NEWS.md's newest section is '$news_version'" >&2
    exit 1
fi
deb_version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$top/packaging/debian/changelog")
if [ "$version" != "$deb_version" ]; then
    echo "build-deb: __version__ is '$version' but packaging/debian/changelog says '$deb_version'" >&2
    exit 1
fi

work=$(mktemp -d "$top/build/deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/syslog-ng-netconsole-$version"
mkdir "$src"
(cd "$top" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - \
    pyproject.toml setup.cfg README.md NEWS.md syslogng_netconsole conf.d docs/man) | tar -C "$src" -xf -
# -L: debian/*.logrotate links to packaging/logrotate.conf, shared with the rpm
cp -rL "$top/packaging/debian" "$src/debian"

(cd "$src" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8 \
    dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed" >&2
    exit 1
}
for f in "$work"/*.deb; do
    cp "$f" "$out/"
    echo "$out/$(basename "$f")"
done
