"""The man pages (docs/man/) against the code, and their rendering.

What the pages must list is read from the code, not written down here: the argparse
parser of `syslogng-netconsole` (every sub-command, every long option), the option
tables of the netconsole() source (sng/source_options.py), of the incidents
destination (sng/dest.py, alerts/config.py), the SCL blocks' parameters and the
`@define netconsole_*` globals (scl/netconsole.conf, conf.d/netconsole.conf), and the
name-value pairs of sng/messages.py. An entry is a ".TP" paragraph whose tag names the
option; the tests also refuse entries for options the code does not have, and check
each documented default against the SCL block or the Python table.

Rendering: groff with every warning (-ww), mandoc's linter and man-db's `man -l`
must print nothing on stderr (groff-base, mandoc and man-db: tests/install-deps.sh).
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from syslogng_netconsole import __version__
from syslogng_netconsole.alerts import config as alert_config
from syslogng_netconsole.cli import COMMANDS, build_parser
from syslogng_netconsole.ingest.reassembly import ReassemblyLimits
from syslogng_netconsole.sng import dest, messages, source_options

REPO = pathlib.Path(__file__).resolve().parents[2]
MAN = REPO / "docs" / "man"
CLI_PAGE = MAN / "syslogng-netconsole.1"
CONF_PAGE = MAN / "syslogng-netconsole.conf.5"
PAGES = (CLI_PAGE, CONF_PAGE)
SCL = REPO / "syslogng_netconsole" / "scl" / "netconsole.conf"
DROPIN = REPO / "conf.d" / "netconsole.conf"

# sections of the conf page holding each block's entries
SOURCE_SECTION = "THE NETCONSOLE() SOURCE"
LOGFILES_SECTION = "PER-HOST FILES"
DEST_SECTION = "THE INCIDENTS DESTINATION"
DROPIN_SECTION = "THE DROP-IN"
MESSAGES_SECTION = "MESSAGES"


# ---------------------------------------------------------------- roff, read simply

_ESCAPES = ((r"\(dq", '"'), (r"\(aq", "'"), (r"\(lq", '"'), (r"\(rq", '"'),
            (r"\(em", "-"), (r"\-", "-"), (r"\&", ""), (r"\%", ""), (r"\|", ""),
            (r"\c", ""), (r"\e", "\\"), ("\\ ", " "))
_FONT = re.compile(r"\\f(?:[BIRP]|\[[A-Z]*\])")
_ARG = re.compile(r'"((?:[^"]|"")*)"|(\S+)')
_ALTERNATING = {".BI", ".BR", ".IB", ".IR", ".RB", ".RI"}


def plain(line: str) -> str:
    """One roff source line as the text it prints (fonts dropped, escapes resolved;
    a font macro's arguments joined as it joins them)."""
    if line.startswith("."):
        macro, _, rest = line.partition(" ")
        args = [m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
                for m in _ARG.finditer(rest)]
        line = ("" if macro in _ALTERNATING else " ").join(args)
    line = _FONT.sub("", line)
    for esc, text in _ESCAPES:
        line = line.replace(esc, text)
    return line


class Entry:
    def __init__(self, section, subsection, tag):
        self.section, self.subsection, self.tag, self.body = section, subsection, tag, []

    @property
    def text(self):
        return " ".join([self.tag] + self.body)


def parse(path):
    """(entries, section texts): every .TP entry with its section and subsection, and
    the plain text of each (section, subsection)."""
    entries, texts = [], {}
    section = subsection = None
    entry, want_tag = None, False
    for line in path.read_text().splitlines():
        if line.startswith(".\\\""):
            continue
        macro = line.split(" ", 1)[0] if line.startswith(".") else ""
        if macro in (".SH", ".SS"):
            title = plain(line).strip()
            section, subsection = (title, None) if macro == ".SH" else (section, title)
            entry = None
            continue
        if macro == ".TP":
            entry, want_tag = None, True
            continue
        if macro in (".PP", ".P", ".LP", ".IP"):
            entry = None
        text = plain(line)
        texts.setdefault((section, subsection), []).append(text)
        if want_tag:
            entry, want_tag = Entry(section, subsection, text), False
            entries.append(entry)
        elif entry is not None:
            entry.body.append(text)
    return entries, {k: " ".join(v) for k, v in texts.items()}


def th_fields(path):
    line = next(ln for ln in path.read_text().splitlines() if ln.startswith(".TH "))
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _ARG.finditer(line[4:])]


# ---------------------------------------------------------------- the code's lists

def cli_commands():
    """{sub-command: its argparse parser}, and the top-level parser."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices), parser


def long_options(parser):
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")}


def scl_blocks():
    """{block name: {parameter: SCL default}} of scl/netconsole.conf."""
    blocks = {}
    for m in re.finditer(r"^block (?:source|destination) (\w+)\((.*?)^\) \{", SCL.read_text(),
                         re.M | re.S):
        params = re.findall(r'(\w+)\(("[^"]*"|[^)]*)\)', m.group(2))
        blocks[m.group(1)] = {name: value.strip('"') for name, value in params}
    return blocks


def scl_defines():
    return dict(re.findall(r'^@define (netconsole_\w+) "(.*)"', SCL.read_text(), re.M))


def source_defaults():
    """{option: default} of the netconsole() source (the reassembly limits' from the core)."""
    limits = ReassemblyLimits()
    out = {name: default for name, (_conv, default) in source_options.OPTIONS.items()}
    out.update({name: getattr(limits, attr)
                for name, (attr, _conv) in source_options.LIMIT_OPTIONS.items()})
    return out


def dest_defaults():
    """{option: default} of netconsole_incidents(), its alert options included."""
    out = {name: default for name, (_conv, default) in dest.OPTIONS.items()}
    out.update({name.replace("-", "_"): default
                for name, (_attr, _conv, default) in alert_config.OPTIONS.items()})
    return out


def spellings(value):
    """How the page may write a default: 90d for 7776000 s, 100M, yes, 20/5m ..."""
    if isinstance(value, bool):
        return {"yes" if value else "no"}
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and isinstance(value[0], int):            # rate-limit
            return {"%d/%s" % (value[0], s) for s in spellings(float(value[1]))}
        return {",".join(map(str, value))}
    if isinstance(value, float):
        out = {"%g" % value}
        for unit, scale in (("m", 60), ("h", 3600), ("d", 86400)):
            if value and value % scale == 0:
                out.add("%d%s" % (value // scale, unit))
        return out
    if isinstance(value, int):
        out = {str(value)}
        for unit, scale in (("k", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
            if value and value % scale == 0:
                out.add("%d%s" % (value // scale, unit))
        return out
    return {str(value)}


def documented_default(entry_text, value):
    """True when the entry says "Default X" for one of the value's spellings."""
    return any(re.search(r'Default:? +"?%s"?(?=\.?(\s|$)|[,;) ])' % re.escape(s), entry_text)
               for s in spellings(value))


def entries_by_name(entries, section, pattern=r"^([a-z][a-z0-9_]*)\("):
    out = {}
    for e in entries:
        if e.section == section:
            m = re.match(pattern, e.tag.strip())
            assert m, "%s: entry %r does not start with an option" % (section, e.tag)
            assert m.group(1) not in out, "%s: %s documented twice" % (section, m.group(1))
            out[m.group(1)] = e
    return out


# ---------------------------------------------------------------- syslogng-netconsole(1)

def test_cli_parser_has_every_command():
    commands, _ = cli_commands()
    assert set(commands) == set(COMMANDS)   # none silently missing from the parser


def test_every_subcommand_has_a_subsection_and_a_synopsis_line():
    commands, _ = cli_commands()
    entries, texts = parse(CLI_PAGE)
    documented = {sub for (sec, sub) in texts if sec == "COMMANDS" and sub}
    assert documented == set(commands)
    synopsis = texts[("SYNOPSIS", None)]
    for name in commands:
        assert "syslogng-netconsole %s" % name in synopsis, name


def test_every_long_option_has_an_entry_in_its_subcommand():
    commands, _ = cli_commands()
    entries, texts = parse(CLI_PAGE)
    for name, parser in commands.items():
        tags = " ".join(e.tag for e in entries if e.section == "COMMANDS" and e.subsection == name)
        documented = set(re.findall(r"--[a-z][a-z0-9-]*", tags))
        want = long_options(parser) - {"--help"}
        assert want - documented == set(), "%s: not in the man page" % name
        assert documented - want == set(), "%s: in the man page, not in the parser" % name
        for action in parser._actions:          # positional arguments, by metavar
            if not action.option_strings:
                assert (action.metavar or action.dest) in texts[("COMMANDS", name)], name


def test_top_level_options_have_entries():
    _, parser = cli_commands()
    entries, _ = parse(CLI_PAGE)
    tags = " ".join(e.tag for e in entries if e.section == "OPTIONS")
    for opt in (s for a in parser._actions for s in a.option_strings):
        assert re.search(r"(^|[\s,])%s(?=[\s,]|$)" % re.escape(opt), tags), opt


# ---------------------------------------------------------------- syslogng-netconsole.conf(5)

def test_scl_blocks_are_the_ones_the_page_documents():
    assert set(scl_blocks()) == {"netconsole", "netconsole_logfiles", "netconsole_incidents"}


def test_scl_blocks_and_python_tables_agree():
    """The page's two sources of truth name the same options."""
    blocks = scl_blocks()
    assert set(blocks["netconsole"]) == set(source_defaults())
    assert set(blocks["netconsole_incidents"]) == set(dest_defaults())


def test_every_source_option_has_an_entry_with_its_default():
    entries, _ = parse(CONF_PAGE)
    doc = entries_by_name(entries, SOURCE_SECTION)
    scl = scl_blocks()["netconsole"]
    code = source_defaults()
    want = set(code) | set(scl)
    assert want - set(doc) == set(), "netconsole() options not in the man page"
    assert set(doc) - want == set(), "documented, but not options of netconsole()"
    for name in want:
        default = scl.get(name) or code.get(name)
        if default not in ("", None):
            assert documented_default(doc[name].text, default), (name, default, doc[name].text)


def test_every_logfiles_option_has_an_entry_with_its_default():
    entries, _ = parse(CONF_PAGE)
    doc = entries_by_name(entries, LOGFILES_SECTION)
    scl = scl_blocks()["netconsole_logfiles"]
    assert set(doc) == set(scl)
    for name, default in scl.items():
        assert documented_default(doc[name].text, default), (name, default)


def test_every_destination_option_has_an_entry_with_its_default():
    entries, _ = parse(CONF_PAGE)
    doc = entries_by_name(entries, DEST_SECTION)
    scl = scl_blocks()["netconsole_incidents"]
    code = dest_defaults()
    want = set(code) | set(scl)
    assert want - set(doc) == set(), "netconsole_incidents() options not in the man page"
    assert set(doc) - want == set(), "documented, but not options of netconsole_incidents()"
    for name in want:
        default = scl.get(name) or code.get(name)
        if default not in ("", None, []):
            assert documented_default(doc[name].text, default), (name, default, doc[name].text)


def test_every_dropin_define_has_an_entry_with_its_default():
    entries, _ = parse(CONF_PAGE)
    doc = entries_by_name(entries, DROPIN_SECTION, r"^(netconsole_\w+)$")
    defines = scl_defines()
    used = set(re.findall(r"`(netconsole_\w+)`", DROPIN.read_text()))
    assert used <= set(defines), "the drop-in uses defines the SCL file does not set"
    assert set(doc) == set(defines)
    for name, default in defines.items():
        if default:
            assert documented_default(doc[name].text, default), (name, default)


def test_every_posted_pair_is_in_messages():
    entries, _ = parse(CONF_PAGE)
    tags = " ".join(e.tag for e in entries if e.section == MESSAGES_SECTION)
    documented = set(re.findall(r"[a-z_]+", tags))
    posted = (set(messages.NUMBER_PAIRS) | set(messages.TEXT_PAIRS) | set(messages.DEST_FIELDS)
              | set(messages.INCIDENT_PAIRS) | {messages.INCIDENT})
    assert posted - documented == set()


# ---------------------------------------------------------------- both pages

@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_title_line_names_this_version(page):
    name, section = page.name.rsplit(".", 1)
    fields = th_fields(page)
    assert fields[0] == name.upper() and fields[1] == section
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", fields[2]), fields
    assert fields[3] == "syslogng-netconsole %s" % __version__, "bump the pages' .TH version"


def _tool(name):
    path = shutil.which(name, path="/usr/bin:/bin")
    if not path:
        pytest.skip("%s is not installed (tests/install-deps.sh installs it)" % name)
    return path


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_groff_renders_without_warnings(page):
    p = subprocess.run([_tool("groff"), "-man", "-ww", "-z", "-Tutf8", str(page)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_mandoc_lint_is_clean(page):
    p = subprocess.run([_tool("mandoc"), "-Tlint", "-W", "warning", str(page)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_db_prints_it(page):
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LANG="C.UTF-8")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    p = subprocess.run([_tool("man"), "--warnings", "-P", "cat", "-l", str(page)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    name = page.name.rsplit(".", 1)[0]
    assert re.search(r"^NAME\n\s+%s +- " % re.escape(name), p.stdout, re.M), p.stdout[:500]
