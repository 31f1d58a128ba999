"""Email channel: SMTP with STARTTLS, implicit TLS or none; optional AUTH with the
password read from a file at delivery time (never logged); certificates verified.

Kernel text only ever reaches the body; headers get sanitised one-liners, and the
addresses come only from the configuration.
"""

import email.policy
import email.utils
import smtplib
import ssl
from email.message import EmailMessage

from syslogng_netconsole.alerts import sanitize
from syslogng_netconsole.alerts.base import Channel
from syslogng_netconsole.alerts.errors import error_detail
from syslogng_netconsole.alerts.model import labels_text, rfc3339
from syslogng_netconsole.alerts.retry import Result

# CRLF line ends; fold only beyond RFC 5322's 998 (the subject is capped at 200,
# so it stays on one line instead of Python's odd "Subject:\r\n value" fold)
POLICY = email.policy.SMTP.clone(max_line_length=998)

# (label, incident field) rows of the summary block of the body
SUMMARY_FIELDS = [
    ("Type", "type"), ("Kernel", "release"), ("Taint", "taint"), ("Panicked", "panicked"),
    ("Corrupted", "corrupted"), ("Truncated", "truncated"), ("CPU", "cpu"), ("PID", "pid"),
    ("Comm", "comm"), ("Hardware", "hardware"), ("PC", "pc"), ("Boot", "boot"),
    ("First line", "first_line"), ("Guilty file", "guilty_file"), ("Incident id", "id"),
]


def body_text(alert):
    lines = ["Title:     %s" % alert.title]
    if alert.host:
        lines.append("Host:      %s" % alert.who())
    if alert.host_labels:
        lines.append("Labels:    %s" % labels_text(alert.host_labels))
    lines.append("Severity:  %s" % alert.severity)
    lines.append("Signature: %s" % alert.labels.get("signature", ""))
    lines.append("Time:      %s" % rfc3339(alert.starts_at))
    for label, name in SUMMARY_FIELDS:
        v = (alert.incident or {}).get(name)
        if v not in (None, "", [], False):
            lines.append("%-10s %s" % (label + ":", sanitize.one_line(v, 300)))
    sub = (alert.incident or {}).get("subsystem")
    if isinstance(sub, dict) and sub.get("name"):
        lines.append("Subsystem: %s" % sanitize.one_line(sub["name"], 200))
        for key, label in (("lists", "List:"), ("maintainers", "Maintainer:")):
            for v in (sub.get(key) or [])[:8]:
                lines.append("%-10s %s" % (label, sanitize.one_line(v, 200)))
    mods = (alert.incident or {}).get("modules")
    if mods:
        lines.append("Modules:   %s" % sanitize.one_line(" ".join(mods), 1000))
    lines.append("Alert id:  %s" % alert.id)
    lines.append("")
    lines.append("---- report ----" if alert.kind == "incident" else "----")
    lines.append(alert.text)
    return "\n".join(lines) + "\n"


def _login(conn, user, password):
    """AUTH PLAIN when offered (one clear 535 on a bad password), else smtplib's
    own sequence. smtplib.login() would go on to AUTH LOGIN after a PLAIN 535, which
    some servers (aiosmtpd 1.4) leave hanging until the timeout."""
    if not conn.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("server does not offer AUTH")
    if "PLAIN" in conn.esmtp_features.get("auth", "").upper().split():
        conn.user, conn.password = user, password
        conn.auth("PLAIN", conn.auth_plain)
        return
    conn.login(user, password)


class MailChannel(Channel):
    kind = "email"

    def describe(self):
        return "email smtp://%s:%d (%s) to %d recipient(s)" % (
            self.cfg.smtp_host, self.cfg.smtp_port, self.cfg.smtp_tls, len(self.cfg.mail_to))

    def render(self, alert):
        c = self.cfg
        msg = EmailMessage(policy=POLICY)
        msg["Subject"] = sanitize.header("%s %s" % (c.subject_prefix, alert.headline()))
        msg["From"] = c.mail_from
        msg["To"] = ", ".join(c.mail_to)
        msg["Date"] = email.utils.formatdate(alert.starts_at, usegmt=True)
        # derived from the stable alert id: a re-sent alert has the same Message-ID
        msg["Message-ID"] = "<%s@syslogng-netconsole>" % sanitize.file_name(alert.id)
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Netconsole-Alert-Id"] = sanitize.file_name(alert.id)
        msg["X-Netconsole-Severity"] = sanitize.one_line(alert.severity, 20)
        msg.set_content(body_text(alert), charset="utf-8")
        return msg

    def _password(self):
        with open(self.cfg.smtp_password_file, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")

    def deliver(self, alert, now):
        c = self.cfg
        ctx, err = self.context()
        if err:
            return err
        try:
            msg = self.render(alert)
            password = self._password() if c.smtp_password_file else ""
        except OSError as exc:
            return Result.retry("smtp-password-file: %s" % error_detail(exc))
        try:
            if c.smtp_tls == "tls":
                conn = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.timeout,
                                        context=ctx)
            else:
                conn = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout)
            with conn:
                conn.ehlo()
                if c.smtp_tls == "starttls":
                    if not conn.has_extn("starttls"):
                        return Result.retry("server does not offer STARTTLS")
                    conn.starttls(context=ctx)
                    conn.ehlo()
                if c.smtp_user:
                    _login(conn, c.smtp_user, password)
                refused = conn.send_message(msg, from_addr=c.mail_from, to_addrs=c.mail_to)
        except smtplib.SMTPRecipientsRefused as exc:
            return Result.permanent("all recipients refused (%d)" % len(exc.recipients))
        except smtplib.SMTPAuthenticationError as exc:
            return Result.permanent("authentication failed (%d)" % exc.smtp_code)
        except smtplib.SMTPResponseException as exc:
            detail = "SMTP %d" % exc.smtp_code
            return Result.permanent(detail) if 500 <= exc.smtp_code < 600 \
                else Result.retry(detail)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return Result.retry(error_detail(exc))
        if refused:
            return Result.success("delivered; refused: %s" % ", ".join(sorted(refused)))
        return Result.success("delivered to %d recipient(s)" % len(c.mail_to))
