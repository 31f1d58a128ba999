"""Real servers for the alert tests, all on 127.0.0.1 and free ports:
aiosmtpd (plain, STARTTLS, AUTH, implicit TLS), an http.server that records POSTs
(optionally TLS, slow, or answering with scripted statuses), and Debian's
prometheus-alertmanager with a temporary config and storage path."""

import email
import email.policy
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# -- SMTP --------------------------------------------------------------------------------
class _Handler:
    def __init__(self, box):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        self.box.append({"t": time.time(), "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                         "data": envelope.original_content or envelope.content,
                         "auth": getattr(session, "authenticated", False),
                         "tls": server.transport.get_extra_info("ssl_object") is not None})
        return "250 OK"


class SmtpServer:
    """mode: plain | starttls | tls. ``user``/``password``: require AUTH."""

    def __init__(self, mode="plain", cert=None, user=None, password=None, port=None):
        self.messages = []
        self.mode = mode
        self.port = port or free_port()
        self.cert = cert
        self.user, self.password = user, password
        self.controller = None

    def _ctx(self):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx

    def _auth(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)   # handled=True: no 535 reply

    def start(self):
        kw = {"hostname": "127.0.0.1", "port": self.port}
        if self.mode == "starttls":
            kw.update(tls_context=self._ctx(), require_starttls=True)
        elif self.mode == "tls":
            kw.update(ssl_context=self._ctx())
        if self.user:
            kw.update(authenticator=self._auth, auth_require_tls=True)
        else:
            kw.update(auth_require_tls=False)
        self.controller = Controller(_Handler(self.messages), **kw)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def parsed(self):
        return [email.message_from_bytes(m["data"], policy=email.policy.default)
                for m in self.messages]


# -- HTTP --------------------------------------------------------------------------------
class HttpServer:
    """Records every POST as {"path", "headers", "body", "json"}. ``responses``: a
    list of (status, headers, body) used in order (then 200 ``ok_body``); ``delay``:
    seconds to sleep before answering."""

    def __init__(self, cert=None, delay=0.0, ok_body="ok", port=None):
        self.requests = []
        self.responses = []
        self.delay = delay
        self.ok_body = ok_body
        self.cert = cert
        self.port = port or free_port()
        self.httpd = None
        self._lock = threading.Lock()

    @property
    def url(self):
        return "%s://127.0.0.1:%d/hook" % ("https" if self.cert else "http", self.port)

    def start(self):
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                if outer.delay:
                    time.sleep(outer.delay)
                with outer._lock:
                    resp = outer.responses.pop(0) if outer.responses else None
                status, hdrs, text = resp or (200, {}, outer.ok_body)
                if status == 200:
                    try:
                        js = json.loads(body)
                    except ValueError:
                        js = None
                    with outer._lock:
                        outer.requests.append({"t": time.time(), "path": self.path, "headers": dict(self.headers),
                                               "body": body, "json": js})
                data = text.encode()
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        if self.cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.cert.configure_cert(ctx)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# -- Alertmanager ----------------------------------------------------------------------------
AM_BIN = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
AM_CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


class Alertmanager:
    def __init__(self, workdir, config=None):
        self.workdir = str(workdir)
        self.port = free_port()
        self.proc = None
        self.config = config or AM_CONFIG

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        os.makedirs(self.workdir, exist_ok=True)
        cfg = os.path.join(self.workdir, "am.yml")
        with open(cfg, "w") as f:
            f.write(self.config)
        self.log = open(os.path.join(self.workdir, "am.log"), "wb")
        self.proc = subprocess.Popen(
            [AM_BIN, "--config.file=" + cfg, "--storage.path=" + os.path.join(self.workdir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(self._ready, timeout, 0.1):
            self.stop()
            raise RuntimeError("alertmanager did not start; see %s/am.log" % self.workdir)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("alertmanager exited rc=%s" % self.proc.returncode)
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.loads(r.read())

    def groups(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts/groups", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
