"""`test-alert`: send one synthetic alert through the configured channels.

Takes the same alert options as the ``netconsole_incidents()`` destination
(``--smtp-host``, ``--mail-to``, ``--webhook-url``, ``--alertmanager-url`` ...),
delivers directly (no outbox, no policy, no retries) and prints each channel's
result. Exit status: 0 all delivered, 1 a channel failed, 2 bad options.
"""

import json
import sys
import time

from syslogng_netconsole.alerts import channels, config, model

HELP = "send a synthetic alert through the configured alert channels"
DEFAULT_STATE_DIR = "/var/lib/syslog-ng/netconsole"


def add_arguments(parser):
    for name, (attr, _conv, default) in config.OPTIONS.items():
        parser.add_argument("--" + name, dest="opt_" + attr, metavar="VALUE",
                            help="as the destination option %s() (default: %s)"
                            % (name.replace("-", "_"), _show(default)))
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                        help="where the default channel writes alerts.jsonl "
                             "(default: %(default)s)")
    parser.add_argument("--host", default="test-host",
                        help="host name shown in the synthetic alert")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per channel instead of text")


def _show(v):
    if isinstance(v, tuple):                      # rate-limit
        return "%d/%gs" % v
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or "none"
    return v if v not in ("", None) else "none"


class _PrintLog:
    """The jsonfile channel's internal-log line goes to stderr here."""

    def __init__(self, out):
        self.out = out

    def warning(self, msg):
        print(msg, file=self.out)

    info = error = debug = warning


def run(args):
    opts = {name: getattr(args, "opt_" + attr)
            for name, (attr, _c, _d) in config.OPTIONS.items()
            if getattr(args, "opt_" + attr) is not None}
    try:
        cfg = config.from_options(opts)
    except ValueError as exc:
        print("syslogng-netconsole test-alert: %s" % exc, file=sys.stderr)
        return 2
    now = time.time()
    alert = model.synthetic(now, cfg.alert_ttl, args.host)
    failed = 0
    for ch in channels.build(cfg, args.state_dir, _PrintLog(sys.stderr)):
        t = time.monotonic()
        try:
            res = ch.deliver(alert, now)
        except Exception as exc:        # a bug must not hide the other channels' results
            res = model_result_error(exc)
        took = time.monotonic() - t
        failed += not res.ok
        if args.json:
            print(json.dumps({"channel": ch.describe(), "ok": res.ok, "outcome": res.outcome,
                              "detail": res.detail, "seconds": round(took, 3)}))
        else:
            print("%-8s %s: %s (%.2f s)" % ("ok" if res.ok else "FAILED", ch.describe(),
                                            res.detail, took))
    return 1 if failed else 0


def model_result_error(exc):
    from syslogng_netconsole.alerts.retry import Result
    return Result.retry("internal error: %s: %s" % (type(exc).__name__, exc))
