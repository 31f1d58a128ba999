"""Channel registry: configuration -> the list of channel objects.

Each channel's module is imported only when the configuration uses it, and a
channel that cannot be built (its import fails: e.g. `ssl` from a foreign
standard library) is left out with an error, so the others, and the JSON-lines
file, go on: one failing channel never stops the rest.
"""

import importlib
import os

from syslogng_netconsole.alerts.jsonfile import JsonFileChannel

ALERT_FILE = "alerts.jsonl"

# config attribute holding a URL list -> (module, channel class name)
URL_CHANNELS = [
    ("webhook_urls", ("syslogng_netconsole.alerts.webhook", "WebhookChannel")),
    ("slack_urls", ("syslogng_netconsole.alerts.slack", "SlackChannel")),
    ("alertmanager_urls", ("syslogng_netconsole.alerts.alertmanager", "AlertmanagerChannel")),
]
MAIL = ("syslogng_netconsole.alerts.mail", "MailChannel")


def _make(spec, log, failed, *args):
    module, name = spec
    try:
        return getattr(importlib.import_module(module), name)(*args)
    except Exception as exc:           # ImportError, a broken stdlib ...
        kind = module.rsplit(".", 1)[-1]
        failed.append("%s: %r" % (kind, exc))
        if log is not None:
            log.error("netconsole alerts: channel %s cannot start, the others go on: %r"
                      % (kind, exc))
        return None


def build(cfg, state_dir, log=None, failed=None):
    """The channels of `cfg`; each one that cannot start is named in `failed`."""
    failed = [] if failed is None else failed
    chans = []
    if cfg.smtp_host:
        chans.append(_make(MAIL, log, failed, cfg))
    for attr, spec in URL_CHANNELS:
        for url in getattr(cfg, attr):
            chans.append(_make(spec, log, failed, cfg, url))
    configured = len(chans)
    chans = [c for c in chans if c is not None]
    if not chans or cfg.alert_file:
        # nothing else, or asked for: the JSON-lines file (needs no network module)
        path = cfg.alert_file or os.path.join(state_dir, ALERT_FILE)
        chans.append(JsonFileChannel(cfg, path, log if cfg.alert_log else None))
        if configured and len(chans) == 1 and log is not None:
            log.error("netconsole alerts: no configured channel could start; alerts go "
                      "to %s only" % path)
    return chans
