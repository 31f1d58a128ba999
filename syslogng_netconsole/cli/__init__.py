"""`syslogng-netconsole` command line: one module per sub-command.

Each sub-command module defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported lazily so that a broken or slow
sub-command never affects the others.
"""

import argparse
import importlib
import sys

# name -> module implementing it
COMMANDS = {
    "decode": "syslogng_netconsole.cli.decode",
    "replay": "syslogng_netconsole.cli.replay",
    "analyze": "syslogng_netconsole.cli.analyze",
    "incidents": "syslogng_netconsole.cli.incidents",
    "hosts": "syslogng_netconsole.cli.hosts",
    "metrics": "syslogng_netconsole.cli.metrics",
    "test-alert": "syslogng_netconsole.cli.test_alert",
    "sender-config": "syslogng_netconsole.cli.sender_config",
    "sender-test": "syslogng_netconsole.cli.sender_test",
}


def _available():
    for name, modname in COMMANDS.items():
        try:
            yield name, importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise


def build_parser():
    from syslogng_netconsole import __version__

    parser = argparse.ArgumentParser(
        prog="syslogng-netconsole",
        description="Decode, replay and analyse Linux netconsole traffic; set up senders.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod in _available():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except BrokenPipeError:
        # `syslogng-netconsole decode x.pcap | head` must not print a traceback
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
