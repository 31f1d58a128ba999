"""Symbolized reports (issue 14): every frame of a kernel report with its source
file and line, inlined frames expanded, and the guilty file named.

Pure core, no syslog-ng and no clock: ``frames.py`` reads the frames of a report,
``elf.py`` the symbol tables and build-ids of debug files, ``lookup.py`` finds the
debug file of a release and module (directories laid out as Debian's
``linux-image-*-dbg``, or a debuginfod server by build-id), ``tool.py`` is the one
external tool (binutils' addr2line) behind a small interface, ``symbolize.py`` puts
them together, ``maintainers.py`` maps the guilty file to its subsystem.
"""
