"""Generic JSON webhook: an Alertmanager webhook v4 body (so Grafana, alerta and
existing AM receivers parse it) plus a versioned ``netconsole`` object with the
incident. The schema is documented in docs/alerts.md; bump ALERT_SCHEMA_VERSION on any
incompatible change."""

from syslogng_netconsole.alerts.base import HttpChannel
from syslogng_netconsole.alerts.model import ALERT_SCHEMA_VERSION, rfc3339

RECEIVER = "syslogng_netconsole"


def am_alert(alert):
    """The alert as one element of Alertmanager's alerts list."""
    return {"status": "firing", "labels": dict(alert.labels),
            "annotations": dict(alert.annotations), "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(alert.ends_at), "generatorURL": "",
            "fingerprint": alert.fingerprint}


def document(alert):
    group = {"alertname": alert.labels.get("alertname", "")}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="%s"}' % group["alertname"],
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": RECEIVER,
        "groupLabels": group,
        "commonLabels": dict(alert.labels),
        "commonAnnotations": dict(alert.annotations),
        "externalURL": "",
        "alerts": [am_alert(alert)],
        "netconsole": {
            "schema": "syslogng-netconsole.alert",
            "schema_version": ALERT_SCHEMA_VERSION,
            "id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "title": alert.title,
            "host": alert.host,
            "hostname": alert.hostname or None,
            "labels": dict(alert.host_labels),
            "hosts": list(alert.hosts),
            "count": alert.count,
            "startsAt": rfc3339(alert.starts_at),
            "incident": alert.incident,
            "text": alert.text,
        },
    }


def token_header(cfg):
    if not cfg.webhook_token_file:
        return {}
    try:
        with open(cfg.webhook_token_file, encoding="utf-8") as f:
            return {"Authorization": "Bearer " + f.read().strip()}
    except OSError as exc:
        raise OSError("webhook-token-file: %s" % (exc.strerror or exc)) from None


class WebhookChannel(HttpChannel):
    kind = "webhook"

    def render(self, alert):
        return document(alert)

    def headers(self, alert):
        h = token_header(self.cfg)
        h["X-Netconsole-Alert-Id"] = alert.id
        return h
