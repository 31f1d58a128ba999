"""The open-file limit a fleet needs: one per-host file per sender, plus syslog-ng's own.

syslog-ng raises its soft limit to the hard one at start, so the hard limit is what
counts (systemd's default, 524288, is plenty; `ulimit -n 1024` in a shell is not:
hosts beyond it get "Error opening file for writing"). The source logs this at start
and `make run` prints it.
"""

import resource
from typing import Optional

NOFILE_SPARE = 256         # descriptors syslog-ng needs besides one per host's file


def open_file_warning(hosts: int, limits=None) -> Optional[str]:
    """A warning when the open-file limit cannot hold one per-host file per sender;
    `limits` is (soft, hard), by default this process's."""
    soft, hard = limits or resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= hosts + NOFILE_SPARE:
        return None
    return ("the open-file limit is %d (hard): with max_hosts(%d), the per-host files of "
            "hosts beyond about %d cannot be opened; raise it to %d or more (systemd: "
            "LimitNOFILE=%d in a syslog-ng.service drop-in; a shell: ulimit -Hn) or lower "
            "max_hosts()" % (hard, hosts, max(0, hard - NOFILE_SPARE), hosts + NOFILE_SPARE,
                             hosts + NOFILE_SPARE))
