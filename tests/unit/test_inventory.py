"""hosts/inventory.py: the operator's address/network -> name and labels table, CSV
and JSON, most specific network first, bad entries skipped with their line number."""

import json
import os

from syslogng_netconsole.hosts.inventory import InventoryFile, parse

CSV = """\
# fleet inventory
address,name,rack,team

10.1.2.3,db-17,r12,storage
10.1.2.0/24,,r12,
10.1.0.0/16,,,web
10.1.2.300,bad-address,r1,x
10.1.2.4,bad name,r1,x
10.1.2.5,db-5,"r5 ""quoted""\u2028X-Evil: 1\x1b[31m",db
10.1.2.3,dup,r9,
::ffff:10.9.0.0/112,mapped,,
2001:db8::/32,v6net,,
10.1.2.6,db-6,r6,db,too-many
"""


def test_csv_names_labels_and_longest_prefix():
    inv = parse(CSV, "hosts.csv")
    db17 = inv.lookup("10.1.2.3")
    assert db17.name == "db-17" and db17.labels == {"rack": "r12", "team": "storage"}
    assert inv.lookup("10.1.2.99") == (None, {"rack": "r12"})           # the /24
    assert inv.lookup("10.1.7.7") == (None, {"team": "web"})            # the /16
    assert inv.lookup("10.2.0.1") is None
    assert inv.lookup("10.9.1.2").name == "mapped"                     # IPv4-mapped net
    assert inv.lookup("2001:db8:1::5").name == "v6net"
    assert inv.lookup("not an address") is None
    # an injection attempt in a CSV cell stays one line of text
    assert inv.lookup("10.1.2.5").labels["rack"] == 'r5 "quoted" X-Evil: 1 [31m'


def test_csv_bad_lines_are_reported_with_their_line_number_and_skipped():
    inv = parse(CSV, "hosts.csv")
    assert inv.errors == [
        "hosts.csv:7: '10.1.2.300' is not an address or network",
        "hosts.csv:8: name 'bad name': only letters, digits, '.', '_' and '-', at most 64",
        "hosts.csv:10: 10.1.2.3/32 is already given on line 4; this one is ignored",
        "hosts.csv:13: 5 cells, the header has 4",
    ]
    assert inv.size == 6


def test_csv_needs_its_header():
    inv = parse("10.1.2.3,db-17\n", "h.csv")
    assert inv.size == 0 and inv.errors[0].startswith("h.csv:1: the first line must be a header")


def test_json_object_and_list_with_line_numbers():
    doc = {"10.1.2.3": {"name": "db-17", "labels": {"rack": "r12"}},
           "10.1.3.0/24": {"labels": {"team": "web"}},
           "10.1.4.1": {"name": "x y"},
           "nonsense": {"name": "n"}}
    inv = parse(json.dumps(doc, indent=2), "h.json")
    assert inv.lookup("10.1.2.3") == ("db-17", {"rack": "r12"})
    assert inv.lookup("10.1.3.9") == (None, {"team": "web"})
    assert [e.split(":")[1] for e in inv.errors] == ["13", "16"]
    lst = [{"address": "10.1.2.3", "name": "db-17"}, {"name": "no-address"}, "junk"]
    inv = parse(json.dumps(lst), "l.json")
    assert inv.lookup("10.1.2.3").name == "db-17" and len(inv.errors) == 2
    bad = parse('{\n  "10.1.2.3": {"name": "db-17",\n}\n', "b.json")
    assert bad.size == 0 and bad.errors[0].startswith("b.json:3: bad JSON")


def test_the_file_is_read_again_only_when_it_changed(tmp_path):
    path = tmp_path / "hosts.csv"
    f = InventoryFile(str(path))
    table, why = f.poll()
    assert table is None and "No such file" in why
    assert f.poll() == (None, None)                 # said once
    path.write_text("address,name\n10.0.0.1,a\n")
    table, why = f.poll()
    assert why is None and table.lookup("10.0.0.1").name == "a"
    assert f.poll() == (None, None)
    tmp = tmp_path / "new"
    tmp.write_text("address,name\n10.0.0.1,b\n")
    os.replace(tmp, path)                           # how editors and config tools write
    assert f.poll()[0].lookup("10.0.0.1").name == "b"
