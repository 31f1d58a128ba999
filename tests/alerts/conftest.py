"""Fixtures of the alert tier: a test CA (trustme) and real servers."""

import shutil

import pytest
import trustme

from alert_servers import Alertmanager, HttpServer, SmtpServer


@pytest.fixture(scope="session")
def ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca):
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def ca_file(ca, tmp_path_factory):
    p = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(p))
    return str(p)


@pytest.fixture
def smtp():
    servers = []

    def make(mode="plain", **kw):
        s = SmtpServer(mode, **kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def http():
    servers = []

    def make(**kw):
        s = HttpServer(**kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    if not shutil.which("prometheus-alertmanager"):
        pytest.skip("prometheus-alertmanager is not installed (tests/install-deps.sh)")
    am = Alertmanager(tmp_path_factory.mktemp("am")).start()
    yield am
    am.stop()
