"""Slack incoming webhook: {"text", "blocks"}; success is HTTP 200 with body "ok".

Kernel text is escaped for mrkdwn (&, <, > -- otherwise '<!channel>' in a spoofed
netconsole line would ping everyone) and kept out of the code fence."""

from syslogng_netconsole.alerts.base import HttpChannel
from syslogng_netconsole.alerts.model import labels_text
from syslogng_netconsole.alerts.sanitize import cap

EXCERPT = 2500
EMOJI = {"critical": ":rotating_light:", "error": ":red_circle:",
         "warning": ":warning:", "info": ":information_source:"}


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(alert):
    head = "%s [%s] %s" % (EMOJI.get(alert.severity, ""), alert.severity,
                           alert.summary_line())
    fields = ["*Signature:* `%s`" % escape(alert.labels.get("signature", "")).replace("`", "'")]
    if alert.host_labels:
        fields.append("*Labels:* %s" % escape(labels_text(alert.host_labels)))
    rel = (alert.incident or {}).get("release")
    if rel:
        fields.append("*Kernel:* %s" % escape(str(rel)))
    fields.append("*Alert id:* %s" % alert.id)
    excerpt = escape(cap(alert.text, EXCERPT)).replace("```", "'''")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(cap(head, 2900))}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(fields)}]},
    ]
    if excerpt.strip():
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "```%s```" % excerpt}})
    return {"text": escape(cap(head, 3000)), "blocks": blocks}


class SlackChannel(HttpChannel):
    kind = "slack"
    ok_body = "ok"

    def render(self, alert):
        return payload(alert)
