"""`metrics`: the collector's numbers in Prometheus text format (syslogng_netconsole/
metrics.py), from its state directory; `--output FILE` writes them atomically, e.g.
for node_exporter's textfile collector from a timer."""

import sys

from syslogng_netconsole import metrics
from syslogng_netconsole.cli.incidents import DEFAULT_STATE_DIR

HELP = "print the collector's counters, host loss and incidents as Prometheus metrics"


def add_arguments(parser):
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR",
                        help="the collector's state_dir (default %(default)s)")
    parser.add_argument("--output", metavar="FILE",
                        help="write to FILE atomically instead of printing")


def run(args) -> int:
    text, trouble = metrics.collect(args.state_dir)
    for t in trouble:
        print("syslogng-netconsole metrics: %s" % t, file=sys.stderr)
    if args.output:
        try:
            metrics.write(args.output, text)
        except OSError as e:
            print("syslogng-netconsole metrics: cannot write %s: %s" % (args.output, e),
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0
