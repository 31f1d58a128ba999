"""Alert options of the incidents destination (and of `test-alert`): one table.

``from_options(options)`` takes the destination's options dict (3.38: every value
a str, '-' turned into '_'; 4.x: values may be typed) and returns an
``AlertConfig``, or raises ``ValueError`` naming the bad option. Pure.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from syslogng_netconsole import options as opt
from syslogng_netconsole.alerts import model
from syslogng_netconsole.alerts.policy import parse_rate

def _urls(v):
    urls = opt.items(v)
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("%r is not an http:// or https:// URL" % redact_url(u))
    return urls


def _choice(*allowed):
    def conv(v):
        s = str(v).strip().lower()
        if s not in allowed:
            raise ValueError("must be one of %s" % ", ".join(allowed))
        return s
    return conv


def _positive_duration(v):
    d = opt.duration(v)
    if d <= 0:
        raise ValueError("must be > 0")
    return d


def _severity(v):
    s = str(v).strip().lower()
    if s not in model.SEVERITIES:
        raise ValueError("must be one of %s" % ", ".join(model.SEVERITIES))
    return s


def _addresses(v):
    addrs = opt.items(v)
    for a in addrs:
        if "@" not in a or any(c in a for c in "\r\n<>,; "):
            raise ValueError("%r is not a plain mail address" % a)
    return addrs


def _addr(v):
    return _addresses(v)[0] if str(v).strip() else ""


def redact_url(url):
    """scheme://host:port only: Slack URLs carry their secret in the path."""
    try:
        p = urlsplit(str(url))
        port = ":%d" % p.port if p.port else ""
        return "%s://%s%s" % (p.scheme, p.hostname or "?", port)
    except ValueError:
        return "<bad url>"


# option name -> (attribute, converter, default). Defaults are documented in docs/alerts.md.
OPTIONS = {
    "alerts":             ("enabled", opt.boolean, True),
    "smtp-host":          ("smtp_host", str, ""),
    "smtp-port":          ("smtp_port", opt.port, None),
    "smtp-tls":           ("smtp_tls", _choice("starttls", "tls", "none"), "starttls"),
    "smtp-user":          ("smtp_user", str, ""),
    "smtp-password-file": ("smtp_password_file", str, ""),
    "mail-from":          ("mail_from", _addr, "syslogng-netconsole@localhost"),
    "mail-to":            ("mail_to", _addresses, []),
    "mail-subject-prefix": ("subject_prefix", str, "[netconsole]"),
    "webhook-url":        ("webhook_urls", _urls, []),
    "webhook-format":     ("webhook_format", _choice("generic", "slack"), "generic"),
    "webhook-token-file": ("webhook_token_file", str, ""),
    "slack-url":          ("slack_urls", _urls, []),
    "alertmanager-url":   ("alertmanager_urls", _urls, []),
    "ca-file":            ("ca_file", str, ""),
    "tls-verify":         ("tls_verify", opt.boolean, True),
    "alert-timeout":      ("timeout", _positive_duration, 30.0),
    "dedup-window":       ("dedup_window", opt.duration, 3600.0),
    "digest-interval":    ("digest_interval", _positive_duration, 300.0),
    "rate-limit":         ("rate_limit", parse_rate, (20, 300.0)),
    "min-severity":       ("min_severity", _severity, "warning"),
    "alert-ttl":          ("alert_ttl", _positive_duration, 3600.0),
    "retry-base":         ("retry_base", _positive_duration, 5.0),
    "retry-cap":          ("retry_cap", _positive_duration, 900.0),
    "alert-max-age":      ("max_age", _positive_duration, 86400.0),
    "alert-file":         ("alert_file", str, ""),
    "alert-log":          ("alert_log", opt.boolean, True),
}
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass
class AlertConfig:
    enabled: bool = True
    smtp_host: str = ""
    smtp_port: Optional[int] = None
    smtp_tls: str = "starttls"
    smtp_user: str = ""
    smtp_password_file: str = ""
    mail_from: str = "syslogng-netconsole@localhost"
    mail_to: List[str] = field(default_factory=list)
    subject_prefix: str = "[netconsole]"
    webhook_urls: List[str] = field(default_factory=list)
    webhook_format: str = "generic"
    webhook_token_file: str = ""
    slack_urls: List[str] = field(default_factory=list)
    alertmanager_urls: List[str] = field(default_factory=list)
    ca_file: str = ""
    tls_verify: bool = True
    timeout: float = 30.0
    dedup_window: float = 3600.0
    digest_interval: float = 300.0
    rate_limit: tuple = (20, 300.0)
    min_severity: str = "warning"
    alert_ttl: float = 3600.0
    retry_base: float = 5.0
    retry_cap: float = 900.0
    max_age: float = 86400.0
    alert_file: str = ""
    alert_log: bool = True


def known_option(name):
    return name.replace("_", "-") in OPTIONS


def pop_options(options: Dict) -> Dict:
    """Remove the alert options from ``options`` (a dict the caller owns) and
    return them; the destination validates the rest itself."""
    return {k: options.pop(k) for k in list(options) if known_option(str(k))}


def from_options(options: Dict) -> AlertConfig:
    """Options dict -> AlertConfig; unknown keys are ignored (they belong to the
    destination). Raises ValueError("option 'NAME': why") on a bad value."""
    cfg = AlertConfig()
    norm = {}
    for k, v in (options or {}).items():
        norm[str(k).replace("_", "-")] = v
    for name, (attr, conv, _default) in OPTIONS.items():
        v = norm.get(name)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if v is None or v == "":        # SCL blocks pass "" for "the default"
            continue
        try:
            setattr(cfg, attr, conv(v))
        except (ValueError, TypeError) as exc:
            raise ValueError("option '%s': %s" % (name, exc)) from None
    if cfg.smtp_port is None:
        cfg.smtp_port = DEFAULT_PORTS[cfg.smtp_tls]
    if cfg.smtp_host and not cfg.mail_to:
        raise ValueError("option 'mail-to': required when smtp-host is set")
    if cfg.mail_to and not cfg.smtp_host:
        raise ValueError("option 'smtp-host': required when mail-to is set")
    if cfg.smtp_user and cfg.smtp_tls == "none":
        raise ValueError("option 'smtp-user': refusing to send a password without TLS "
                         "(set smtp-tls to starttls or tls)")
    if cfg.smtp_password_file and not cfg.smtp_user:
        raise ValueError("option 'smtp-user': required with smtp-password-file")
    if cfg.webhook_format == "slack":
        cfg.slack_urls = cfg.slack_urls + cfg.webhook_urls
        cfg.webhook_urls = []
    return cfg
