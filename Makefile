# evpm — two commands matter: `make up` and `make test`. Everything they need is built here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
PY313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
VENV := .venv
LSVENV := .venv-localstack
PIP_FLAGS := --quiet --disable-pip-version-check
# jsii (aws-cdk-lib) prints a banner on Node 20; the CLI itself supports it.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
STATE_DIR ?= $(CURDIR)/.state
# The test run uses its own emulator and state, beside any developer emulator on 4566.
TEST_PORT ?= 4576
TEST_MLFLOW_PORT ?= 5076
TEST_EMULATOR_PORT ?= 4597
TEST_PROMETHEUS_PORT ?= 9190
TEST_ALERTMANAGER_PORT ?= 9193
TEST_EXPORTER_PORT ?= 9196
TEST_CONSOLE_PORT ?= 8091
TEST_STATE ?= $(CURDIR)/.state/test
TEST_ENV := EVPM_STATE_DIR=$(TEST_STATE) EVPM_EMULATOR_PORT=$(TEST_PORT) EVPM_MLFLOW_PORT=$(TEST_MLFLOW_PORT) EVPM_TEST_EMULATOR_PORT=$(TEST_EMULATOR_PORT) \
	EVPM_PROMETHEUS_PORT=$(TEST_PROMETHEUS_PORT) EVPM_ALERTMANAGER_PORT=$(TEST_ALERTMANAGER_PORT) EVPM_EXPORTER_PORT=$(TEST_EXPORTER_PORT) \
	EVPM_CONSOLE_PORT=$(TEST_CONSOLE_PORT) EVPM_MONITOR_SCHEDULE_MINUTES=0 EVPM_RETRAIN_COOLDOWN_SECONDS=60
# Prometheus and Alertmanager come from Debian; root installs them, anyone else through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help up down status test check lint unit infra integration deps monitoring-bins shell-tools browser-bins runtime clean bench-models bench-stream bench bench-serving bench-cold bench-console bench-drift

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.stamp: pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found (pyenv install 3.12)"; exit 1; }
	@echo "== project venv ($(PY312))"
	@test -x $(VENV)/bin/python || $(PY312) -m venv $(VENV)
	@$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	@# setuptools warns on every editable install that a folder could shadow the package: it is
	@# the package (package-dir maps it), so that one warning is silenced and no other.
	@PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(VENV)/bin/pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

$(LSVENV)/.stamp: localstack/requirements.lock localstack/pyproject.toml
	@test -n "$(PY313)" || { echo "Python 3.13 not found (pyenv install 3.13)"; exit 1; }
	@echo "== emulator venv ($(PY313))"
	@test -x $(LSVENV)/bin/python || $(PY313) -m venv $(LSVENV)
	@$(LSVENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	@$(LSVENV)/bin/pip install $(PIP_FLAGS) -r localstack/requirements.lock
	@PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(LSVENV)/bin/pip install $(PIP_FLAGS) --no-deps -e localstack/
	@touch $@

node_modules/.stamp: package.json package-lock.json
	@echo "== npm packages (aws-cdk, aws-cdk-local; the console's chart.js, cytoscape, cytoscape-dagre, axe-core) from the lockfile"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

runtime: $(LSVENV)/.stamp ## Build the clean Lambda runtime environment (python3.12) for STATE_DIR
	@EVPM_STATE_DIR=$(STATE_DIR) $(LSVENV)/bin/python -m evpm_localstack.executor.runtimes python3.12 >/dev/null

monitoring-bins: ## Install Prometheus and Alertmanager (Debian packages) when missing; their system services stay off
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v amtool >/dev/null \
	    || ! { command -v prometheus-alertmanager || command -v alertmanager; } >/dev/null; then \
	  echo "== prometheus and alertmanager (Debian packages)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null || exit 1; \
	  for unit in prometheus prometheus-alertmanager; do \
	    $(SUDO) systemctl disable $$unit >/dev/null 2>&1; \
	    $(SUDO) systemctl stop $$unit >/dev/null 2>&1; \
	    $(SUDO) service $$unit stop >/dev/null 2>&1; \
	    $(SUDO) update-rc.d $$unit disable >/dev/null 2>&1; \
	  done; \
	fi; true

shell-tools: ## Install jq and curl (Debian packages), which the README's examples use, when missing
	@if ! command -v jq >/dev/null || ! command -v curl >/dev/null; then \
	  echo "== jq and curl (Debian packages, for the README's examples)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    jq curl >/dev/null || exit 1; \
	fi

browser-bins: ## Install Chromium and chromium-driver (Debian packages) for the browser tests when missing
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "== chromium and chromium-driver (Debian packages, for the browser tests)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null || exit 1; \
	fi

deps: $(VENV)/.stamp $(LSVENV)/.stamp node_modules/.stamp monitoring-bins shell-tools ## Build the venvs and install npm packages, Prometheus, Alertmanager, jq and curl

up: deps runtime ## Start the emulator, deploy the stacks, print endpoints
	@EVPM_STATE_DIR=$(STATE_DIR) $(VENV)/bin/evpm up

down: ## Stop everything `make up` started (state is kept)
	@if [ -x $(VENV)/bin/evpm ]; then EVPM_STATE_DIR=$(STATE_DIR) $(VENV)/bin/evpm down; fi

status: ## Show endpoints, keys and names
	@EVPM_STATE_DIR=$(STATE_DIR) $(VENV)/bin/evpm status

lint: $(VENV)/.stamp ## ruff, the import contracts (lint-imports) and the domain package's type check (mypy)
	@$(VENV)/bin/ruff check .
	@out=$$($(VENV)/bin/lint-imports --no-cache 2>&1) && echo "$$out" | grep "^Contracts:" || { echo "$$out"; exit 1; }
	@$(VENV)/bin/mypy -p evpm

unit: $(VENV)/.stamp monitoring-bins ## Unit tests (no network; promtool and amtool check monitoring/)
	@$(VENV)/bin/python -m pytest tests/unit -q

infra: $(VENV)/.stamp ## CDK template tests (no emulator)
	@$(VENV)/bin/python -m pytest tests/infra -q

check: lint unit infra ## The fast suite

integration: deps browser-bins ## Integration tests against an emulator this run starts and stops
	@$(MAKE) --no-print-directory STATE_DIR=$(TEST_STATE) runtime
	@$(TEST_ENV) $(VENV)/bin/python -m pytest tests/integration -q

test: deps browser-bins ## Everything: lint, unit, infra, integration
	@$(MAKE) --no-print-directory STATE_DIR=$(TEST_STATE) runtime
	@$(VENV)/bin/ruff check .
	@out=$$($(VENV)/bin/lint-imports --no-cache 2>&1) && echo "$$out" | grep "^Contracts:" || { echo "$$out"; exit 1; }
	@$(VENV)/bin/mypy -p evpm
	@$(TEST_ENV) $(VENV)/bin/python -m pytest tests -q --durations=15 -p no:cacheprovider

bench: bench-serving ## Serving and streaming benchmarks against the running system (make up first)
	@if [ -f bench/streaming.py ]; then $(VENV)/bin/python bench/streaming.py; fi

bench-serving: $(VENV)/.stamp ## evpm vs the prototype's path, in process and through API Gateway -> bench/results/serving.json
	@$(VENV)/bin/python bench/serving.py --gateway

bench-cold: $(VENV)/.stamp ## Cold start of the scorer and the API, offline (no make up needed) -> bench/results/cold_start.json
	@$(VENV)/bin/python layers/build.py && $(VENV)/bin/python bench/cold_start.py

bench-drift: $(VENV)/.stamp ## Drift monitor: false alarms, three drift scenarios, 1M captured rows (offline) -> bench/results/drift.json
	@$(VENV)/bin/python bench/drift.py

bench-models: $(VENV)/.stamp ## Yardsticks: FD001 RUL, AI4I classification, simulated fleet -> bench/results/yardsticks.json
	@$(VENV)/bin/python bench/yardsticks.py

bench-stream: $(VENV)/.stamp ## Scorer in process + stream end to end for 60 s (and with a worker killed) against the running system -> bench/results/streaming.json
	@EVPM_STATE_DIR=$(STATE_DIR) $(VENV)/bin/python bench/streaming.py

bench-console: $(VENV)/.stamp browser-bins ## The console in Chromium: 1,000 executions and a vehicle with 10,000 predictions, against the running system -> bench/results/console.json
	@EVPM_STATE_DIR=$(STATE_DIR) $(VENV)/bin/python bench/console.py

clean: down ## Remove build output and all local state
	rm -rf .build cdk.out .state
