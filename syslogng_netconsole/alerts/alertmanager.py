"""Prometheus Alertmanager API v2 push: ``POST /api/v2/alerts`` with a JSON array.

Every listed Alertmanager is its own channel (HA peers each need every alert; do
not load-balance). An oops is a point event: ``endsAt = startsAt + alert-ttl`` so
one POST is enough. Labels are identity (alertname, host, type, signature,
severity, source); the stable alert id is an annotation."""

from urllib.parse import urlsplit, urlunsplit

from syslogng_netconsole.alerts.base import HttpChannel
from syslogng_netconsole.alerts.model import rfc3339

API_PATH = "/api/v2/alerts"


def api_url(url):
    p = urlsplit(url)
    path = p.path.rstrip("/")
    if not path.endswith(API_PATH):
        path += API_PATH
    return urlunsplit((p.scheme, p.netloc, path, p.query, ""))


def payload(alert):
    labels = {k: v for k, v in alert.labels.items() if v != ""}
    annotations = dict(alert.annotations)
    annotations["alert_id"] = alert.id
    return [{"labels": labels, "annotations": annotations,
             "startsAt": rfc3339(alert.starts_at), "endsAt": rfc3339(alert.ends_at),
             "generatorURL": ""}]


class AlertmanagerChannel(HttpChannel):
    kind = "alertmanager"

    def render(self, alert):
        return payload(alert)

    def post_url(self):
        return api_url(self.url)
