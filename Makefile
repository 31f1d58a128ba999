# All Python runs with Debian's interpreter: it is what syslog-ng embeds.
PYTHON ?= /usr/bin/python3
PYTEST = $(PYTHON) -m pytest
PORT ?= 6666
LOGDIR ?= $(CURDIR)/run/logs

.PHONY: test deps test-unit test-syslogng test-kernel test-kernel-full kernel-fixtures test-alerts \
        test-chroot test-packaging bench bench-alerts run deb rpm clean

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

# Regenerates tests/fixtures/kernel-* (real QEMU guests; see tests/fixtures/README.md).
kernel-fixtures: deps
	$(PYTHON) tests/kernel/make_fixtures.py

test-alerts: deps
	$(PYTEST) -ra tests/alerts

test-packaging: deps
	$(PYTEST) -ra tests/packaging

# Packages from this checkout into dist/ (packaging/README.md).
deb:
	sh packaging/build-deb.sh dist

rpm:
	sh packaging/build-rpm.sh dist

bench:
	$(PYTHON) bench/bench_core.py
	$(PYTHON) bench/corpus_eval.py

# Ingestion with and without a webhook that takes 10 s per request (real syslog-ng).
bench-alerts:
	$(PYTHON) bench/bench_slow_webhook.py

# Runs the collector in the foreground with the project's own config.
# Installs only the runtime packages that are missing (not the test tools).
RUN_PKGS = syslog-ng-core syslog-ng-mod-python python3-regex
run:
	@missing=""; for p in $(RUN_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "run: installing:$$missing"; \
	  apt-get -o DPkg::Lock::Timeout=600 update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing; \
	fi
	PORT=$(PORT) LOGDIR=$(LOGDIR) $(PYTHON) tools/devrun.py

clean:
	rm -rf run build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
