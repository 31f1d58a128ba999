"""Guest pieces for the kernel tier, built once per kernel and cached.

For each Debian kernel installed on the host (``/boot/vmlinuz-KVER``) this
module builds

* ``nctest.ko``: the test module of ``tests/kernel/nctest/`` (our stand-in for LKDTM, which
  Debian does not build), compiled against ``/lib/modules/KVER/build``;
* an initramfs: static busybox, ``tests/kernel/init.sh`` as ``/init``, the NIC
  (virtio-net) and netconsole modules of that kernel, decompressed, with a
  ``load.order`` file, and ``nctest.ko``.

Both live under ``tests/kernel/.cache/KVER/`` in a folder named after a hash
of everything that went into them (sources, init script, busybox, the
kernel's module files), so an edit rebuilds and an unchanged tree reuses.
Builds take a lock, so concurrent test runs do not race.

Functions: ``kernels()``, ``kernel_version(name)``, ``vmlinuz(kver)``,
``build_module(kver)``, ``build_initramfs(kver)``, ``with_files(initrd, files, out)``
(the initramfs plus a second archive of a run's own files: the kernel unpacks
concatenated archives in order, later files on top).
"""

import fcntl
import gzip
import hashlib
import lzma
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

# the kernel tier's folder: the guest's sources and the build cache
TIER = pathlib.Path(__file__).resolve().parents[1] / "kernel"
CACHE = pathlib.Path(os.environ.get("NETCONSOLE_KERNEL_CACHE", TIER / ".cache"))
MODULE_SRC = TIER / "nctest"
INIT_SCRIPT = TIER / "init.sh"
BUSYBOX = pathlib.Path("/bin/busybox")
# Bump when the layout of the initramfs changes in a way the hash cannot see.
LAYOUT_VERSION = "1"

# short name used by the tests -> pattern of the Debian kernel release
KERNEL_PATTERNS = {
    "6.1": re.compile(r"^6\.1\.\d+-\d+-amd64$"),
    "6.12": re.compile(r"^6\.12\.\d+\+deb\d+-amd64$"),
}
# modules the guest loads before netconsole, in this order (modprobe adds deps):
# both NIC drivers, so one initramfs serves either QEMU NIC model
GUEST_MODULES = ("virtio_pci", "virtio_net", "e1000", "configfs")


def _version_key(kver):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", kver)]


def kernels():
    """{short name: kernel release} for each kernel of KERNEL_PATTERNS that is
    installed with its modules and headers (newest release of each)."""
    found = {}
    for path in sorted(pathlib.Path("/boot").glob("vmlinuz-*")):
        kver = path.name[len("vmlinuz-"):]
        if not (pathlib.Path("/lib/modules", kver, "build", "Makefile").exists()):
            continue
        for name, pat in KERNEL_PATTERNS.items():
            if pat.match(kver):
                if name not in found or _version_key(kver) > _version_key(found[name]):
                    found[name] = kver
    return found


def kernel_version(name):
    """The release for a short name ("6.1", "6.12") or a full release."""
    if pathlib.Path("/boot", "vmlinuz-" + name).exists():
        return name
    kv = kernels().get(name)
    if kv is None:
        raise LookupError("kernel %s is not installed (with headers) on this host" % name)
    return kv


def vmlinuz(kver):
    return pathlib.Path("/boot", "vmlinuz-" + kver)


def _hash_files(h, paths):
    for p in paths:
        p = pathlib.Path(p)
        h.update(str(p).encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")


def _hash_stat(h, paths):
    # kernel module files are big: their identity (path, size, mtime) suffices
    for p in paths:
        st = os.stat(p)
        h.update(("%s %d %d\n" % (p, st.st_size, int(st.st_mtime))).encode())


class _Lock:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(str(self.path), os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def module_sources():
    return sorted(p for p in MODULE_SRC.iterdir() if p.suffix in (".c", ".h") or p.name == "Kbuild")


def build_module(kver):
    """Path of nctest.ko built for kver (cached)."""
    h = hashlib.sha256(kver.encode())
    _hash_files(h, module_sources())
    _hash_stat(h, [pathlib.Path("/lib/modules", kver, "build", "Makefile")])
    out = CACHE / kver / ("nctest-" + h.hexdigest()[:16])
    ko = out / "nctest.ko"
    done = out / ".done"          # written last: a half-built folder is redone
    if done.exists():
        return ko
    with _Lock(CACHE / kver / ".lock"):
        if done.exists():
            return ko
        # build in the cache folder itself: a stable path, and on failure
        # the folder has no nctest.ko, so the next call builds again
        out.mkdir(parents=True, exist_ok=True)
        for src in module_sources():
            shutil.copy2(str(src), str(out / src.name))
        proc = subprocess.run(
            ["make", "-C", "/lib/modules/%s/build" % kver, "M=%s" % out, "modules"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        if proc.returncode != 0 or not ko.exists():
            raise RuntimeError("building nctest.ko for %s failed:\n%s"
                               % (kver, proc.stdout.decode(errors="replace")[-3000:]))
        done.write_text(kver + "\n")
    return ko


def module_files(kver, names):
    """Module files (as installed) that `names` need, in load order, no repeats."""
    order = []
    for name in names:
        proc = subprocess.run(["modprobe", "-S", kver, "--show-depends", name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError("modprobe --show-depends %s for %s: %s"
                               % (name, kver, proc.stderr.decode(errors="replace")))
        for line in proc.stdout.decode().splitlines():
            parts = line.split()
            # "builtin virtio_pci" means nothing to load
            if parts and parts[0] == "insmod" and parts[1] not in order:
                order.append(parts[1])
    return order


def _decompressed(path):
    """Bytes of a kernel module, decompressing .xz, .zst and .gz."""
    path = str(path)
    if path.endswith(".xz"):
        with lzma.open(path) as f:
            return f.read()
    if path.endswith(".gz"):
        with gzip.open(path) as f:
            return f.read()
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], stdout=subprocess.PIPE,
                              check=True, timeout=60).stdout
    with open(path, "rb") as f:
        return f.read()


def _ko_name(path):
    name = os.path.basename(path)
    return re.sub(r"\.(xz|zst|gz)$", "", name)


def build_initramfs(kver):
    """Path of the gzip'd newc initramfs for kver (cached)."""
    ko = build_module(kver)
    deps = module_files(kver, GUEST_MODULES)
    netconsole = module_files(kver, ["netconsole"])[-1]
    h = hashlib.sha256((kver + LAYOUT_VERSION).encode())
    _hash_files(h, [INIT_SCRIPT, ko, pathlib.Path(__file__)])
    _hash_stat(h, [BUSYBOX] + deps + [netconsole])
    out = CACHE / kver / ("initramfs-" + h.hexdigest()[:16])
    img = out / "initramfs.cpio.gz"
    if img.exists():
        return img
    with _Lock(CACHE / kver / ".lock"):
        if img.exists():
            return img
        stage = pathlib.Path(tempfile.mkdtemp(prefix="initramfs-", dir=str(CACHE / kver)))
        try:
            for d in ("bin", "lib/modules", "proc", "sys", "dev", "tmp"):
                (stage / d).mkdir(parents=True)
            shutil.copy2(str(BUSYBOX), str(stage / "bin/busybox"))
            shutil.copy2(str(INIT_SCRIPT), str(stage / "init"))
            os.chmod(str(stage / "init"), 0o755)
            mods = stage / "lib/modules"
            for dep in deps + [netconsole]:
                (mods / _ko_name(dep)).write_bytes(_decompressed(dep))
            (mods / "load.order").write_text("".join(_ko_name(d) + "\n" for d in deps))
            shutil.copy2(str(ko), str(mods / "nctest.ko"))
            files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
            proc = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
                                  input="\n".join(["."] + files).encode() + b"\n",
                                  cwd=str(stage), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError("cpio failed: %s" % proc.stderr.decode(errors="replace"))
            out.mkdir(parents=True, exist_ok=True)
            (out / "initramfs.tmp").write_bytes(gzip.compress(proc.stdout, 6))
            os.replace(str(out / "initramfs.tmp"), str(img))
        finally:
            shutil.rmtree(str(stage), ignore_errors=True)
    return img


def _cpio(stage, out):
    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    proc = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
                          input="\n".join(["."] + files).encode() + b"\n",
                          cwd=str(stage), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("cpio failed: %s" % proc.stderr.decode(errors="replace"))
    return gzip.compress(proc.stdout, 6)


def with_files(initrd, files, out):
    """Write `out`: the initramfs `initrd` followed by a gzip'd newc archive of
    `files` ({path in the guest: bytes}, mode 0755). Not cached: a run's files
    (a generated script, a port) differ from run to run."""
    out = pathlib.Path(out)
    stage = pathlib.Path(tempfile.mkdtemp(prefix="overlay-", dir=str(out.parent)))
    try:
        for rel, data in files.items():
            path = stage / rel.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(str(path), 0o755)
        out.write_bytes(pathlib.Path(initrd).read_bytes() + _cpio(stage, out))
    finally:
        shutil.rmtree(str(stage), ignore_errors=True)
    return out
