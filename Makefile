# shop: `make run` serves a demo store on http://127.0.0.1:5000; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else a private copy installed with pip into .uv/
UV := $(or $(shell command -v uv 2>/dev/null),.uv/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test test-main test-embedded lint format services bench bench-realtime bench-webhooks bench-catalog bench-import faults multihost drill bench-hosts clean

.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

# `make run` needs only the runtime dependencies, so a first start is quicker; --inexact keeps
# what a full install added before.
$(VENV)/.runtime: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --no-dev --inexact
	@touch $@

install: $(VENV)/.synced

run: $(VENV)/.runtime
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed
	LOG_JSON=$${LOG_JSON:-false} $(BIN)/python realtime.py & trap 'kill $$! 2>/dev/null' EXIT INT TERM; \
	LOG_JSON=$${LOG_JSON:-false} $(BIN)/flask --app wsgi serve --host $(HOST) --port $(PORT)

# The main suite needs PostgreSQL and Redis; under CI=true their absence is a failure. The
# invoice tests read PDFs with pdftotext and pdftoppm (poppler-utils), and the console's browser
# test drives headless Chromium (Debian's chromium); both are installed if missing.
test: install lint
	@command -v pdftotext >/dev/null || (apt-get update -qq && apt-get install -y -qq poppler-utils) \
		|| echo "WARNING: pdftotext is missing (apt-get install poppler-utils)" >&2
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "WARNING: chromium is missing: the console's browser test skips (apt-get install chromium)" >&2
	@if bash .ci/services; then \
		$(MAKE) --no-print-directory test-main; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "FAIL: PostgreSQL and Redis are required under CI=true" >&2; exit 1; \
	else \
		echo "WARNING: PostgreSQL or Redis unreachable: running only the embedded suite" >&2; \
	fi
	$(MAKE) --no-print-directory test-embedded

# Two processes (pytest-xdist), each with its own database and Redis db (tests/conftest.py).
test-main: install
	$(BIN)/pytest -m "not embedded" -n 2 --dist worksteal

test-embedded: install
	env -u DATABASE_URL -u REDIS_URL -u CACHE_REDIS_URL $(BIN)/pytest -m embedded tests/embedded

# ruff, formatting, types, and the layer contracts of ARCHITECTURE.md (import-linter).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks against their ceilings (needs PostgreSQL, Redis and wrk; installs wrk if it can).
# PRODUCTS=1000000 ORDERS=1000000 for the big run.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) \
		|| { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
	@bash .ci/services
	$(BIN)/python bench/run.py --products $${PRODUCTS:-10000} --orders $${ORDERS:-200000}
	$(BIN)/python bench/realtime.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/catalog_import.py

# Webhook deliveries per second with one worker (README, Webhooks).
bench-webhooks: install
	@bash .ci/services
	$(BIN)/python bench/webhooks.py

# Issue 16's catalog figures: facets and the export over 1,000,000 products (PRODUCTS=).
bench-catalog: install
	@bash .ci/services
	$(BIN)/python bench/catalog.py --products $${PRODUCTS:-1000000}

# 100,000 catalog rows imported into a fresh database, under a minute (README, Import).
bench-import: install
	@bash .ci/services
	$(BIN)/python bench/catalog_import.py

# One realtime process holding 5,000 connections while events commit at 50/s (README, Events).
bench-realtime: install
	@bash .ci/services
	$(BIN)/python bench/realtime.py

# The fault drill (README, "Faults"): its own PostgreSQL and Redis, killed and stopped under
# traffic; one verdict line per fault. About three minutes.
faults: install
	$(BIN)/python bench/faults.py

# Issue 22: shop on several "hosts" (network namespaces on this machine: two app hosts, a
# scheduler, PostgreSQL with a streaming replica, Redis, HAProxy; README, "Running on several
# hosts"). Root only; installs Debian's haproxy if missing. `make multihost` keeps the bed up
# until Ctrl-C; `make drill` is the failover drill, its verdict line last (about 4 minutes);
# `make bench-hosts` compares one app host with two of the same total CPU share.
multihost: install
	$(BIN)/python deploy/multihost/bed.py

drill: install
	$(BIN)/python deploy/multihost/drill.py

bench-hosts: install
	flock /tmp/shop-bench.lock $(BIN)/python deploy/multihost/throughput.py

clean:
	rm -rf $(VENV) .uv .pytest_cache .ruff_cache .mypy_cache
