# One command locally = CI.  `make test` sets everything up and runs every check;
# `make demo` sets up and profiles the sample models on a simulated farm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SWIFT := $(shell command -v swift 2>/dev/null || { test -x /opt/swift/usr/bin/swift && echo /opt/swift/usr/bin/swift; })
APT_PACKAGES := redis-server postgresql chromium

.PHONY: help setup system-deps lint types contracts pytest swift-test test demo bench schema clean

help:
	@echo "make demo   - set up, then profile the sample models on a SIMULATED farm"
	@echo "make test   - set up, then ruff, mypy, import-linter, pytest, swift test"
	@echo "make bench  - print the benchmark figures"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,postgres,agent,embedded-redis]"
	touch $(STAMP)

setup: $(STAMP)

# Installs redis-server and PostgreSQL with apt when they are missing and we are root.
# Without root, the tests that need them skip locally (and fail in CI).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	{ command -v postgres >/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing$$missing (not root: tests needing them will skip)"; fi; \
	fi

lint: setup
# --no-cache: the cache once called a file formatted that a fresh clone's check did not.
	$(BIN)/ruff check --no-cache orchestrator agents tests bench
	$(BIN)/ruff format --no-cache --check orchestrator agents tests bench

types: setup
	$(BIN)/mypy

contracts: setup
	$(BIN)/lint-imports

# Two workers (pytest-xdist): most of the suite waits on real processes (Redis, PostgreSQL,
# Celery workers, the simulated farm), so two overlap their waits on CI's two cores.
# `make test PYTEST_WORKERS=0` runs everything in one process. loadgroup: the tests of a
# module that share a module-scoped fixture go to one worker (tests/services/common.py);
# the longest work goes first (tests/services/order.py: refresh its durations.txt with
# `python bench/suite_time.py LOG --write-durations` from a `--durations=0` run's log).
PYTEST_WORKERS ?= 2
pytest: setup system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

swift-test:
	@if [ -n "$(SWIFT)" ]; then \
	  $(MAKE) --no-print-directory -C ios-runner test SWIFT=$(SWIFT); \
	elif [ "$$CI" = "true" ]; then \
	  echo "error: no Swift toolchain (looked in PATH and /opt/swift/usr/bin); required in CI"; exit 1; \
	else echo "skipping swift test: no Swift toolchain found (PATH, /opt/swift/usr/bin)"; fi

# Swift first, so the last summary line CI reads is pytest's.
test: lint types contracts swift-test pytest

# Its own home, so trying anefarm leaves the default one alone; the demo ends by printing
# the follow-up command lines with this home spelled out (orchestrator/demo.py).
demo: setup system-deps
	ANEFARM_HOME=$${ANEFARM_HOME:-$(CURDIR)/.anefarm-demo} $(BIN)/anefarm demo

bench: setup system-deps
	$(BIN)/python bench/modelkit.py
	$(BIN)/python bench/simulation.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/bisection.py
	$(BIN)/python bench/recovery.py
	$(BIN)/python bench/dashboard.py

schema: setup
	$(BIN)/anefarm schema export ios-runner/Schema

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache ios-runner/.build
