"""The symbolizer's pure core (symbols/): frame parsing, the ELF reader, lookup by
release with hostile names refused, the address math of a relocatable object
against real binutils (a tiny object built by gcc here), the guilty file,
MAINTAINERS, debuginfod URL handling, the store step."""

import shutil
import subprocess

import pytest

from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.incidents.store import Store
from syslogng_netconsole.symbols import debuginfod, elf, frames, lookup, maintainers, service
from syslogng_netconsole.symbols.symbolize import annotate, guilty_file, symbolize
from syslogng_netconsole.symbols import symbolize as symbolize_mod, tool
from syslogng_netconsole.symbols.tool import Addr2line, parse_output

REPORT = """BUG: kernel NULL pointer dereference, address: 0000000000000000
RIP: 0010:crash_here+0x%x/0x%x [demo]
Call Trace:
 <TASK>
 caller+0x%x/0x%x [demo]
 ? 0xffffffffc036c000
 ? do_sys_openat2+0x9b/0x170
 do_one_initcall+0x59/0x220
"""

SOURCE = r"""
static int sink;
__attribute__((noinline)) void crash_here(volatile int *p)
{
	*p = 42;	/* MARK:crash */
}
static inline void helper(volatile int *p)
{
	crash_here(p);	/* MARK:inlined */
}
__attribute__((noinline)) int caller(volatile int *p)
{
	helper(p);
	return sink;
}
"""


def test_parse_kinds_and_modules():
    fs = frames.parse(REPORT % (0x11, 0x21, 0x50, 0x1000))
    assert [(f.func, f.module, f.kind) for f in fs] == [
        ("crash_here", "demo", "exact"), ("caller", "demo", "return"),
        ("do_sys_openat2", "", "unreliable"), ("do_one_initcall", "", "return")]
    assert fs[0].lookup_off == 0x11 and fs[1].lookup_off == 0x4f
    f = frames.parse_line(0, " foo+0x1/0x2 [mod_a 0123456789abcdef0123456789abcdef01234567]")
    assert f.build_id == "0123456789abcdef0123456789abcdef01234567"
    assert frames.parse_line(0, "WARNING: CPU: 0 PID: 1 at x.c:5 f+0x1d/0x30 [m]").kind == "exact"


def test_hostile_names_never_reach_a_path(tmp_path):
    assert frames.parse_line(0, " f+0x1/0x2 [../../etc]") is None or \
        frames.parse_line(0, " f+0x1/0x2 [../../etc]").module == ""
    for release in ("../../etc", "6.1/../x", "", "a b", "x" * 200):
        assert not lookup.release_ok(release)
    loc = lookup.Locator([str(tmp_path)])
    assert loc.find("../..", "nctest") == (None, "no-debug-file")
    assert loc.find("6.1.0-1-amd64", "../x")[0] is None
    assert loc.candidates("6.1", "", "../../zz") == []


def build_object(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("gcc missing")
    src = tmp_path / "demo.c"
    src.write_text(SOURCE)
    obj = tmp_path / "demo.ko"
    subprocess.run(["gcc", "-c", "-g", "-O2", "-fno-pic", "-ffunction-sections",
                    "-Wl,--build-id", "-o", str(obj), str(src)], check=True, cwd=str(tmp_path))
    return src, obj


def mark(src, tag):
    return [i for i, ln in enumerate(src.read_text().splitlines(), 1) if "MARK:" + tag in ln][0]


def test_relocatable_object_against_real_addr2line(tmp_path):
    src, obj = build_object(tmp_path)
    e = elf.read_file(str(obj))
    assert e.type == elf.ET_REL and e.has_dwarf()
    syms = e.symbols()
    crash, caller = syms["crash_here"][0], syms["caller"][0]
    assert crash.section == ".text.crash_here"      # -ffunction-sections: its own section
    rel = tmp_path / "dbg" / "lib" / "modules" / "6.1.0-9-amd64" / "extra"
    rel.mkdir(parents=True)
    shutil.copy2(str(obj), str(rel / "demo.ko"))
    # an offset inside crash_here, and caller's return address (the call + its length)
    text = REPORT % (1, crash.size, caller.size - 1, caller.size)
    r = symbolize(text, "6.1.0-9-amd64", lookup.Locator([str(tmp_path / "dbg")]), Addr2line())
    demo = [f for f in r["frames"] if f["module"] == "demo"]
    assert all(f["locations"] for f in demo), r
    assert demo[0]["locations"][0]["file"] == "demo.c"
    assert demo[0]["locations"][0]["line"] in (mark(src, "crash") - 2, mark(src, "crash") - 1,
                                               mark(src, "crash"))
    assert r["guilty_file"] == "demo.c" and r["sources"] == {"dir": 2}
    assert r["status"] == "partial" and "no-debug-file" in r["reason"]   # no vmlinux here
    shown = annotate(text, r)
    assert "crash_here+0x1/0x%x [demo] (demo.c:" % crash.size in shown


def test_addr2line_output_with_inlined_frames():
    out = parse_output("0x0000000000000010\nhelper\n/src/a.c:9\ncaller\n/src/a.c:13 "
                       "(discriminator 2)\n0x0000000000000020\n??\n??:0\n")
    assert [(l.func, l.file, l.line) for l in out[0x10]] == [("helper", "/src/a.c", 9),
                                                            ("caller", "/src/a.c", 13)]
    assert [l.file for l in out[0x20]] == [""]


def test_guilty_file_skips_reporting_and_headers():
    fr = [{"kind": "exact", "func": "dump_stack", "locations": [
              {"func": "dump_stack", "file": "lib/dump_stack.c", "line": 1}]},
          {"kind": "unreliable", "func": "x", "locations": [{"func": "x", "file": "a.c", "line": 1}]},
          {"kind": "return", "func": "foo", "locations": [
              {"func": "list_add", "file": "include/linux/list.h", "line": 3},
              {"func": "foo", "file": "drivers/foo/foo.c", "line": 7}]}]
    assert guilty_file(fr) == "drivers/foo/foo.c"


def test_guilty_file_unknown_when_the_guilty_frame_is_not_symbolized():
    """A module frame without its debug file comes first: the next file (init/main.c,
    do_one_initcall's) would be a guess."""
    fr = [{"kind": "exact", "func": "nctest_null_deref", "locations": []},
          {"kind": "return", "func": "do_one_initcall", "locations": [
              {"func": "do_one_initcall", "file": "init/main.c", "line": 1271}]}]
    assert guilty_file(fr) is None


def test_paths_relative_to_the_kernel_tree_of_a_debian_build():
    """Debian's vmlinux (measured, linux-image-6.1.0-57-amd64-dbg): comp_dir is
    TREE/debian/build/build_amd64_none_amd64, C files read
    debian/build/build_amd64_none_amd64/init/main.c, assembly TREE/arch/...; an
    out-of-tree module's absolute unit name gives its own folder."""
    tree = "/build/reproducible-path/linux-6.1.192"
    text = ("    <15>   DW_AT_name        : (indirect string, offset: 0): %s/arch/x86/kernel/head_64.S\n"
            "    <19>   DW_AT_comp_dir    : (indirect string, offset: 0x41): %s/debian/build/build_amd64_none_amd64\n"
            "    <9>   DW_AT_name        : (indirect string, offset: 0x9): /src/nctest/nctest.c\n"
            % (tree, tree))
    roots = tool.parse_roots(text)
    class F(symbolize_mod._DebugFile):
        def __init__(self):
            self.roots = roots
    f = F()
    assert f.relative("debian/build/build_amd64_none_amd64/init/main.c") == "init/main.c"
    assert f.relative(tree + "/arch/x86/entry/entry_64.S") == "arch/x86/entry/entry_64.S"
    assert f.relative("/src/nctest/nctest.c") == "nctest.c"
    assert tree + "/arch/x86/kernel" not in roots    # not every kernel file's own folder


def test_assembly_labels_are_symbols(tmp_path):
    """entry_SYSCALL_64_after_hwframe is a label without a type in vmlinux: found."""
    src = tmp_path / "entry.S"
    src.write_text(".text\n.globl entry_a\n.type entry_a, @function\nentry_a:\n nop\n"
                   ".globl entry_a_after\nentry_a_after:\n nop\n ret\n")
    obj = tmp_path / "entry.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    syms = elf.read_file(str(obj)).symbols()
    assert syms["entry_a"][0].is_func and not syms["entry_a_after"][0].is_func
    assert syms["entry_a_after"][0].value == 1


def test_maintainers_most_specific_entry():
    m = maintainers.Maintainers("NETWORKING DRIVERS\nM:\tA <a@x>\nL:\tnetdev@vger.kernel.org\n"
                                "F:\tdrivers/net/\n\nVIRTIO NET\nL:\tvirt@x\nF:\tdrivers/net/virtio_net.c\n")
    assert m.lookup("drivers/net/virtio_net.c")["name"] == "VIRTIO NET"
    assert m.lookup("drivers/net/e1000/x.c")["lists"] == ["netdev@vger.kernel.org"]
    assert m.lookup("fs/x.c") == {}


def test_debuginfod_urls_and_redaction(tmp_path):
    assert service.debuginfod_urls("", {"DEBUGINFOD_URLS": "https://a/ ftp://b http://c"}) == \
        ["https://a", "http://c"]
    assert service.debuginfod_urls("none", {"DEBUGINFOD_URLS": "https://a"}) == []
    with pytest.raises(ValueError):
        service.check_urls("file:///etc")
    assert debuginfod.redact("https://u:secret@h:8002/p") == "https://h:8002/p"
    c = debuginfod.Debuginfod(["http://127.0.0.1:9"], str(tmp_path))
    assert c.fetch("../../etc/passwd") is None and c.last_error == "bad-build-id"


def test_store_keeps_the_symbols(tmp_path):
    s = Store(str(tmp_path))
    inc = Incident(host="h", type="BUG", title="t", signature="s", text="x")
    assert s.add(inc, 1.0)
    assert s.set_symbols(inc.id, {"status": "ok", "frames": []}, "a.c", {"name": "N"})
    got = s.get(inc.id)
    assert got["guilty_file"] == "a.c" and got["symbols"]["status"] == "ok"
    assert not s.set_symbols("nope", {}, None)
    s.close()


def test_annotate_names_the_inlined_function():
    text = "Call Trace:\n do_syscall_64+0x5d/0xb0\n foo+0x1/0x2"
    sym = {"frames": [
        {"line": 1, "func": "do_syscall_64", "locations": [
            {"func": "do_syscall_x64", "file": "arch/x86/entry/common.c", "line": 46},
            {"func": "do_syscall_64", "file": "arch/x86/entry/common.c", "line": 76}]},
        {"line": 2, "func": "foo", "locations": [{"func": "foo", "file": "a.c", "line": 3}]}]}
    assert annotate(text, sym).split("\n") == [
        "Call Trace:",
        " do_syscall_64+0x5d/0xb0 (arch/x86/entry/common.c:46: do_syscall_x64)",
        "    (inlined by) do_syscall_64 (arch/x86/entry/common.c:76)",
        " foo+0x1/0x2 (a.c:3)"]


def test_not_found_is_remembered_until_the_ttl(tmp_path):
    """A storm of one release without debug files searches once per TTL; a -dbg
    package installed meanwhile is found once the TTL has passed."""
    _src, obj = build_object(tmp_path)
    now = [1000.0]
    root = tmp_path / "dbg"
    loc = lookup.Locator([str(root)], clock=lambda: now[0], negative_ttl=60.0)
    assert loc.find("6.1.0-9-amd64", "demo") == (None, "no-debug-file")
    assert loc.find("6.1.0-9-amd64", "demo") == (None, "no-debug-file")
    assert loc.counters["negative_hits"] == 1
    rel = root / "lib" / "modules" / "6.1.0-9-amd64" / "extra"
    rel.mkdir(parents=True)
    shutil.copy2(str(obj), str(rel / "demo.ko"))         # the -dbg package comes
    now[0] += 59.0
    assert loc.find("6.1.0-9-amd64", "demo") == (None, "no-debug-file")     # still cached
    assert loc.counters["negative_hits"] == 2
    now[0] += 2.0
    assert loc.find("6.1.0-9-amd64", "demo") == (str(rel / "demo.ko"), "dir")
    # another key is its own search; no clock: nothing remembered
    assert loc.find("6.1.0-9-amd64", "other")[0] is None
    plain = lookup.Locator([str(tmp_path / "none")])
    plain.find("6.1", "demo")
    plain.find("6.1", "demo")
    assert plain.counters["negative_hits"] == 0


def test_store_writes_many_symbols_and_hand_offs_at_once(tmp_path):
    s = Store(str(tmp_path))
    incs = [Incident(host="h", type="BUG", title="t", signature="s", text="x", first_seq=i)
            for i in range(3)]
    for inc in incs:
        assert s.add(inc, 1.0)
    assert s.set_symbols_many([(incs[0].id, {"status": "ok"}, "a.c", {}),
                               ("nope", {}, None, None),
                               (incs[2].id, {"status": "none"}, None, None)]) == 2
    assert s.get(incs[0].id)["guilty_file"] == "a.c"
    assert s.get(incs[2].id)["symbols"] == {"status": "none"}
    assert "symbols" not in s.get(incs[1].id) or not s.get(incs[1].id)["symbols"]
    s.handed_many([incs[0].id, incs[2].id])
    assert [i.id for i in s.unhanded()] == [incs[1].id]
    s.close()


def _elf_with_build_id(tmp_path, name, pad):
    """A small relocatable ELF with a build-id note (ld -r --build-id) and `pad` bytes."""
    if not (shutil.which("gcc") and shutil.which("ld")):
        pytest.skip("gcc/ld missing")
    src = tmp_path / (name + ".c")
    src.write_text("const char pad_%s[%d] = {1};\nint f_%s(void) { return %d; }\n"
                   % (name, pad, name, pad))
    obj, out = tmp_path / (name + ".o"), tmp_path / (name + ".ko")
    subprocess.run(["gcc", "-c", "-g", "-o", str(obj), str(src)], check=True)
    subprocess.run(["ld", "-r", "--build-id", "-o", str(out), str(obj)], check=True)
    return out, elf.read_file(str(out)).build_id()


def test_debuginfod_cache_stays_under_its_cap_and_a_lying_server_is_refused(tmp_path):
    """A real HTTP server in the elfutils layout (/buildid/HEX/debuginfo): the cache
    keeps the most recent files within max_bytes; a reply with another build-id is
    not cached and is counted as a bad reply."""
    import http.server
    import threading
    files = [_elf_with_build_id(tmp_path, "m%d" % i, 20000) for i in range(3)]
    served = {bid: path.read_bytes() for path, bid in files}
    liar = "ab" * 20
    served[liar] = files[0][0].read_bytes()            # answers with m0's build-id

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.strip("/").split("/")
            body = served.get(parts[1]) if len(parts) == 3 and parts[0] == "buildid" else None
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        size = max(len(b) for b in served.values())
        cache = tmp_path / "cache"
        c = debuginfod.Debuginfod(["http://127.0.0.1:%d" % srv.server_address[1]], str(cache),
                                  max_bytes=2 * size + 100)
        got = [c.fetch(bid) for _path, bid in files]
        assert all(got), c.last_error
        kept = sorted(p.name for p in cache.iterdir() if (p / "debuginfo").exists())
        total = sum((p / "debuginfo").stat().st_size for p in cache.iterdir()
                    if (p / "debuginfo").exists())
        assert total <= 2 * size + 100 and files[2][1] in kept and len(kept) == 2, kept
        assert c.fetch(liar) is None and c.last_error == "debuginfod-bad-reply"
        assert not (cache / liar).exists()
        assert c.fetch("cd" * 20) is None                 # 404: a miss, not an error
        # a miss is asked again once miss_for passed: the file may have been uploaded since
        now = [1000.0]
        c = debuginfod.Debuginfod(["http://127.0.0.1:%d" % srv.server_address[1]],
                                  str(tmp_path / "cache2"), clock=lambda: now[0], miss_for=300.0)
        late = _elf_with_build_id(tmp_path, "late", 20000)
        assert c.fetch(late[1]) is None and c.last_error == "debuginfod-miss"
        served[late[1]] = late[0].read_bytes()            # uploaded now
        now[0] += 299.0
        assert c.fetch(late[1]) is None and c.counters["misses"] == 1    # not asked again
        now[0] += 2.0
        assert c.fetch(late[1]) and c.counters["fetched"] == 1
    finally:
        srv.shutdown()


def test_annotate_leaves_the_text_when_stored_symbols_are_malformed():
    """Stored and journaled incidents are untrusted: every caller (mail, JSON,
    incidents --text, analyze) gets the plain report, never an exception."""
    for bad in ({"frames": [{"line": 0, "locations": [{"func": "x"}]}]},
                {"frames": [{"line": 0, "locations": [{"file": "a.c", "line": "x"}]}] * 2},
                {"frames": "nope"}, "nope", None):
        assert annotate("a+0x1/0x2", bad) == "a+0x1/0x2"
