# All Python runs with Debian's interpreter: it is what syslog-ng embeds.
PYTHON ?= /usr/bin/python3
PYTEST = $(PYTHON) -m pytest
PORT ?= 6666
LOGDIR ?= $(CURDIR)/run/logs

.PHONY: test deps test-unit test-syslogng test-kernel test-kernel-full test-alerts \
        test-chroot test-packaging bench run deb rpm clean

# The README's test command: installs what the tests need, then runs every tier.
test: deps
	$(PYTEST) -ra tests

deps:
	sh tests/install-deps.sh

test-unit:
	$(PYTEST) -ra tests/unit

test-syslogng: deps
	$(PYTEST) -ra tests/integration

test-kernel: deps
	$(PYTEST) -ra tests/kernel

# The whole kernel x mode x scenario matrix (longer than CI's budget).
test-kernel-full: deps
	NETCONSOLE_KERNEL_MATRIX=full $(PYTEST) -ra tests/kernel

test-alerts: deps
	$(PYTEST) -ra tests/alerts

test-packaging: deps
	$(PYTEST) -ra tests/packaging

bench:
	$(PYTHON) bench/bench_core.py

# Runs the collector in the foreground with the project's own config.
run:
	sh tests/install-deps.sh
	PORT=$(PORT) LOGDIR=$(LOGDIR) $(PYTHON) -m syslogng_netconsole.devrun

clean:
	rm -rf run build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
