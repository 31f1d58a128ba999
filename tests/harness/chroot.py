"""Debian chroots for tests: built with debootstrap, cached, reused, copied clean.

Needs root, ``debootstrap``, ``tar`` and util-linux ``unshare``/``nsenter``; talks only to
the Debian mirror named in the host's apt sources (override: ``NETCONSOLE_DEBIAN_MIRROR``).

Cache (outside the repo, survives test runs; override: ``NETCONSOLE_CHROOT_CACHE``)::

    /var/cache/syslogng-netconsole-tests/
        base-<suite>-<key>.tar      pristine ``debootstrap --variant=minbase`` + policy-rc.d
        image-<suite>-<key>.tar     base + ``packages`` installed (+ ``predownload`` .debs)
        roots/<suite>-<key>/        image-*.tar unpacked: the shared, ready root
        locks/*.lock                flock(2) locks: concurrent runs never build twice
        work/                       scratch and clean copies (same filesystem)

``<key>`` hashes suite, mirror, the sorted package lists and a format number, so a new
package list is a new image and the old one stays valid.

API
---
``why_unavailable() -> Optional[str]``
    None when chroots can be built here, else the reason (for ``pytest.skip``).
``ensure_chroot(suite, packages=(), predownload=(), mirror=None) -> Path``
    A ready root with ``packages`` installed (``apt-get install --no-install-recommends``),
    built on first use and reused afterwards. It is SHARED between test runs: only read
    it and run programs in it that write under a private directory of theirs (e.g.
    ``ROOT/tmp/<unique>``, removed afterwards). Never install into it: use a clean copy.
    ``predownload`` names packages whose .debs are fetched into apt's archive cache but
    not installed, so a later ``apt-get install ./x.deb`` in a copy resolves its
    dependencies from the cache, offline, proving the package's own Depends.
``clean_chroot(suite, packages=(), predownload=(), mirror=None, dest=None) -> Path``
    A private, freshly unpacked copy of the same image (a few seconds). Yours to modify;
    delete it with ``remove_chroot(path)``.
``fresh_chroot(...)``
    Context manager around ``clean_chroot`` + ``remove_chroot``.
``remove_chroot(path)``
    Unmounts whatever is still mounted below ``path`` and deletes it without crossing
    into other filesystems (a leftover bind mount of /dev is never followed).
``mounted(root, binds=None)``
    Context manager: mounts proc, sys, a private /dev (tmpfs holding bind mounts of
    ``DEVICES``, devpts, shm; never the host's /dev itself, where a chroot daemon would
    replace /dev/log) and ``binds`` ({inside: host}) into ``root`` in the HOST's mount
    table; unmounts them (lazily, in reverse) on exit. Use it
    only on a private copy: ``run_in_chroot`` does not need it.
``run_in_chroot(root, argv, env=None, *, newnet=False, binds=None, mounts=True, **kw)``
    ``subprocess.run`` of ``chroot ROOT env -i PATH=... [env] argv``. With ``mounts``
    (default) it runs in a private mount namespace (``unshare -m``) with proc, sys, dev
    and ``binds`` mounted there only: they vanish with the process, even if a test dies,
    and concurrent users of a shared root never see each other's mounts. ``newnet=True``
    also gives it a new network namespace with only ``lo`` (up): ports never clash with
    the host. Keyword arguments go to ``subprocess.run`` (e.g. ``timeout``, ``check``,
    ``capture_output``, ``text``).
``popen_in_chroot(root, argv, env=None, *, newnet=False, binds=None, mounts=True, **kw)``
    Same, as ``subprocess.Popen``. Every wrapper ``exec``s, so ``proc.pid`` is the chroot
    program's own PID (signal it directly).
``netns_argv(pid) -> list``
    ``nsenter`` prefix to run a host command in the network namespace of ``pid`` (a
    ``newnet`` chroot program): ``netns_argv(p.pid) + ["/usr/bin/python3", ...]``.
``apt_get(root, args, **kw)``
    ``apt-get -y ...`` in ``root`` (noninteractive, host resolv.conf copied in).
``host_mirror() -> str``
    The Debian mirror URI of the host's apt sources.

Debian 12 = ``bookworm`` (syslog-ng 3.38, Python 3.11), Debian 13 = ``trixie``
(syslog-ng 4.8, Python 3.13). Every root has ``/usr/sbin/policy-rc.d`` exiting 101, so
maintainer scripts never start daemons, and dpkg runs with ``force-unsafe-io``.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

FORMAT = 1  # bump to invalidate every cached image
CACHE = pathlib.Path(os.environ.get("NETCONSOLE_CHROOT_CACHE",
                                    "/var/cache/syslogng-netconsole-tests"))
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
READY = ".syslogng-netconsole-ready"
LOCK_WAIT = 1800  # seconds: a second run waits for the first run's build
DEBOOTSTRAP_TIMEOUT = 900
APT_TIMEOUT = 900


# ---------------------------------------------------------------- availability

def why_unavailable() -> Optional[str]:
    """None if chroots can be built and entered here, else a human reason."""
    if os.geteuid() != 0:
        return "chroot tests need root"
    for tool in ("debootstrap", "chroot", "unshare", "nsenter", "tar", "mount"):
        if not shutil.which(tool, path=PATH):
            return "%s is not installed" % tool
    probe = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return "unshare -m -n fails here: %s" % probe.stderr.decode(errors="replace").strip()
    return None


# ---------------------------------------------------------------- mirror, keys

def host_mirror() -> str:
    """The first Debian (non-security) mirror URI in the host's apt sources."""
    env = os.environ.get("NETCONSOLE_DEBIAN_MIRROR")
    if env:
        return env
    uris = []
    src = pathlib.Path("/etc/apt/sources.list.d")
    for f in sorted(src.glob("*.sources")) if src.is_dir() else []:
        for m in re.finditer(r"^URIs:\s*(.+)$", f.read_text(errors="replace"), re.M):
            uris.extend(m.group(1).split())
    lists = [pathlib.Path("/etc/apt/sources.list")]
    lists += sorted(src.glob("*.list")) if src.is_dir() else []
    for f in lists:
        if f.is_file():
            for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", f.read_text(errors="replace"), re.M):
                uris.append(m.group(1))
    for uri in uris:
        # the main archive, not security/updates/third-party repositories
        if re.search(r"/debian/?$", uri):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _key(*parts) -> str:
    blob = json.dumps([FORMAT] + [list(p) if isinstance(p, (list, tuple)) else p for p in parts])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _norm(pkgs: Iterable[str]) -> List[str]:
    return sorted(set(p.strip() for p in pkgs if p.strip()))


@contextlib.contextmanager
def _locked(name: str, wait: float = LOCK_WAIT):
    (CACHE / "locks").mkdir(parents=True, exist_ok=True)
    with open(CACHE / "locks" / (name + ".lock"), "w") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise TimeoutError("waited %ds for chroot lock %s" % (wait, name))
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv, timeout=None, **kw):
    """Host command; raises with its output on failure."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s\n%s" % (
            " ".join(map(str, argv)), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def _workdir(prefix: str) -> pathlib.Path:
    (CACHE / "work").mkdir(parents=True, exist_ok=True)
    return pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=CACHE / "work"))


def _pack(root: pathlib.Path, tarball: pathlib.Path) -> None:
    tmp = tarball.with_suffix(".tar.part")
    _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tmp), "."],
         timeout=600)
    os.replace(tmp, tarball)  # atomic: a tarball that exists is complete


def _unpack(tarball: pathlib.Path, root: pathlib.Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-xpf", str(tarball)],
         timeout=600)


def _test_tweaks(root: pathlib.Path) -> None:
    """policy-rc.d (no daemon starts) and dpkg without fsync (test roots are throwaway:
    it halves install times on a loaded machine). Idempotent."""
    p = root / "usr/sbin/policy-rc.d"
    p.write_text("#!/bin/sh\n# tests: never start daemons from maintainer scripts\nexit 101\n")
    p.chmod(0o755)
    cfg = root / "etc/dpkg/dpkg.cfg.d"
    if cfg.is_dir():
        (cfg / "syslogng-netconsole-tests").write_text("force-unsafe-io\n")


def _resolv(root: pathlib.Path) -> None:
    for name in ("resolv.conf", "hosts"):
        host = pathlib.Path("/etc") / name
        dst = root / "etc" / name
        if host.is_file():
            if dst.is_symlink() or dst.exists():
                dst.unlink()
            shutil.copyfile(host, dst)


# ---------------------------------------------------------------- building

def _base_tarball(suite: str, mirror: str) -> pathlib.Path:
    tarball = CACHE / ("base-%s-%s.tar" % (suite, _key(suite, mirror)))
    with _locked(tarball.stem):
        if tarball.exists():
            return tarball
        work = _workdir("debootstrap-%s-" % suite)
        try:
            root = work / "root"
            _run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                 timeout=DEBOOTSTRAP_TIMEOUT, env={"PATH": PATH})
            _test_tweaks(root)
            _pack(root, tarball)
        finally:
            remove_chroot(work)
    return tarball


def _image_tarball(suite: str, packages: Sequence[str], predownload: Sequence[str],
                   mirror: str) -> pathlib.Path:
    base = _base_tarball(suite, mirror)
    if not packages and not predownload:
        return base
    tarball = CACHE / ("image-%s-%s.tar" % (suite, _key(suite, mirror, packages, predownload)))
    with _locked(tarball.stem):
        if tarball.exists():
            return tarball
        work = _workdir("image-%s-" % suite)
        try:
            root = work / "root"
            _unpack(base, root)
            _test_tweaks(root)
            lists = root / "var/lib/apt/lists"
            if not any(lists.glob("*_Packages")):
                apt_get(root, ["update"])
            if packages:
                apt_get(root, ["install", "--no-install-recommends"] + list(packages))
            apt_get(root, ["clean"])
            if predownload:
                apt_get(root, ["install", "--no-install-recommends", "--download-only"]
                        + list(predownload))
            _pack(root, tarball)
        finally:
            remove_chroot(work)
    return tarball


# what the 4.x tiers install in the trixie chroot (syslog-ng 4.8, its Python module)
SYSLOGNG_4X = ["syslog-ng-core", "syslog-ng-mod-python", "python3-regex"]


def ensure_chroot(suite: str, packages: Iterable[str] = (), predownload: Iterable[str] = (),
                  mirror: Optional[str] = None) -> pathlib.Path:
    """The shared ready root for (suite, packages, predownload); built once, then reused."""
    mirror = mirror or host_mirror()
    packages, predownload = _norm(packages), _norm(predownload)
    tarball = _image_tarball(suite, packages, predownload, mirror)
    root = CACHE / "roots" / ("%s-%s" % (suite, _key(suite, mirror, packages, predownload)))
    with _locked("root-" + root.name):
        if not (root / READY).exists():
            if root.exists():
                remove_chroot(root)  # a half-unpacked leftover of a killed run
            _unpack(tarball, root)
            (root / READY).write_text(json.dumps(
                {"suite": suite, "packages": packages, "predownload": predownload,
                 "mirror": mirror, "tarball": tarball.name}) + "\n")
    return root


def clean_chroot(suite: str, packages: Iterable[str] = (), predownload: Iterable[str] = (),
                 mirror: Optional[str] = None,
                 dest: Optional[pathlib.Path] = None) -> pathlib.Path:
    """A private, freshly unpacked copy of the image; delete it with remove_chroot()."""
    mirror = mirror or host_mirror()
    packages, predownload = _norm(packages), _norm(predownload)
    tarball = _image_tarball(suite, packages, predownload, mirror)
    root = pathlib.Path(dest) if dest else _workdir("clean-%s-" % suite) / "root"
    _unpack(tarball, root)
    _test_tweaks(root)
    return root


@contextlib.contextmanager
def fresh_chroot(suite: str, packages: Iterable[str] = (), predownload: Iterable[str] = (),
                 mirror: Optional[str] = None):
    root = clean_chroot(suite, packages, predownload, mirror)
    try:
        yield root
    finally:
        remove_chroot(root.parent if root.parent.parent == CACHE / "work" else root)


# ---------------------------------------------------------------- mounts, removal

def _mounts_below(path: pathlib.Path) -> List[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    prefix = os.path.realpath(str(path))
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def remove_chroot(path) -> None:
    """Unmount anything below ``path``, then delete it (never crossing filesystems)."""
    path = pathlib.Path(path)
    if not path.exists():
        return
    for mp in _mounts_below(path):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    left = _mounts_below(path)
    if left:
        raise RuntimeError("refusing to delete %s: still mounted: %s" % (path, left))
    _run(["rm", "-rf", "--one-file-system", str(path)], timeout=600)


@contextlib.contextmanager
def mounted(root, binds: Optional[Mapping[str, str]] = None):
    """proc, sys, a private /dev (+ binds) mounted into ``root`` in the host's mount table."""
    root = pathlib.Path(root)
    try:
        _run(["sh", "-c", _mount_script(root, binds)])
        yield root
    finally:
        for mp in _mounts_below(root):
            subprocess.run(["umount", "-l", mp], capture_output=True)


# Device nodes bound into the chroot's own /dev (a tmpfs). The host's /dev is never
# bound whole: a daemon in the chroot creating /dev/log would replace the host's.
# kmsg is the non-destructive kernel log reader; without it syslog-ng's system()
# source would fall back to /proc/kmsg, which steals messages from the host's reader.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "kmsg")


def _mount_script(root: pathlib.Path, binds: Optional[Mapping[str, str]]) -> str:
    r = _q(os.path.realpath(str(root)))
    lines = [
        "set -e",
        "mount -t proc proc %s/proc" % r,
        "mount -t sysfs sysfs %s/sys" % r,
        "mount -t tmpfs -o mode=0755,nosuid,size=16m chroot-dev %s/dev" % r,
        "mkdir -p %s/dev/pts %s/dev/shm" % (r, r),
        "mount -t tmpfs -o mode=1777,nosuid,nodev chroot-shm %s/dev/shm" % r,
        "mount -t devpts -o newinstance,ptmxmode=0666 devpts %s/dev/pts" % r,
        "ln -s pts/ptmx %s/dev/ptmx" % r,
        "ln -s /proc/self/fd %s/dev/fd" % r,
    ]
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        lines.append("ln -s /proc/self/fd/%d %s/dev/%s" % (i, r, name))
    for dev in DEVICES:
        lines.append("if [ -e /dev/%s ]; then touch %s/dev/%s && mount --bind /dev/%s %s/dev/%s; fi"
                     % (dev, r, dev, dev, r, dev))
    for inside, host in (binds or {}).items():
        target = "%s/%s" % (r, _q(inside.lstrip("/")))
        lines.append("mkdir -p %s && mount --bind %s %s" % (target, _q(str(host)), target))
    return "\n".join(lines)


# ---------------------------------------------------------------- running

def chroot_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    out = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive"}
    out.update(env or {})
    return out


def _argv(root, argv: Sequence[str], env, newnet: bool, binds, mounts: bool) -> List[str]:
    root = os.path.realpath(str(root))
    inner = ["chroot", root, "env", "-i"] + ["%s=%s" % kv for kv in chroot_env(env).items()]
    inner += [str(a) for a in argv]
    if not mounts and not newnet:
        return inner
    script = [_mount_script(pathlib.Path(root), binds)] if mounts else ["set -e"]
    if newnet:
        script.append("ip link set lo up")
    script.append('exec "$@"')
    flags = (["-m", "--propagation", "private"] if mounts else []) + (["-n"] if newnet else [])
    return ["unshare"] + flags + ["--", "sh", "-c", "\n".join(script), "chroot-run"] + inner


def _q(s: str) -> str:
    return "'" + str(s).replace("'", "'\"'\"'") + "'"


def run_in_chroot(root, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, *,
                  newnet: bool = False, binds: Optional[Mapping[str, str]] = None,
                  mounts: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(root, argv, env, newnet, binds, mounts),
                          env={"PATH": PATH}, **kw)


def popen_in_chroot(root, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, *,
                    newnet: bool = False, binds: Optional[Mapping[str, str]] = None,
                    mounts: bool = True, **kw) -> subprocess.Popen:
    return subprocess.Popen(_argv(root, argv, env, newnet, binds, mounts),
                            env={"PATH": PATH}, **kw)


def netns_argv(pid: int) -> List[str]:
    """Prefix running a host command inside the network namespace of ``pid``."""
    return ["nsenter", "--net=/proc/%d/ns/net" % pid, "--"]


def apt_get(root, args: Sequence[str], timeout: float = APT_TIMEOUT,
            **kw) -> subprocess.CompletedProcess:
    """``apt-get -y ARGS`` inside ``root``; raises with apt's output on failure."""
    _resolv(pathlib.Path(root))
    p = run_in_chroot(root, ["apt-get", "-y", "-o", "Dpkg::Use-Pty=0"] + list(args),
                      capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError("apt-get %s in %s failed (rc %d):\n%s\n%s" % (
            " ".join(args), root, p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p
