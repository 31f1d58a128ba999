"""A debuginfod client: ``GET URL/buildid/HEX/debuginfo`` (elfutils' protocol),
files cached on disk under a size cap.

``urls`` is the elfutils convention of ``DEBUGINFOD_URLS``: space-separated base
URLs, tried in order. TLS certificates are verified (the system's CAs). A URL may
carry ``user:password@``: it is sent as HTTP basic auth and never shown
(``redact()``). The server is untrusted: a reply must be an ELF file with the
asked build-id and at most ``max_file`` bytes, or it is dropped.

Cache layout: ``CACHE/HEX/debuginfo`` (as the elfutils client's); beyond
``max_bytes`` the least recently used files go. A server that failed (refused,
timed out) is skipped for ``down_for`` seconds of the caller's ``clock`` (none: never
skipped), so a dead server costs one timeout, not one per frame.
"""

import base64
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, List, Optional

from syslogng_netconsole.symbols import elf
from syslogng_netconsole.symbols.frames import BUILD_ID_OK

CHUNK = 1 << 20
# a build-id no server has is asked for again after this long: debug files are often
# uploaded after the kernel is already rolled out (the locator forgets its misses sooner)
MISS_FOR = 300.0


def split_urls(value: str) -> List[str]:
    """DEBUGINFOD_URLS -> the http(s) URLs in it (others are ignored)."""
    out = []
    for u in (value or "").split():
        if urllib.parse.urlsplit(u).scheme in ("http", "https"):
            out.append(u.rstrip("/"))
    return out


def redact(url: str) -> str:
    """The URL without user:password, for logs and errors."""
    p = urllib.parse.urlsplit(url)
    if p.username is None and p.password is None:
        return url
    host = p.hostname or ""
    if p.port:
        host += ":%d" % p.port
    return urllib.parse.urlunsplit((p.scheme, host, p.path, p.query, p.fragment))


class Debuginfod:
    def __init__(self, urls: List[str], cache_dir: str, max_bytes: int = 2 << 30,
                 timeout: float = 10.0, max_file: int = 2 << 30,
                 clock: Optional[Callable[[], float]] = None, down_for: float = 60.0,
                 context=None, miss_for: float = MISS_FOR):
        self.urls = list(urls)
        self.cache_dir = cache_dir
        self.max_bytes = max_bytes
        self.max_file = min(max_file, max_bytes) if max_bytes else max_file
        self.timeout = timeout
        self.clock = clock
        self.down_for = down_for
        self.miss_for = miss_for
        self._context = context       # an ssl.SSLContext; made at the first https request
        self._down = {}             # url -> clock time until which it is skipped
        # build-id -> clock time until which it is not asked for again (every server
        # said 404); without a clock, for the life of this object
        self._missing = {}
        self.last_error = ""
        self.counters = {"fetched": 0, "cache_hits": 0, "misses": 0, "errors": 0}

    def _tls(self):
        """The verifying TLS context, imported here: ssl may not import in a broken
        environment (a foreign python3 first on syslog-ng's PATH), and that must cost
        https servers only, not the incidents destination."""
        if self._context is None:
            import ssl
            self._context = ssl.create_default_context()
        return self._context

    def cached(self, build_id: str) -> Optional[str]:
        path = os.path.join(self.cache_dir, build_id, "debuginfo")
        if os.path.isfile(path):
            try:
                os.utime(path)      # least recently *used* goes first
            except OSError:
                pass
            return path
        return None

    def fetch(self, build_id: str) -> Optional[str]:
        """Path of the cached debug file of build_id, or None (last_error says why)."""
        self.last_error = ""
        if not BUILD_ID_OK.match(build_id or ""):
            self.last_error = "bad-build-id"
            return None
        hit = self.cached(build_id)
        if hit:
            self.counters["cache_hits"] += 1
            return hit
        until = self._missing.get(build_id)
        if until is not None:
            if self.clock is None or until > self.clock():
                self.last_error = "debuginfod-miss"
                return None
            del self._missing[build_id]
        errors = 0
        for url in self.urls:
            if self.clock is not None and self._down.get(url, 0) > self.clock():
                self.last_error = "debuginfod-down"
                errors += 1
                continue
            try:
                path = self._get(url, build_id)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    continue
                self._failed(url, "debuginfod-http-%d" % exc.code)
                errors += 1
                continue
            except (OSError, ValueError, elf.ElfError) as exc:
                self._failed(url, "debuginfod-down" if isinstance(exc, OSError)
                             else "debuginfod-bad-reply")
                errors += 1
                continue
            self.counters["fetched"] += 1
            self._trim(keep=path)
            return path
        if not errors:
            if len(self._missing) > 10000:
                self._missing.clear()
            self._missing[build_id] = (self.clock() + self.miss_for) if self.clock else 0.0
            self.counters["misses"] += 1
            self.last_error = "debuginfod-miss"
        return None

    def _failed(self, url: str, why: str) -> None:
        self.counters["errors"] += 1
        self.last_error = why
        if self.clock is not None:
            self._down[url] = self.clock() + self.down_for

    def _request(self, url: str, build_id: str) -> urllib.request.Request:
        p = urllib.parse.urlsplit(url)
        req = urllib.request.Request(redact(url) + "/buildid/%s/debuginfo" % build_id,
                                     headers={"User-Agent": "syslogng-netconsole"})
        if p.username is not None:
            cred = "%s:%s" % (urllib.parse.unquote(p.username),
                              urllib.parse.unquote(p.password or ""))
            # unredirected: a redirect to another host does not get the password
            req.add_unredirected_header(
                "Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
        return req

    def _get(self, url: str, build_id: str) -> str:
        os.makedirs(self.cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=self.cache_dir)
        try:
            ctx = self._tls() if url.startswith("https:") else None
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                    self._request(url, build_id), timeout=self.timeout, context=ctx) as r:
                n = 0
                while True:
                    chunk = r.read(CHUNK)
                    if not chunk:
                        break
                    n += len(chunk)
                    if n > self.max_file:
                        raise ValueError("reply over %d bytes" % self.max_file)
                    out.write(chunk)
            got = elf.read_file(tmp).build_id()
            if got != build_id:
                raise elf.ElfError("reply has build-id %s" % got)
            dest_dir = os.path.join(self.cache_dir, build_id)
            os.makedirs(dest_dir, exist_ok=True)
            dest = os.path.join(dest_dir, "debuginfo")
            os.replace(tmp, dest)
            return dest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _trim(self, keep: str) -> None:
        """Drop the least recently used files until the cache fits max_bytes."""
        if not self.max_bytes:
            return
        files = []
        for name in os.listdir(self.cache_dir):
            p = os.path.join(self.cache_dir, name, "debuginfo")
            try:
                st = os.stat(p)
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(f[1] for f in files)
        for _, size, p in sorted(files):
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            shutil.rmtree(os.path.dirname(p), ignore_errors=True)
            total -= size
