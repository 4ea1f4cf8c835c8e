# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run worker scheduler test setup chromium brokers openapi bench bench-calendar bench-brokers bench-publish clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/chorus run

# The background jobs alone (`make run` already runs a worker beside the API).
worker: $(STAMP)
	$(BIN)/chorus worker

# The periodic sweeps alone (`make run` already runs the scheduler beside the API).
scheduler: $(STAMP)
	$(BIN)/chorus scheduler

test: $(STAMP) chromium brokers
	$(BIN)/python -m pytest

# The share page's browser test drives Debian's Chromium. Installed when missing and running
# as root (CI); otherwise the test fails and says how to install it.
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get)"; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	  else echo "chromium is missing: apt-get install -y chromium (the browser test fails without it)"; fi; }

# The Redis and RabbitMQ broker tests start private servers from Debian's packages
# (workers/local_servers.py). Installed when missing and running as root (CI); otherwise
# those tests fail and say how to install them.
brokers:
	@{ command -v redis-server >/dev/null 2>&1 && test -x /usr/lib/rabbitmq/bin/rabbitmq-server; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server and rabbitmq-server (apt-get)"; \
	    apt-get install -y -qq redis-server rabbitmq-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server rabbitmq-server >/dev/null; }; \
	  else echo "redis-server or rabbitmq-server is missing: apt-get install -y redis-server rabbitmq-server (the broker tests fail without them)"; fi; }

openapi: $(STAMP)
	$(BIN)/chorus openapi

bench: $(STAMP) brokers
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/calendar_bench.py
	$(BIN)/python bench/publish_bench.py

bench-calendar: $(STAMP)
	$(BIN)/python bench/calendar_bench.py

# Jobs per second on the PostgreSQL, Redis and RabbitMQ brokers (private servers on loopback).
bench-brokers: $(STAMP) brokers
	$(BIN)/python bench/broker_bench.py

# 10,000 variants due in one minute through the scheduler and workers (bench/README.md).
bench-publish: $(STAMP) brokers
	$(BIN)/python bench/publish_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
