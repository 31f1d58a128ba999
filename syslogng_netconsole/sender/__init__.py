"""The sender side: pointing a host's netconsole at the collector.

plan.py (pure) turns what the host's ``ip -j`` commands, /proc and /sys say
(``Facts``) and what the operator asked for (``Request``) into a ``Plan``: the
netconsole target, how it is made (configfs or a module/boot parameter) and every
warning and error with its fix. render.py (pure) writes the plan's files;
gather.py runs ``ip`` and reads /proc and /sys; apply.py writes the files and loads
the target. The commands are ``sender-config`` and ``sender-test`` (cli/).
"""
