"""`syslogng-netconsole test-alert` as a user runs it: a subprocess of Debian's
python3 against real receivers; one result line per channel, exit status."""

import json
import subprocess
import pathlib

import pytest

from alert_servers import free_port

pytestmark = pytest.mark.alerts
REPO = pathlib.Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run(["/usr/bin/python3", "-m", "syslogng_netconsole", "test-alert"]
                          + list(args), cwd=str(REPO), capture_output=True, text=True,
                          timeout=60)


def test_all_channels_ok(smtp, http, alertmanager, tmp_path, server_cert, ca_file):
    mail = smtp("starttls", cert=server_cert)
    web, sl = http(), http()
    p = run("--smtp-host", "127.0.0.1", "--smtp-port", str(mail.port), "--ca-file", ca_file,
            "--mail-to", "ops@example.org", "--webhook-url", web.url, "--slack-url", sl.url,
            "--alertmanager-url", alertmanager.url, "--host", "cli-test",
            "--state-dir", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 4 and all(l.startswith("ok ") for l in lines), p.stdout
    assert "[netconsole] cli-test: test alert" in str(mail.parsed()[0]["Subject"])
    assert web.requests[0]["json"]["netconsole"]["kind"] == "test"
    assert "cli-test" in sl.requests[0]["json"]["text"]
    assert any(a["labels"].get("host") == "cli-test" for a in alertmanager.alerts())


def test_default_channel_and_failures(tmp_path, http):
    p = run("--state-dir", str(tmp_path / "st"), "--json")
    assert p.returncode == 0, p.stderr
    (res,) = [json.loads(l) for l in p.stdout.splitlines()]
    assert res["ok"] and res["channel"].startswith("jsonfile ")
    assert (tmp_path / "st" / "alerts.jsonl").exists()
    assert "netconsole alert [info] test-host: test alert" in p.stderr
    down = "http://127.0.0.1:%d/x" % free_port()
    web = http()
    p = run("--webhook-url", "%s,%s" % (down, web.url))
    assert p.returncode == 1
    out = sorted(p.stdout.splitlines())
    assert out[0].startswith("FAILED   webhook:") and "Connection refused" in out[0]
    assert out[1].startswith("ok       webhook:")


def test_bad_option_exit_2():
    p = run("--smtp-tls", "ssl")
    assert p.returncode == 2 and "option 'smtp-tls'" in p.stderr
