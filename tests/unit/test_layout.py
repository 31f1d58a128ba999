"""The package's shape rules (docs/design.md), checked so that they stay true.

- no module over 600 lines, except the kinds data table;
- no function over 80 lines;
- the syslog-ng glue (sng/) is the only place that imports syslogng, and each glue
  module stays under 350 lines;
- the pure core never reads a clock: time is an argument.
"""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "syslogng_netconsole"
MODULES = sorted(p for p in PKG.rglob("*.py"))
DATA_TABLES = {"reports/kinds.py"}
# the only modules outside sng/ allowed to read a clock, and why
CLOCK_READERS = {
    "alerts/dispatcher.py": "the alert sender's own thread (retry timers, wall-clock rows)",
    "cli/": "command-line tools run outside syslog-ng (replay paces datagrams)",
    "worker/__main__.py": "the detection worker process's own loop (report timers)",
}
CLOCK_CALLS = {("time", "time"), ("time", "monotonic"), ("time", "sleep"),
               ("datetime", "now"), ("datetime", "utcnow")}


def _rel(p):
    return p.relative_to(PKG).as_posix()


def _tree(p):
    return ast.parse(p.read_text(), filename=str(p))


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_module_size(path):
    lines = len(path.read_text().splitlines())
    limit = 350 if _rel(path).startswith("sng/") else 600
    if _rel(path) in DATA_TABLES:
        return
    assert lines <= limit, "%s has %d lines (limit %d)" % (_rel(path), lines, limit)


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_function_size(path):
    long = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > 80:
                long.append("%s:%d %s (%d lines)" % (_rel(path), node.lineno, node.name, n))
    assert not long, long


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_only_the_glue_imports_syslogng(path):
    if _rel(path).startswith("sng/"):
        return
    bad = [m for m in _imports(_tree(path)) if m == "syslogng" or m.startswith("syslogng.")]
    assert not bad, "%s imports %s: only sng/ may" % (_rel(path), bad)


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_pure_core_reads_no_clock(path):
    rel = _rel(path)
    if rel.startswith("sng/") or any(rel == k or (k.endswith("/") and rel.startswith(k))
                                     for k in CLOCK_READERS):
        return
    calls = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            if (name, node.func.attr) in CLOCK_CALLS:
                calls.append("%s:%d %s.%s()" % (rel, node.lineno, name, node.func.attr))
    assert not calls, calls
