"""Channel registry: configuration -> the list of channel objects."""

import os

from syslogng_netconsole.alerts.alertmanager import AlertmanagerChannel
from syslogng_netconsole.alerts.jsonfile import JsonFileChannel
from syslogng_netconsole.alerts.mail import MailChannel
from syslogng_netconsole.alerts.slack import SlackChannel
from syslogng_netconsole.alerts.webhook import WebhookChannel

ALERT_FILE = "alerts.jsonl"

# config attribute holding a URL list -> channel class
URL_CHANNELS = [
    ("webhook_urls", WebhookChannel),
    ("slack_urls", SlackChannel),
    ("alertmanager_urls", AlertmanagerChannel),
]


def build(cfg, state_dir, log=None):
    chans = []
    if cfg.smtp_host:
        chans.append(MailChannel(cfg))
    for attr, cls in URL_CHANNELS:
        for url in getattr(cfg, attr):
            chans.append(cls(cfg, url))
    if not chans or cfg.alert_file:
        path = cfg.alert_file or os.path.join(state_dir, ALERT_FILE)
        chans.append(JsonFileChannel(cfg, path, log if cfg.alert_log else None))
    return chans
