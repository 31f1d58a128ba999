import sys

from syslogng_netconsole.cli import main

sys.exit(main())
