# Qinling: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := .cache
APT_PACKAGES := tshark tcpdump iproute2 libpcap0.8 chromium fonts-wqy-microhei libwireshark-data mosquitto poppler-utils openjdk-17-jre-headless maven nodejs
DEMO_DB := var/demo.sqlite
HOST ?= 127.0.0.1
PORT ?= 5000

SERVICES := $(BIN)/python -m pipeline.services

.PHONY: demo test journeys fuzz venv apt bench lint clean services services-down

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install when setup.cfg changes.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Front-end libraries from npm (package-lock.json), copied to where the console serves them; not committed.
ECHARTS := console/web/static/vendor/echarts.min.js

node_modules/echarts/dist/echarts.min.js: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

$(ECHARTS): node_modules/echarts/dist/echarts.min.js
	mkdir -p $(dir $@)
	cp $< $@

# Debian packages the sensor and the tests use; installed only when missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Replays the bundled captures for two demo enterprises into var/demo/ (store + console database with
# one user per role; password $QINLING_DEMO_PASSWORD or a random one it prints) and serves the console.
demo: apt venv $(ECHARTS)
	$(BIN)/qinling demo --host $(HOST) --port $(PORT)

# Kafka and Elasticsearch from Maven Central jars (cached under .cache/), started once per run and
# stopped on exit whatever the outcome; the integration tests fail (not skip) without them here.
test: apt venv $(ECHARTS)
	@trap '$(SERVICES) down' EXIT; \
	$(SERVICES) up && \
	set -a && . $(CACHE)/services/run/env && set +a && \
	QINLING_REQUIRE_SERVICES=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# Browser journeys only: Playwright (from the test extra) driving Debian's Chromium; no browser download.
journeys: apt venv $(ECHARTS)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests/console/browser_journeys tests/console/test_browser.py

# Coverage-guided atheris runs of every fuzz target (each decoder, capture files, rules, the upload endpoint),
# FUZZ_SECONDS each (default 60); prints inputs tried and crashes per target (tests/fuzz/run_atheris.py).
FUZZ_SECONDS ?= 60
fuzz: venv
	$(BIN)/pip install -q -e '.[test,fuzz]'
	$(BIN)/python -m tests.fuzz.run_atheris --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

services: venv
	$(SERVICES) up

services-down:
	$(SERVICES) down

bench: apt venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
